"""``bedside check``'s smoke run and small pure helpers of the engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bedside.engine.dataprep import class_weights, macro_f1, split_validation
from bedside.engine.finetune import get_lr
from bedside.engine.io import with_defaults
from bedside.engine.modeling import train_batches
from bedside.testing.tinymodels import default_manifest


@pytest.mark.slow
@pytest.mark.torch
def test_smoke_check_runs_both_phases(bundles, tmp_path: Path) -> None:
    from bedside.engine.smoke import smoke_check

    manifest = default_manifest("encoder", "tiny", [])
    res = smoke_check(bundles["encoder"], manifest, tmp_path / "check")
    assert res["phase1"]["ok"] and res["phase2"]["ok"], res
    assert res["phase1"]["seconds"] > 0 and res["phase2"]["error"] is None


@pytest.mark.slow
@pytest.mark.torch
def test_smoke_check_reports_a_broken_bundle(tmp_path: Path) -> None:
    from bedside.engine.smoke import smoke_check

    broken = tmp_path / "broken"
    broken.mkdir()
    res = smoke_check(broken, default_manifest("encoder", "x", []), tmp_path / "check", timeout=120)
    assert not res["phase1"]["ok"] and "model_error" in res["phase1"]["error"]


def test_macro_f1_known_answer() -> None:
    # class 0: tp 1 fp 1 fn 0 -> 2/3 ; class 1: tp 1 fp 0 fn 1 -> 2/3 ; class 2 absent
    assert macro_f1(np.array([0, 1, 1]), np.array([0, 1, 0]), 3) == pytest.approx(2 / 3)
    assert macro_f1(np.array([0, 0]), np.array([0, 0]), 5) == 1.0


def test_validation_split_keeps_duplicates_together() -> None:
    texts = [f"text number {i % 20}" for i in range(60)]  # every text three times
    y = np.array([i % 20 % 5 for i in range(60)])
    tr, va = split_validation(texts, y, 0.2, seed=0)
    assert len(va) > 0 and not set(tr) & set(va)
    assert {texts[i] for i in tr}.isdisjoint({texts[i] for i in va})
    assert set(y[va]) == set(range(5))


def test_class_weights_and_lr_schedule() -> None:
    w = class_weights(np.array([0, 0, 0, 1]), 3, "balanced")
    assert (
        w is not None
        and w[0] == pytest.approx(4 / 9)
        and w[1] == pytest.approx(4 / 3)
        and w[2] == 0
    )
    assert class_weights(np.array([0]), 3, "none") is None
    assert (
        get_lr(0, 10, 2, 1.0) == 0.5
        and get_lr(2, 10, 2, 1.0) == 1.0
        and get_lr(10, 10, 2, 1.0) == 0.0
    )


def test_batches_are_a_pure_function_of_seed_and_epoch() -> None:
    lengths = np.arange(100) % 17
    a, b = train_batches(lengths, 8, 3, 1), train_batches(lengths, 8, 3, 1)
    assert all((x == y).all() for x, y in zip(a, b, strict=True))
    assert sorted(np.concatenate(a)) == list(range(100))
    assert any((x != y).any() for x, y in zip(a, train_batches(lengths, 8, 3, 2), strict=False))


def test_manifest_defaults_fill_missing_keys() -> None:
    m = with_defaults({"train": {"method": "lora", "lora": {"r": 4}}}, "encoder")
    assert m["train"]["lora"]["r"] == 4 and m["train"]["lora"]["alpha"] == 16
    assert m["train"]["validation_fraction"] == 0.1 and m["phase1"]["method"] == "similarity"
