"""Asynchronous, time-based checkpoints and the frozen-embedding recipe (issue #18)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from bedside.engine import checkpoint as ckpt
from bedside.errors import BundleError
from bedside.submissions.manifest import TrainConfig
from tests.engine.conftest import build_job, read_preds, run_inprocess

pytestmark = pytest.mark.torch


def _tiny() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, foreach=True)
    model(torch.randn(5, 4)).sum().backward()
    opt.step()
    opt.zero_grad()
    return model, opt


def _step(model: torch.nn.Module, opt: torch.optim.Optimizer) -> None:
    model(torch.randn(5, 4)).sum().backward()
    opt.step()
    opt.zero_grad()


def test_snapshot_is_a_copy_taken_before_the_next_step(tmp_path: Path) -> None:
    model, opt = _tiny()
    before = model[0].weight.detach().clone()
    moment = opt.state_dict()["state"][0]["exp_avg"].clone()
    writer = ckpt.AsyncWriter(tmp_path)
    writer.submit(ckpt.snapshot(1, model, opt, {"epoch": 0}))
    _step(model, opt)  # in place, possibly while the thread is still writing
    writer.wait()
    _, data = ckpt.latest(tmp_path)  # type: ignore[misc]
    assert not torch.equal(model[0].weight, before)
    assert torch.equal(data["model"]["0.weight"], before)
    assert torch.equal(data["optimizer"]["state.0.exp_avg"], moment)
    assert data["state"]["step"] == 1 and data["state"]["epoch"] == 0


def test_async_and_sync_writes_give_the_same_files(tmp_path: Path) -> None:
    model, opt = _tiny()
    snap = ckpt.snapshot(3, model, opt, {"epoch": 1})
    ckpt.write(tmp_path / "sync", snap)
    writer = ckpt.AsyncWriter(tmp_path / "async")
    writer.submit(snap)
    writer.wait()
    a, b = tmp_path / "sync" / "checkpoint-3", tmp_path / "async" / "checkpoint-3"
    assert ckpt.is_complete(a) and ckpt.is_complete(b)
    for name in ("model.safetensors", "optimizer.safetensors", "rng.safetensors", "state.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_a_failed_background_write_is_raised_not_lost(tmp_path: Path) -> None:
    model, opt = _tiny()
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")  # mkdir under a file fails in the thread
    writer = ckpt.AsyncWriter(blocker / "checkpoints")
    writer.submit(ckpt.snapshot(1, model, opt, {}))
    with pytest.raises(OSError):
        writer.wait()
    writer.wait()  # reported once


def test_only_the_newest_checkpoint_keeps_the_optimizer_moments(tmp_path: Path) -> None:
    model, opt = _tiny()
    for step in (1, 2, 3):
        _step(model, opt)
        ckpt.save(tmp_path, step, model, opt, {}, keep_steps={1})
    found = dict(ckpt.complete_checkpoints(tmp_path))
    assert sorted(found) == [1, 2, 3]  # the best (1) and the last two, all still complete
    assert (found[3] / "optimizer.safetensors").is_file()
    for s in (1, 2):
        assert not (found[s] / "optimizer.safetensors").exists()
        assert not (found[s] / "optimizer.json").exists()
        assert "model" in ckpt.load(found[s]) and "optimizer" not in ckpt.load(found[s])
    assert "optimizer" in ckpt.latest(tmp_path)[1]  # type: ignore[index]


def test_schedule_by_steps_and_by_minutes() -> None:
    now = [0.0]
    by_steps = ckpt.Schedule(every_steps=5, clock=lambda: now[0])
    assert [s for s in range(1, 16) if by_steps.due(s)] == [5, 10, 15]
    by_time = ckpt.Schedule(every_steps=5, every_minutes=2.0, clock=lambda: now[0])
    assert not by_time.due(5)  # the step count no longer matters
    now[0] = 119.0
    assert not by_time.due(7)
    now[0] = 120.0
    assert by_time.due(8)
    by_time.saved()
    now[0] = 200.0
    assert not by_time.due(9)
    now[0] = 240.0
    assert by_time.due(10)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("checkpoint_minutes", 0.0),
        ("checkpoint_minutes", "5"),
        ("async_checkpoints", 1),
        ("freeze_embeddings", "yes"),
    ],
)
def test_train_config_rejects_bad_throughput_options(key: str, value: object) -> None:
    with pytest.raises(BundleError, match=key):
        TrainConfig(**{key: value})  # type: ignore[arg-type]


def test_train_config_defaults_keep_the_old_behaviour() -> None:
    t = TrainConfig()
    assert (t.freeze_embeddings, t.checkpoint_minutes, t.async_checkpoints) == (False, None, True)
    assert TrainConfig(checkpoint_minutes=5).checkpoint_minutes == 5.0


TRAIN = {
    "method": "full",
    "epochs": 2,
    "learning_rate": 2e-3,
    "batch_size": 8,
    "early_stopping_patience": 10,
}


def _job(tmp: Path, name: str, bundles, corpora, **train) -> Path:  # type: ignore[no-untyped-def]
    tr, ho = corpora
    return build_job(
        tmp / name,
        bundles["encoder"],
        "encoder",
        "phase2",
        tr,
        ho,
        {**TRAIN, **train},
        checkpoint_every=3,
        threads=1,
    )


@pytest.mark.slow
def test_default_job_predicts_as_the_synchronous_path(
    bundles, corpora, tmp_path: Path, clean_env
) -> None:
    """Async writes (the default) and time-based saves change when bytes hit the disk, never
    the result: the same predictions as the old synchronous, every-N-steps path."""
    old = _job(tmp_path, "sync", bundles, corpora, async_checkpoints=False)
    new = _job(tmp_path, "default", bundles, corpora)
    timed = _job(tmp_path, "timed", bundles, corpora, checkpoint_minutes=0.1)
    for job in (old, new, timed):
        assert run_inprocess(job) == 0, (job / "out" / "log.txt").read_text()
    a, b, c = read_preds(old), read_preds(new), read_preds(timed)
    assert a["row_ids"] == b["row_ids"] == c["row_ids"]
    np.testing.assert_array_equal(np.array(a["probs"]), np.array(b["probs"]))
    np.testing.assert_array_equal(np.array(a["probs"]), np.array(c["probs"]))
    compute = json.loads((new / "out" / "compute.json").read_text())
    assert compute["info"]["recipe"] == "full"
    # threads = the job's CPU quota, no tokenizer threads on top; peak memory per job
    assert compute["threads"] == 1 and torch.get_num_threads() == 1
    assert os.environ["TOKENIZERS_PARALLELISM"] == "false" and compute["peak_rss_mb"] > 0
    newest = ckpt.complete_checkpoints(new / "checkpoints")
    assert (newest[0][1] / "optimizer.safetensors").is_file()
    assert not any((d / "optimizer.safetensors").exists() for _, d in newest[1:])


@pytest.mark.slow
def test_freeze_embeddings_is_its_own_recipe(bundles, corpora, tmp_path: Path, clean_env) -> None:
    full = _job(tmp_path, "full", bundles, corpora)
    frozen = _job(tmp_path, "frozen", bundles, corpora, freeze_embeddings=True)
    for job in (full, frozen):
        assert run_inprocess(job) == 0, (job / "out" / "log.txt").read_text()
    cf = json.loads((full / "out" / "compute.json").read_text())
    cz = json.loads((frozen / "out" / "compute.json").read_text())
    assert cz["info"]["recipe"] == "full+frozen-embeddings"
    bundle = load_file(str(bundles["encoder"] / "model.safetensors"))
    table = next(k for k in bundle if k.endswith("word_embeddings.weight"))
    assert cf["n_trainable"] - cz["n_trainable"] == bundle[table].numel()
    # the table leaves the job as it came in; the full recipe moved it
    out_z = load_file(str(frozen / "out" / "model" / "model.safetensors"))
    out_f = load_file(str(full / "out" / "model" / "model.safetensors"))
    key = next(k for k in out_z if k.endswith("word_embeddings.weight"))
    assert torch.equal(out_z[key], bundle[table])
    assert not torch.equal(out_f[key], bundle[table])
    # no AdamW state for it in the newest checkpoint, and the same FLOPs per token (a lookup)
    newest = ckpt.complete_checkpoints(frozen / "checkpoints")[0][1]
    assert key not in load_file(str(newest / "model.safetensors"))
    assert cz["flops_by_stage"]["train"] == pytest.approx(cf["flops_by_stage"]["train"])
