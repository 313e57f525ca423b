"""Padding-bounded length buckets and ``[train] compile`` (issue #18)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bedside.engine.compiled import check_toolchain
from bedside.engine.modeling import (
    bucket_width,
    bucket_widths,
    collate,
    pad_fraction,
    train_batches,
)
from bedside.errors import BundleError, JobError
from bedside.submissions.manifest import TrainConfig
from bedside.testing.tinymodels import make_tiny_bundle
from tests.engine.conftest import build_job, read_preds, run_inprocess

pytestmark = pytest.mark.torch


def _abstract_like(n: int, max_length: int, seed: int = 0) -> np.ndarray:
    """Like dev.csv under a MiniLM tokenizer: most texts truncated at max_length, a long tail
    of shorter ones."""
    rng = np.random.default_rng(seed)
    short = rng.integers(max_length // 2, max_length, size=n)
    return np.where(rng.random(n) < 0.55, max_length, short).astype(np.int64)


def test_bucket_widths_keep_padding_under_the_bound_in_every_epoch() -> None:
    lengths = _abstract_like(1500, 256)
    widths = bucket_widths(lengths, 16, seed=3)
    assert widths == bucket_widths(lengths, 16, seed=3)  # a pure function: resume pads alike
    assert 1 < len(widths) <= 8 and widths[-1] == 256 and widths == sorted(set(widths))
    for epoch in range(3):
        batches = train_batches(lengths, 16, 3, epoch)
        assert all(bucket_width(int(lengths[b].max()), widths) in widths for b in batches)
        pad = pad_fraction(lengths, batches, widths, n_rows=16)
        assert pad <= (0.03 if epoch == 0 else 0.035), (epoch, pad)
    # the same number of evenly spaced widths pads more
    even = list(np.linspace(256 / len(widths), 256, len(widths)).round().astype(int))
    batches = train_batches(lengths, 16, 3, 0)
    assert pad_fraction(lengths, batches, widths, 16) < pad_fraction(lengths, batches, even, 16)


def test_bucket_widths_place_each_width_optimally() -> None:
    """Against brute force over every set of widths of the same size (the longest included)."""
    lengths = np.random.default_rng(1).choice([20, 33, 47, 60, 64, 90, 100, 128], size=300)
    batches = train_batches(lengths, 8, 0, 0)
    cands = sorted({-(-int(lengths[b].max()) // 8) * 8 for b in batches})
    for max_pad in (0.2, 0.08, 0.0):
        widths = bucket_widths(lengths, 8, 0, max_pad=max_pad)
        best = min(
            pad_fraction(lengths, batches, [*combo, cands[-1]], 8)
            for combo in itertools.combinations(cands[:-1], len(widths) - 1)
        )
        got = pad_fraction(lengths, batches, widths, 8)
        assert got == pytest.approx(best, abs=1e-12)
        assert got <= max_pad or len(widths) == len(cands)
    assert bucket_widths(np.full(50, 40), 8, 0) == [40]  # one length: one width, no padding


def test_collate_pads_to_a_width_and_fills_short_batches() -> None:
    b = collate([[5, 6, 7], [8]], pad_id=0, width=8, n_rows=4)
    assert b["input_ids"].shape == (4, 8)
    assert b["input_ids"][0].tolist() == [5, 6, 7, 0, 0, 0, 0, 0]
    assert torch.equal(b["input_ids"][2], b["input_ids"][0])  # fill rows copy the first
    assert b["attention_mask"][:2].sum().item() == 4
    plain = collate([[5, 6, 7], [8]], pad_id=0)
    assert plain["input_ids"].shape == (2, 3)


def test_train_config_compile_flag() -> None:
    assert TrainConfig().compile is False and TrainConfig(compile=True).compile is True
    with pytest.raises(BundleError, match="compile"):
        TrainConfig(compile="yes")  # type: ignore[arg-type]


def test_compile_refuses_clearly_without_a_compiler(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    with pytest.raises(JobError, match="C\\+\\+ compiler") as e:
        check_toolchain(tmp_path)
    assert e.value.error_class == "invalid_input" and "compile = false" in (e.value.hint or "")
    monkeypatch.delenv("CXX")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(JobError, match="writable Inductor cache"):
        check_toolchain(blocker / "inductor")  # under a file: no directory, even for root
    check_toolchain(tmp_path / "inductor")  # this host has what Inductor needs


TRAIN = {
    "method": "full",
    "epochs": 1,
    "learning_rate": 2e-3,
    "batch_size": 8,
    "max_length": 16,  # the doubled test texts are longer: one width, one compilation
    "early_stopping_patience": 10,
}


@pytest.mark.slow
def test_compiled_training_predicts_as_eager_and_compiles_once_per_width(
    corpora, tmp_path: Path, clean_env, monkeypatch
) -> None:
    """Inductor takes tens of seconds per graph on 2 cores: one layer, one width."""
    import torch._dynamo
    import torch._inductor.config
    from torch._dynamo.utils import counters

    # the eager RNG for dropout inside compiled graphs: the same masks as the eager job
    monkeypatch.setattr(torch._inductor.config, "fallback_random", True)
    tr, ho = (df.assign(text=df["text"] + " " + df["text"]) for df in corpora)
    bundle = make_tiny_bundle(tmp_path / "enc", texts=tr["text"].tolist(), layers=1)
    jobs = {}
    for name, on in (("eager", False), ("compiled", True)):
        jobs[name] = build_job(
            tmp_path / name,
            bundle,
            "encoder",
            "phase2",
            tr,
            ho,
            {**TRAIN, "compile": on},
            checkpoint_every=100,
            threads=1,
        )
    assert run_inprocess(jobs["eager"]) == 0, (jobs["eager"] / "out" / "log.txt").read_text()
    torch._dynamo.reset()
    counters.clear()
    try:
        rc = run_inprocess(jobs["compiled"])
        graphs = counters["stats"]["unique_graphs"]
    finally:
        torch._dynamo.reset()
    assert rc == 0, (jobs["compiled"] / "out" / "log.txt").read_text()
    info = json.loads((jobs["compiled"] / "out" / "compute.json").read_text())["info"]
    comp = info["compile"]
    assert 1 <= len(comp["shapes"]) <= len(comp["widths"]) <= 8
    assert {s[0] for s in comp["shapes"]} == {TRAIN["batch_size"]}  # short batches filled
    assert {s[1] for s in comp["shapes"]} <= set(comp["widths"])
    assert 1 <= graphs <= len(comp["widths"])  # one graph per width met, never per batch
    assert comp["compile_steps_s"] > 0 and 0.0 <= info["train_pad_fraction"] < 1.0
    eager_info = json.loads((jobs["eager"] / "out" / "compute.json").read_text())["info"]
    assert eager_info["compile"] is None
    assert eager_info["train_pad_fraction"] <= info["train_pad_fraction"]
    a, b = read_preds(jobs["eager"]), read_preds(jobs["compiled"])
    assert a["row_ids"] == b["row_ids"]
    np.testing.assert_allclose(np.array(a["probs"]), np.array(b["probs"]), atol=1e-4)
