"""Phase 2's label-token objective (engine/labeltune.py): a tiny random Llama- and Qwen2-style
causal LM tuned with LoRA to write the class name after phase 1's prompt, through the engine
entrypoint; scored by label log-likelihood, reloaded through the one predictor."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bedside.engine import decision, llm
from bedside.engine.inference import LABEL_TOKENS_FILE, load_predictor
from bedside.engine.memory import estimate
from bedside.errors import BundleError
from bedside.submissions.flops import LABEL_TOKENS, PROMPT_TOKENS, estimate_pflops
from bedside.submissions.manifest import Manifest, TrainConfig
from bedside.testing.tinydecoders import CHATML, make_tiny_decoder
from bedside.testing.tinymodels import make_tiny_bundle

from .conftest import FILLER, KEYWORDS, accuracy, build_job, make_corpus, read_preds, run_inprocess

pytestmark = pytest.mark.torch
PROMPT = "Categories: {labels}\nAbstract: {text}\nCategory:"
ALL_PROJ = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
RECIPE = {
    "objective": "label-tokens",
    "method": "lora",
    "epochs": 10,
    "learning_rate": 1e-2,
    "batch_size": 8,
    "max_length": 32,
    "warmup_ratio": 0.0,
    "validation_fraction": 0.2,
    "early_stopping_patience": 10,
    "lora": {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": ALL_PROJ},
}
# llama: plain prompt, calibrated (the default); qwen2: its chat template, raw label likelihoods
CASES = {"llama": (False, "content-free"), "qwen2": (True, "none")}


def separable(n_per_class: int, seed: int = 0, start: int = 0) -> pd.DataFrame:
    """Short texts, three keywords of the class and two filler words: a task a 64-wide random
    decoder learns in a few seconds (conftest's longer, filler-heavy texts take minutes)."""
    rng = np.random.default_rng(seed)
    rows = []
    for c, words in KEYWORDS.items():
        for _ in range(n_per_class):
            toks = list(rng.choice(words.split(), size=3)) + list(rng.choice(FILLER, size=2))
            rng.shuffle(toks)
            rows.append({"text": " ".join(toks), "label": c})
    df = pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    df.insert(0, "row_id", [f"r{start + i}" for i in range(len(df))])
    return df


def _job(
    root: Path,
    bundle: Path,
    kind: str,
    train: pd.DataFrame,
    hold: pd.DataFrame,
    chat: bool,
    calibration: str,
) -> Path:
    job = build_job(root, bundle, "causal-lm", kind, train, hold, RECIPE, threads=1)
    spec = json.loads((job / "spec.json").read_text())
    spec["manifest"]["phase1"].update(
        {"prompt": PROMPT, "chat_template": chat, "calibration": calibration}
    )
    (job / "spec.json").write_text(json.dumps(spec))
    return job


@pytest.fixture(scope="module", params=list(CASES))
def trained(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """One label-token phase-2 job and one phase-1 job per architecture, with every call to the
    decision fit and every batch of texts the prompt encodes recorded in order."""
    arch = request.param
    chat, calibration = CASES[arch]
    root = tmp_path_factory.mktemp(f"labeltune-{arch}")
    train, hold = separable(20, seed=1), separable(8, seed=2, start=10_000)
    texts = list(KEYWORDS.values()) + list(KEYWORDS) + train["text"].tolist()
    texts += [PROMPT, "<|im_start|>user\n", "<|im_end|>\n<|im_start|>assistant\n"] * 3
    bundle = make_tiny_decoder(
        root / "bundle", arch, texts=texts, chat_template=CHATML, init_std=0.2, hidden=64
    )
    events: list[tuple[str, Any]] = []
    real_fit, real_encode = decision.fit, llm.encode_texts

    def fit(scores: np.ndarray, y: np.ndarray, *a: Any, **kw: Any) -> Any:
        events.append(("fit", (np.asarray(scores).shape, list(np.asarray(y)))))
        return real_fit(scores, y, *a, **kw)

    def encode(tok: Any, plan: Any, batch: Any) -> Any:
        events.append(("encode", list(batch)))
        return real_encode(tok, plan, batch)

    job = _job(root / "phase2", bundle, "phase2", train, hold, chat, calibration)
    p1 = _job(root / "phase1", bundle, "phase1", train, hold, chat, calibration)
    saved = dict(os.environ)  # the entrypoint rewrites it (offline flags, caches)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(decision, "fit", fit)
            mp.setattr(llm, "encode_texts", encode)
            assert run_inprocess(job) == 0, (job / "out" / "log.txt").read_text()[-2000:]
            assert run_inprocess(p1) == 0
    finally:
        os.environ.clear()
        os.environ.update(saved)
    compute = json.loads((job / "out" / "compute.json").read_text())
    return {
        "arch": arch,
        "job": job,
        "phase1": p1,
        "bundle": bundle,
        "train": train,
        "hold": hold,
        "events": events,
        "compute": compute,
        "calibration": calibration,
    }


@pytest.mark.slow
def test_the_label_token_loss_falls_and_beats_phase1_and_chance(trained) -> None:
    info = trained["compute"]["info"]
    assert info["objective"] == "label-tokens" and info["recipe"] == "lora+label-tokens"
    losses = info["train_loss_by_epoch"]
    assert len(losses) == RECIPE["epochs"]
    assert losses[-1] < 0.6 * losses[0], losses  # the class names are learned
    hold = trained["hold"]
    tuned, zero_shot = accuracy(trained["job"], hold), accuracy(trained["phase1"], hold)
    assert tuned >= 0.45, (tuned, zero_shot)  # chance is 0.2 on five balanced classes
    assert tuned >= zero_shot + 0.2, (tuned, zero_shot)
    assert trained["compute"]["validation"]["n_validation"] == 20


@pytest.mark.slow
def test_the_saved_model_reloads_through_load_predictor_with_the_same_probabilities(
    trained,
) -> None:
    model_dir = trained["job"] / "out" / "model"
    files = {p.name for p in model_dir.iterdir()}
    assert {"model.safetensors", "config.json", "decision.json", LABEL_TOKENS_FILE} <= files
    assert not any(f.endswith((".bin", ".pt", ".pth")) or f.startswith("adapter") for f in files)
    meta = json.loads((model_dir / LABEL_TOKENS_FILE).read_text())
    assert meta["calibration"] == trained["calibration"]
    pred = load_predictor(model_dir, trained["bundle"])
    assert pred.plan is not None and pred.plan.prefix == meta["plan"]["prefix"]
    assert "lora" not in type(pred.model).__name__.lower()  # merged: a plain causal LM
    want = read_preds(trained["job"])
    by_id = dict(zip(trained["hold"]["row_id"], trained["hold"]["text"], strict=True))
    got = pred.predict_proba([by_id[r] for r in want["row_ids"]])
    np.testing.assert_allclose(got, np.array(want["probs"]), atol=2e-5)
    assert pred.classes == want["classes"]


@pytest.mark.slow
def test_the_holdout_never_reaches_the_decision_fit(trained) -> None:
    events, train, hold = trained["events"], trained["train"], trained["hold"]
    fits = [i for i, (kind, _) in enumerate(events) if kind == "fit"]
    assert len(fits) == 1  # the phase-1 job fits nothing
    (shape, y), n_val = events[fits[0]][1], trained["compute"]["validation"]["n_validation"]
    assert shape == (n_val, 5) and len(y) == n_val
    only_holdout = set(hold["text"]) - set(train["text"])
    assert only_holdout
    before = {t for kind, batch in events[: fits[0]] if kind == "encode" for t in batch}
    after = {t for kind, batch in events[fits[0] :] if kind == "encode" for t in batch}
    assert not before & only_holdout  # nothing of the holdout was scored before the fit
    assert only_holdout <= after  # and all of it after, for the predictions
    assert set(train["text"]) & before  # the training rows went through the same prompt


@pytest.mark.slow
def test_the_flop_counter_counts_the_prompt_and_label_tokens(trained) -> None:
    info, comp = trained["compute"]["info"], trained["compute"]
    n_fit = 100 - comp["validation"]["n_validation"]
    per_row = info["prompt_prefix_tokens"] + info["prompt_tail_tokens"] + 1  # + >= 1 label token
    assert comp["tokens"] >= RECIPE["epochs"] * n_fit * per_row
    assert comp["flops_by_stage"]["train"] > 0 and comp["flops_by_stage"]["validate"] > 0


@pytest.mark.parametrize("kind", ["encoder", "classifier"])
def test_the_manifest_refuses_label_tokens_for_a_model_without_an_lm_head(kind: str) -> None:
    data: dict[str, Any] = {"name": "x", "kind": kind, "train": {"objective": "label-tokens"}}
    if kind == "classifier":
        data["labels"] = {"LABEL_0": "neoplasms"}
    with pytest.raises(BundleError, match='label-tokens.*Use train.objective = "classifier"'):
        Manifest.from_dict(data)
    assert Manifest.from_dict({**data, "train": {}}).train.objective == "classifier"


def test_label_tokens_refuses_what_it_cannot_combine_with() -> None:
    assert TrainConfig(objective="label-tokens", method="lora").objective == "label-tokens"
    for bad, match in (
        ({"method": "head-only"}, "head-only"),
        ({"windows": 2}, "windows"),
        ({"label_smoothing": 0.1}, "label_smoothing"),
        ({"lexical_blend": 0.5}, "lexical_blend"),
        ({"objective": "label-token"}, "must be one of"),
    ):
        with pytest.raises(BundleError, match=match):
            TrainConfig(**{"objective": "label-tokens", **bad})
    m = Manifest.from_dict(
        {"name": "x", "kind": "causal-lm", "train": {"objective": "label-tokens"}}
    )
    assert m.to_dict()["train"]["objective"] == "label-tokens"


def test_an_encoder_job_with_label_tokens_fails_with_the_clear_error(
    tmp_path: Path, clean_env
) -> None:
    bundle = make_tiny_bundle(tmp_path / "enc", kind="encoder", hidden=16, layers=1)
    train, hold = make_corpus(4, seed=1), make_corpus(2, seed=2, start=100)
    job = build_job(
        tmp_path / "job", bundle, "encoder", "phase2", train, hold, {"objective": "label-tokens"}
    )
    assert run_inprocess(job) == 1
    err = json.loads((job / "out" / "error.json").read_text())
    assert err["error_class"] == "invalid_input"
    assert "label-tokens" in err["message"] and 'objective = "classifier"' in err["message"]
    assert not (job / "out" / "model").exists()


def test_the_estimates_count_the_prompt_and_label_tokens() -> None:
    cls = {"kind": "causal-lm", "train": {**RECIPE, "objective": "classifier", "epochs": 2}}
    lt = {"kind": "causal-lm", "train": {**RECIPE, "epochs": 2}}
    train, hold = [20] * 100, [20] * 40
    e_cls, e_lt = estimate_pflops(10**6, cls, train, hold), estimate_pflops(10**6, lt, train, hold)
    assert e_lt["objective"] == "label-tokens" and e_cls["objective"] == "classifier"
    # 75 fitted rows x 2 epochs x 4N per token, the prompt and the label on top of each text
    extra = 2 * 4.0 * 10**6 * 75 * (PROMPT_TOKENS + LABEL_TOKENS)
    assert e_lt["phase2"] * 1e15 > e_cls["phase2"] * 1e15 + extra * 0.99
    cfg = {"hidden_size": 64, "num_hidden_layers": 2, "vocab_size": 800}
    m_cls, m_lt = estimate(cfg, 10**6, cls), estimate(cfg, 10**6, lt)
    assert m_lt.activations_gb > m_cls.activations_gb  # longer rows, label logits
    assert m_cls.trainable_params - m_lt.trainable_params == 64 * 5  # no classification head
