"""Paired bootstrap of the macro-F1 difference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bedside.evaluation.metrics import macro_f1
from bedside.evaluation.paired import is_tie, paired_bootstrap


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=60))
def test_identical_predictions_give_zero(pairs: list[tuple[int, int]]) -> None:
    t = [a for a, _ in pairs]
    p = [b for _, b in pairs]
    r = paired_bootstrap(t, p, p, 4, resamples=100, seed=0)
    assert r == {"delta": 0.0, "ci": [0.0, 0.0], "p_value": 1.0}
    assert is_tie(r)


def test_better_model_has_positive_delta_and_small_p() -> None:
    rng = np.random.default_rng(0)
    t = rng.integers(0, 5, 800)
    weak = np.where(rng.random(800) < 0.5, t, rng.integers(0, 5, 800))
    strong = np.where(rng.random(800) < 0.8, t, rng.integers(0, 5, 800))
    r = paired_bootstrap(t, weak, strong, 5, resamples=1000, seed=1)
    assert r["delta"] == pytest.approx(macro_f1(t, strong, 5) - macro_f1(t, weak, 5))
    assert r["ci"][0] > 0
    assert r["p_value"] < 0.01
    assert not is_tie(r)
    # swapping the models flips the sign, same p-value
    s = paired_bootstrap(t, strong, weak, 5, resamples=1000, seed=1)
    assert s["delta"] == pytest.approx(-r["delta"])
    assert s["ci"] == pytest.approx([-r["ci"][1], -r["ci"][0]])
    assert s["p_value"] == pytest.approx(r["p_value"])


def test_nearly_equal_models_tie() -> None:
    rng = np.random.default_rng(3)
    t = rng.integers(0, 3, 300)
    a = np.where(rng.random(300) < 0.7, t, rng.integers(0, 3, 300))
    b = a.copy()
    b[:3] = (b[:3] + 1) % 3  # three rows differ
    r = paired_bootstrap(t, a, b, 3, resamples=500, seed=0)
    assert is_tie(r)
    assert r["p_value"] > 0.05


def test_shapes_are_checked() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        paired_bootstrap([0, 1], [0, 1], [0], 2)
