"""The job entrypoint end to end on tiny random models: phase 1, phase 2, budget, isolation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.engine.conftest import (
    CANARY,
    accuracy,
    build_job,
    read_preds,
    run_inprocess,
    run_subprocess,
)

pytestmark = pytest.mark.torch

# Settings under which the tiny random models learn the keyword task in a second or two.
LEARN = {"epochs": 8, "learning_rate": 2e-3, "batch_size": 8, "early_stopping_patience": 10}


def check_predictions(job: Path, holdout: pd.DataFrame) -> dict[str, Any]:
    p = read_preds(job)
    spec_classes = [c["name"] for c in json.loads((job / "spec.json").read_text())["classes"]]
    assert p["classes"] == spec_classes
    assert sorted(p["row_ids"]) == sorted(holdout["row_id"])
    probs = np.array(p["probs"])
    assert probs.shape == (len(holdout), len(spec_classes))
    assert (probs >= 0).all() and np.allclose(probs.sum(1), 1.0, atol=1e-5)
    return p


@pytest.mark.parametrize("kind", ["encoder", "classifier", "causal-lm"])
def test_phase1_writes_valid_predictions(
    kind: str, bundles, corpora, tmp_path: Path, clean_env
) -> None:
    train, holdout = corpora
    job = build_job(tmp_path / "job", bundles[kind], kind, "phase1", train, holdout)
    assert run_inprocess(job) == 0, (job / "out" / "log.txt").read_text()
    check_predictions(job, holdout)
    compute = json.loads((job / "out" / "compute.json").read_text())
    assert compute["flops"] > 0 and compute["tokens"] > 0 and compute["n_params"] > 0
    assert compute["stopped_by_budget"] is False and compute["peak_rss_mb"] > 0
    records = [
        json.loads(line) for line in (job / "out" / "progress.jsonl").read_text().splitlines()
    ]
    assert records and records[-1]["step"] == records[-1]["total"]
    assert not (job / "out" / "error.json").exists()


def test_encoder_zero_shot_uses_descriptions(bundles, corpora, tmp_path: Path, clean_env) -> None:
    """A class whose description override is an abstract's own text wins that abstract."""
    train, holdout = corpora
    job = build_job(
        tmp_path / "job", bundles["encoder"], "encoder", "phase1", train, holdout.head(1)
    )
    spec = json.loads((job / "spec.json").read_text())
    spec["manifest"]["descriptions"] = {"cardiovascular diseases": holdout["text"].iloc[0]}
    (job / "spec.json").write_text(json.dumps(spec))
    assert run_inprocess(job) == 0
    p = read_preds(job)
    assert p["classes"][int(np.argmax(p["probs"][0]))] == "cardiovascular diseases"


@pytest.mark.parametrize(
    ("kind", "method"),
    [
        ("encoder", "full"),
        ("encoder", "head-only"),
        ("classifier", "full"),
        pytest.param("encoder", "lora", marks=pytest.mark.slow),
        pytest.param("causal-lm", "lora", marks=pytest.mark.slow),
    ],
)
def test_phase2_learns_keyword_task(
    kind, method, bundles, corpora, tmp_path: Path, clean_env
) -> None:
    train, holdout = corpora
    over = {**LEARN, "method": method}
    if method == "lora":
        over["learning_rate"] = 1e-2  # adapters on a random model need a bigger step
    job = build_job(tmp_path / "job", bundles[kind], kind, "phase2", train, holdout, over)
    assert run_inprocess(job) == 0, (job / "out" / "log.txt").read_text()
    check_predictions(job, holdout)
    assert accuracy(job, holdout) > 0.6  # chance is 0.2
    model_dir = job / "out" / "model"
    files = {p.name for p in model_dir.iterdir()}
    assert not any(f.endswith((".bin", ".pt", ".pkl")) for f in files)
    assert ("head.safetensors" if method == "head-only" else "model.safetensors") in files
    compute = json.loads((job / "out" / "compute.json").read_text())
    assert (
        compute["flops_by_stage"].get("train", compute["flops_by_stage"].get("embed-train", 0)) > 0
    )
    if method == "lora":  # adapters counted as trained, not the merged model's head alone
        cfg = json.loads((model_dir / "config.json").read_text())
        head = len(cfg["id2label"]) * (cfg["hidden_size"] + 1)
        assert head < compute["n_trainable"] < compute["n_params"]
    if method != "head-only":
        assert compute["info"]["best_val_macro_f1"] is not None
        kept = sorted(p.name for p in (job / "checkpoints").iterdir())
        assert len(kept) <= 3 and all((job / "checkpoints" / k / "COMPLETE").exists() for k in kept)


@pytest.mark.parametrize("method", ["full", "head-only"])
def test_budget_stop_still_predicts(method, bundles, corpora, tmp_path: Path, clean_env) -> None:
    train, holdout = corpora
    over = {**LEARN, "method": method}
    job = build_job(
        tmp_path / "job",
        bundles["encoder"],
        "encoder",
        "phase2",
        train,
        holdout,
        over,
        budget_flops=5e6,
    )
    assert run_inprocess(job) == 0
    check_predictions(job, holdout)
    compute = json.loads((job / "out" / "compute.json").read_text())
    assert compute["stopped_by_budget"] is True
    assert compute["flops"] >= 5e6
    if method == "full":
        assert compute["info"]["steps"] < 5


def test_bad_input_writes_error_json(bundles, corpora, tmp_path: Path, clean_env) -> None:
    train, holdout = corpora
    bad = train.assign(label="not a class")
    job = build_job(tmp_path / "job", bundles["encoder"], "encoder", "phase2", bad, holdout)
    assert run_inprocess(job) != 0
    err = json.loads((job / "out" / "error.json").read_text())
    assert err["error_class"] == "invalid_input" and "not a class" in err["message"]


def test_model_error_for_a_broken_bundle(corpora, tmp_path: Path, clean_env) -> None:
    train, holdout = corpora
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    job = build_job(tmp_path / "job", broken, "encoder", "phase1", train, holdout)
    assert run_inprocess(job) != 0
    assert json.loads((job / "out" / "error.json").read_text())["error_class"] == "model_error"


def _snapshot(root: Path) -> dict[str, tuple[float, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_mtime, p.stat().st_size)
        for p in root.rglob("*")
        if not p.is_symlink()
    }


@pytest.mark.slow
def test_job_writes_only_out_and_checkpoints(bundles, corpora, tmp_path: Path) -> None:
    """A real subprocess, an empty HOME and cwd: afterwards only out/ and checkpoints/ changed,
    and the holdout labels (with a canary) are nowhere in the job directory."""
    train, holdout = corpora
    hidden = holdout.copy()
    hidden.loc[0, "label"] = CANARY  # the hidden truth carries a label no job input has
    job = build_job(
        tmp_path / "job",
        bundles["encoder"],
        "encoder",
        "phase2",
        train,
        hidden,
        {**LEARN, "epochs": 2},
        checkpoint_every=3,
    )
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    before = {k: v for k, v in _snapshot(job).items() if not k.startswith(("out", "checkpoints"))}
    bundle_before = _snapshot(bundles["encoder"])
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS"))}
    env["HOME"] = str(home)
    res = run_subprocess(job, cwd=cwd, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    after = {k: v for k, v in _snapshot(job).items() if not k.startswith(("out", "checkpoints"))}
    assert after == before
    assert _snapshot(bundles["encoder"]) == bundle_before
    assert list(home.iterdir()) == [] and list(cwd.iterdir()) == []
    assert pd.read_parquet(job / "inputs" / "holdout_texts.parquet").columns.tolist() == [
        "row_id",
        "text",
    ]
    for p in job.rglob("*"):
        if p.is_file() and not p.is_symlink() and "bundle" not in p.parts:
            assert CANARY.encode() not in p.read_bytes(), p
