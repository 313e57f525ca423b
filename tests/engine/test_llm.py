"""Decoder phase 1 (shared prefix, contextual calibration, chat templates), phase 2 set-up and
the memory estimate, on tiny random Llama- and Qwen-style models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from bedside.engine import llm
from bedside.engine.decoder import prepare_for_training
from bedside.engine.memory import Shape, estimate, estimate_seconds
from bedside.engine.modeling import load_model, load_tokenizer
from bedside.testing.tinydecoders import ARCHITECTURES, CHATML, make_tiny_decoder

from .conftest import KEYWORDS, build_job, read_preds, run_inprocess

pytestmark = pytest.mark.torch
NAMES = list(KEYWORDS)
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def decoders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("decoders")
    texts = list(KEYWORDS.values()) + NAMES
    return {
        a: make_tiny_decoder(root / a, a, texts=texts, chat_template=CHATML)
        for a in ("llama", "qwen2")
    }


def _reference(model: Any, prompts: list[list[int]], labels: list[list[int]]) -> np.ndarray:
    """Each prompt + label run on its own, no cache, no padding."""
    out = np.zeros((len(prompts), len(labels)))
    with torch.no_grad():
        for i, p in enumerate(prompts):
            for k, lab in enumerate(labels):
                lp = torch.log_softmax(model(input_ids=torch.tensor([p + lab])).logits[0], -1)
                out[i, k] = np.mean([lp[len(p) - 1 + j, t].item() for j, t in enumerate(lab)])
    return out


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_shared_prefix_scores_equal_one_prompt_at_a_time(arch: str, tmp_path: Path) -> None:
    b = make_tiny_decoder(tmp_path / arch, arch, texts=list(KEYWORDS.values()) + NAMES)
    tok, model = load_tokenizer(b, causal=True), load_model(b, "AutoModelForCausalLM").eval()
    plan = llm.plan_prompt(tok, NAMES, NAMES, {}, 64)
    texts = ["tumour carcinoma", "colon liver gastric bowel hepatic patients study", "x", ""]
    suffixes = llm.encode_texts(tok, plan, texts)
    got = llm.label_logprobs(
        model, plan.prefix, suffixes, plan.labels, tok.pad_token_id, CPU, None, None, 3
    )
    want = _reference(model, [plan.prefix + s for s in suffixes], plan.labels)
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_calibration_divides_the_content_free_prior_out() -> None:
    raw = np.array([[0.6, 0.3, 0.1], [0.5, 0.4, 0.1]])
    prior = np.array([0.6, 0.2, 0.2])
    cal = llm.calibrate(raw, prior)
    # row 0: (1, 1.5, 0.5) / 3 ; row 1: (0.833, 2, 0.5) / 3.333
    np.testing.assert_allclose(cal[0], [1 / 3, 0.5, 1 / 6])
    np.testing.assert_allclose(cal[1], np.array([5 / 6, 2, 0.5]) / (5 / 6 + 2.5))
    assert cal.argmax(1).tolist() == [1, 1]  # the prior's favourite class no longer wins
    np.testing.assert_allclose(llm.calibrate(raw, np.full(3, 1 / 3)), raw)  # flat prior: no-op


def test_the_prompt_carries_names_and_descriptions_and_never_cuts_them(decoders) -> None:
    tok = load_tokenizer(decoders["llama"], causal=True)
    descs = [f"{n}: {KEYWORDS[n]}" for n in NAMES]
    plan = llm.plan_prompt(tok, NAMES, descs, {}, 16)
    assert all(n in plan.rendered for n in NAMES) and KEYWORDS[NAMES[0]] in plan.rendered
    long = ["tumour " * 200]
    (row,) = llm.encode_texts(tok, plan, long)
    assert len(row) == 16 + len(plan.tail)  # the abstract is cut to max_length, not the tail
    assert row[-len(plan.tail) :] == plan.tail


def test_a_chat_template_wraps_the_prompt_through_the_sandbox(decoders) -> None:
    tok = load_tokenizer(decoders["qwen2"], causal=True)
    tpl = llm.bundle_chat_template(decoders["qwen2"], tok)
    plan = llm.plan_prompt(tok, NAMES, NAMES, {"chat_template": True}, 64, tpl)
    assert plan.chat and plan.rendered.startswith("<|im_start|>user\n")
    assert plan.rendered.endswith("<|im_end|>\n<|im_start|>assistant\n")
    assert "{text}" in plan.rendered


def test_a_hostile_template_fails_the_job_not_the_host(decoders, tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    evil = "{{ cycler.__init__.__globals__.os.system('touch " + str(marker) + "') }}"
    tok = load_tokenizer(decoders["qwen2"], causal=True)
    with pytest.raises(Exception, match="refused"):
        llm.plan_prompt(tok, NAMES, NAMES, {"chat_template": True}, 64, evil)
    assert not marker.exists()


@pytest.mark.parametrize("calibration", ["none", "content-free"])
def test_phase1_job_reports_the_prior_and_scores_the_chosen_distribution(
    calibration: str, decoders, corpora, tmp_path: Path, clean_env
) -> None:
    _train, hold = corpora
    job = build_job(tmp_path / "job", decoders["qwen2"], "causal-lm", "phase1", _train, hold)
    spec = json.loads((job / "spec.json").read_text())
    spec["manifest"]["phase1"]["calibration"] = calibration
    (job / "spec.json").write_text(json.dumps(spec))
    assert run_inprocess(job) == 0
    comp = json.loads((job / "out" / "compute.json").read_text())
    info = comp["info"]
    assert info["calibration"] == calibration
    prior = np.array(info["content_free_prior"])
    assert prior.shape == (5,) and abs(prior.sum() - 1) < 1e-4
    probs = np.array(read_preds(job)["probs"])
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-6)
    assert comp["flops_by_stage"]["calibrate"] > 0 and comp["flops_by_stage"]["predict"] > 0


def test_gradient_checkpointing_is_on_for_decoder_training(decoders) -> None:
    from transformers import AutoModelForSequenceClassification

    m = AutoModelForSequenceClassification.from_pretrained(decoders["llama"], num_labels=3)
    assert prepare_for_training(m) is True
    assert m.is_gradient_checkpointing and m.config.use_cache is False
    m.train()
    ids = torch.randint(3, 50, (2, 12))
    out = m(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    out.sum().backward()  # checkpointed blocks still back-propagate
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)


SMOL = {
    "model_type": "llama",
    "hidden_size": 576,
    "intermediate_size": 1536,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "head_dim": 64,
    "num_hidden_layers": 30,
    "vocab_size": 49152,
}


def test_memory_estimate_grows_with_the_recipe_and_fits_smollm2_lora() -> None:
    def m(method: str, b: int, t: int, kind: str = "causal-lm") -> dict[str, Any]:
        return {"kind": kind, "train": {"method": method, "batch_size": b, "max_length": t}}

    n = 134_515_008
    lora = estimate(SMOL, n, m("lora", 8, 256))
    assert 1.7 < lora.phase2_gb < 2.8  # 2.28 GB measured (docs/llm-vendors.md)
    assert lora.fits(8.6) and lora.gradient_checkpointing
    full = estimate(SMOL, n, m("full", 8, 256))
    assert full.training_state_gb == pytest.approx(3 * 4 * n / 1024**3)
    assert estimate(SMOL, n, m("lora", 16, 256)).phase2_gb > lora.phase2_gb
    assert estimate(SMOL, n, m("lora", 8, 512)).phase2_gb > lora.phase2_gb
    no_gc = estimate(SMOL, n, m("lora", 8, 256, kind="encoder"))
    assert no_gc.activations_gb > 3 * lora.activations_gb  # what checkpointing saves
    assert not estimate(SMOL, n, m("full", 64, 2048)).fits(8.6)
    assert Shape.of(SMOL).d_kv == 192
    s = estimate_seconds({"phase1": 0.02, "phase2": 0.3}, threads=2)
    assert s["phase2_s"] > s["phase1_s"] > 0
