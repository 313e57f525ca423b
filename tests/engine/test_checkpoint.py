"""Checkpoints: atomic, pickle-free, torn ones skipped, and a killed job resumes to the same result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from bedside.engine import checkpoint as ckpt
from tests.engine.conftest import build_job, read_preds, run_inprocess

pytestmark = pytest.mark.torch


def _tiny() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, foreach=True)
    for _ in range(2):
        model(torch.randn(5, 4)).sum().backward()
        opt.step()
        opt.zero_grad()
    return model, opt


def test_roundtrip_restores_weights_optimizer_and_rng(tmp_path: Path) -> None:
    model, opt = _tiny()
    ckpt.save(tmp_path, 2, model, opt, {"epoch": 1, "step_in_epoch": 3})
    expected_next = torch.rand(3)  # what the RNG gives right after the save
    model2, opt2 = _tiny()
    torch.nn.init.zeros_(model2[0].weight)
    path, data = ckpt.latest(tmp_path)  # type: ignore[misc]
    ckpt.load_weights(model2, data["model"])
    ckpt.load_optimizer_state(opt2, data["optimizer"], data["optimizer_meta"])
    ckpt.set_rng_state(data["rng"], data["state"]["rng"])
    assert path.name == "checkpoint-2" and data["state"]["step_in_epoch"] == 3
    assert torch.equal(model2[0].weight, model[0].weight)
    assert torch.equal(
        opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"]
    )
    assert torch.equal(torch.rand(3), expected_next)
    assert not any(p.suffix in (".bin", ".pt", ".pkl") for p in path.iterdir())


def test_torn_checkpoints_are_skipped(tmp_path: Path) -> None:
    model, opt = _tiny()
    for step in (2, 4):
        ckpt.save(tmp_path, step, model, opt, {"epoch": 0})
    torn = tmp_path / "checkpoint-6"  # killed before COMPLETE was written
    torn.mkdir()
    (torn / "model.safetensors").write_bytes(b"partial")
    assert ckpt.latest(tmp_path)[0].name == "checkpoint-4"  # type: ignore[index]
    f = tmp_path / "checkpoint-4" / "model.safetensors"  # truncated despite its marker
    f.write_bytes(f.read_bytes()[:50])
    assert ckpt.latest(tmp_path)[0].name == "checkpoint-2"  # type: ignore[index]


def test_prune_keeps_last_two_and_best(tmp_path: Path) -> None:
    model, opt = _tiny()
    for step in (1, 2, 3, 4, 5):
        ckpt.save(tmp_path, step, model, opt, {}, keep_steps={2})
    (tmp_path / ".tmp-checkpoint-9-x").mkdir()
    ckpt.prune(tmp_path, {2})
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint-2",
        "checkpoint-4",
        "checkpoint-5",
    ]


RESUME = {
    "method": "full",
    "epochs": 4,
    "learning_rate": 2e-3,
    "batch_size": 8,
    "early_stopping_patience": 10,  # the most a manifest may ask: never stops in 4 epochs
}


@pytest.mark.slow
def test_resume_after_kill_matches_uninterrupted(
    bundles, corpora, tmp_path: Path, clean_env
) -> None:
    train, holdout = corpora
    kw = {"checkpoint_every": 5}
    ref = build_job(
        tmp_path / "ref", bundles["encoder"], "encoder", "phase2", train, holdout, RESUME, **kw
    )
    job = build_job(
        tmp_path / "job", bundles["encoder"], "encoder", "phase2", train, holdout, RESUME, **kw
    )

    proc = subprocess.Popen(
        [sys.executable, "-m", "bedside.engine.entrypoint", str(job)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if ckpt.complete_checkpoints(job / "checkpoints"):
            break
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (job / "out" / "predictions.json").exists(), (
        "the job finished before it could be killed"
    )
    first = ckpt.complete_checkpoints(job / "checkpoints")[0][0]
    torn = job / "checkpoints" / "checkpoint-100000"  # a torn newer one must be ignored
    torn.mkdir(exist_ok=True)
    (torn / "model.safetensors").write_bytes(b"junk")

    assert run_inprocess(job) == 0, (job / "out" / "log.txt").read_text()
    assert "resumed from checkpoint-" in (job / "out" / "log.txt").read_text()
    assert run_inprocess(ref) == 0
    a, b = read_preds(job), read_preds(ref)
    assert (
        a["row_ids"] == b["row_ids"]
        and first < json.loads((job / "out" / "compute.json").read_text())["info"]["steps"]
    )
    np.testing.assert_allclose(np.array(a["probs"]), np.array(b["probs"]), atol=1e-5)
