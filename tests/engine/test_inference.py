"""A saved phase-2 model scores texts through load_predictor exactly as the job scored the
holdout; the decision rule is fitted on the validation slice only; windows at train and predict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bedside.contracts import Compute
from bedside.engine import decision
from bedside.engine.inference import load_predictor
from tests.engine.conftest import build_job, read_preds, run_inprocess

pytestmark = pytest.mark.torch

LEARN = {
    "epochs": 4,
    "learning_rate": 2e-3,
    "batch_size": 8,
    "early_stopping_patience": 10,
    "validation_fraction": 0.3,  # 45 rows: enough for the rule to be fitted at all
}


@pytest.mark.parametrize(
    ("method", "over"),
    [
        ("full", {"windows": 3, "window_stride": 8, "max_length": 16, "layer_lr_decay": 0.8}),
        ("head-only", {"windows": 3, "window_stride": 8, "max_length": 16}),
        ("full", {"label_smoothing": 0.1, "class_weighting": "sqrt"}),
        ("full", {"lexical_blend": 0.5}),
        ("head-only", {"lexical_blend": 0.3, "windows": 3, "window_stride": 8, "max_length": 16}),
    ],
)
def test_load_predictor_reproduces_the_job(
    method: str, over: dict[str, Any], bundles, corpora, tmp_path: Path, clean_env
) -> None:
    train, holdout = corpora
    if "windows" in over:  # texts of 2-3 windows at max_length 16
        train = train.assign(text=train["text"] + " " + train["text"])
        holdout = holdout.assign(text=holdout["text"] + " " + holdout["text"])
    settings = {**LEARN, "method": method, "decision_rule": "fitted-offsets", **over}
    job = build_job(
        tmp_path / "job", bundles["encoder"], "encoder", "phase2", train, holdout, settings
    )
    assert run_inprocess(job) == 0, (job / "out" / "log.txt").read_text()
    model_dir = job / "out" / "model"
    saved = json.loads((model_dir / "decision.json").read_text())
    assert saved["classes"] == read_preds(job)["classes"]
    assert saved["windows"]["windows"] == over.get("windows", 1)
    assert saved["lexical_blend"] == over.get("lexical_blend", 0.0)
    assert (model_dir / "lexical.safetensors").is_file() == ("lexical_blend" in over)
    pred = load_predictor(model_dir, job / "bundle")
    assert pred.lexical_weight == over.get("lexical_blend", 0.0)
    probs = pred.predict_proba(holdout["text"].tolist())
    want = np.array(read_preds(job)["probs"])
    order = {r: i for i, r in enumerate(read_preds(job)["row_ids"])}
    want = want[[order[r] for r in holdout["row_id"]]]
    assert np.allclose(probs, want, atol=1e-4)
    compute = Compute.from_untrusted(json.loads((job / "out" / "compute.json").read_text()))
    v = compute.validation
    assert v is not None and v.n_validation and v.macro_f1_raw is not None
    assert v.macro_f1_adjusted is not None and v.macro_f1_adjusted >= v.macro_f1_raw
    assert v.decision_rule in ("argmax", "fitted-offsets") and len(v.offsets) == 5
    if method == "full":
        assert v.windows_per_text and (v.windows_per_text > 1) == ("windows" in over)
        assert v.curve and v.epochs_run


@pytest.mark.parametrize(
    ("method", "blend"), [("full", 0.0), ("head-only", 0.0), ("full", 0.5), ("head-only", 0.5)]
)
def test_holdout_never_reaches_the_fit(
    method: str, blend: float, bundles, corpora, tmp_path: Path, clean_env, monkeypatch
) -> None:
    """The rule is fitted on as many rows as the validation slice holds, labelled with
    training labels; the holdout texts are scored only after the fit. With a lexical blend the
    TF-IDF models are fitted on training texts only."""
    from bedside.engine import lexical

    train, holdout = corpora
    calls: list[dict[str, Any]] = []
    real_fit = decision.fit
    fitted_on: list[set[str]] = []
    real_tfidf = lexical.fit_tfidf

    def spy(val_logits, y_val, classes, how="fitted-offsets"):  # type: ignore[no-untyped-def]
        calls.append({"n": len(y_val), "rows": len(val_logits)})
        return real_fit(val_logits, y_val, classes, how)

    def spy_tfidf(texts, y, n_classes, seed=0):  # type: ignore[no-untyped-def]
        fitted_on.append(set(texts))
        return real_tfidf(texts, y, n_classes, seed)

    monkeypatch.setattr(decision, "fit", spy)
    monkeypatch.setattr(lexical, "fit_tfidf", spy_tfidf)
    over = {**LEARN, "method": method, "decision_rule": "fitted-offsets", "lexical_blend": blend}
    job = build_job(tmp_path / "job", bundles["encoder"], "encoder", "phase2", train, holdout, over)
    assert run_inprocess(job) == 0
    compute = json.loads((job / "out" / "compute.json").read_text())
    n_val = compute["validation"]["n_validation"]
    assert len(calls) == 1 and calls[0] == {"n": n_val, "rows": n_val}
    assert 0 < n_val < len(train) and n_val != len(holdout)
    # one model for the validation scores (training part only), one refitted for the holdout
    assert len(fitted_on) == (2 if blend else 0)
    assert all(not (f & set(holdout["text"])) and f <= set(train["text"]) for f in fitted_on)
    if blend:
        assert len(fitted_on[0]) < len(fitted_on[1])  # the validation rows stay out of the first


def test_layer_decay_groups() -> None:
    torch = pytest.importorskip("torch")
    from bedside.engine.finetune import layer_depth, make_optimizer

    assert layer_depth("bert.embeddings.word_embeddings.weight", 2) == 0
    assert layer_depth("bert.encoder.layer.1.output.dense.weight", 2) == 2
    assert layer_depth("classifier.weight", 2) == 3

    class M(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = type("C", (), {"num_hidden_layers": 2})()
            self.embeddings = torch.nn.Linear(2, 2)
            self.layer = torch.nn.ModuleList([torch.nn.Linear(2, 2) for _ in range(2)])
            self.classifier = torch.nn.Linear(2, 2)

    opt = make_optimizer(M(), 1e-3, 0.01, 0.5)
    scales = sorted({g["lr_scale"] for g in opt.param_groups})
    assert scales == [0.125, 0.25, 0.5, 1.0]
    flat = make_optimizer(M(), 1e-3, 0.01, 1.0)
    assert {g["lr_scale"] for g in flat.param_groups} == {1.0} and len(flat.param_groups) == 2
