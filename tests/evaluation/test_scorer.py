"""score(): the exact "Result metrics" shape of docs/architecture.md, and consistent numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bedside.errors import DataError
from bedside.evaluation.metrics import classification_metrics
from bedside.evaluation.scorer import round_floats, score

CLASSES = ["neoplasms", "digestive", "nervous"]
TOP_KEYS = {
    "n",
    "macro_f1",
    "macro_f1_ci",
    "accuracy",
    "per_class",
    "confusion",
    "robustness",
    "ece",
    "resamples",
    "seed",
}
PER_CLASS_KEYS = {"name", "precision", "recall", "f1", "support", "recall_ci", "share"}


def _case(n: int = 300, seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = rng.choice(3, size=n, p=[0.6, 0.1, 0.3])
    logits = rng.normal(size=(n, 3))
    logits[np.arange(n), t] += 1.5
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    lengths = rng.integers(50, 400, n)
    return [CLASSES[i] for i in t], probs, lengths


def test_contract_shape() -> None:
    y, probs, lengths = _case()
    m = score(y, probs, CLASSES, lengths, [150, 250], resamples=200, seed=4)
    assert set(m) == TOP_KEYS
    assert m["n"] == 300 and m["resamples"] == 200 and m["seed"] == 4
    assert [c["name"] for c in m["per_class"]] == CLASSES
    for c in m["per_class"]:
        assert set(c) == PER_CLASS_KEYS
        assert isinstance(c["support"], int)
        lo, hi = c["recall_ci"]
        assert lo <= c["recall"] <= hi
    assert sum(c["support"] for c in m["per_class"]) == 300
    assert sum(c["share"] for c in m["per_class"]) == pytest.approx(1.0)
    assert m["confusion"]["labels"] == CLASSES
    assert np.array(m["confusion"]["matrix"]).shape == (3, 3)
    assert set(m["robustness"]) == {"edges", "bins", "worst_gap"}
    assert [b["name"] for b in m["robustness"]["bins"]] == ["short", "medium", "long"]
    assert sum(b["n"] for b in m["robustness"]["bins"]) == 300
    assert m["macro_f1_ci"][0] <= m["macro_f1"] <= m["macro_f1_ci"][1]
    assert 0 <= m["ece"] <= 1
    json.dumps(m, allow_nan=False)  # stored as JSON: plain types only


def test_numbers_agree_with_metrics() -> None:
    y, probs, lengths = _case(seed=1)
    m = score(y, probs, CLASSES, lengths, [150, 250], resamples=100)
    t = [CLASSES.index(v) for v in y]
    ref = classification_metrics(t, probs.argmax(axis=1), 3)
    assert m["macro_f1"] == ref["macro_f1"]
    assert m["accuracy"] == ref["accuracy"]
    assert m["confusion"]["matrix"] == ref["confusion"]
    assert [c["recall"] for c in m["per_class"]] == ref["recall"]


def test_delta_vs_phase1() -> None:
    y, probs, lengths = _case(seed=2)
    rng = np.random.default_rng(9)
    phase1 = rng.dirichlet([1, 1, 1], size=300)  # a near-random phase-1 model
    m = score(y, probs, CLASSES, lengths, [150, 250], resamples=200, phase1_probs=phase1)
    assert set(m) == TOP_KEYS | {"delta_vs_phase1"}
    d = m["delta_vs_phase1"]
    assert set(d) == {"delta", "ci", "p_value"}
    assert d["delta"] > 0 and d["ci"][0] > 0


def test_decimals_round_floats_only() -> None:
    y, probs, lengths = _case(seed=3)
    m = score(y, probs, CLASSES, lengths, [150, 250], resamples=100, decimals=3, phase1_probs=probs)
    assert m["macro_f1"] == round(m["macro_f1"], 3)
    assert all(v == round(v, 3) for v in m["macro_f1_ci"])
    assert m["per_class"][0]["recall_ci"][0] == round(m["per_class"][0]["recall_ci"][0], 3)
    assert isinstance(m["n"], int) and isinstance(m["per_class"][1]["support"], int)
    assert m["delta_vs_phase1"] == {"delta": 0.0, "ci": [0.0, 0.0], "p_value": 1.0}
    assert round_floats((1.23456, [2.0001]), 2) == [1.23, [2.0]]


def test_ties_go_to_the_first_class() -> None:
    m = score(
        ["nervous", "neoplasms"], [[1 / 3] * 3] * 2, CLASSES, [10, 10], [5, 20], resamples=100
    )
    assert m["confusion"]["matrix"] == [[1, 0, 0], [0, 0, 0], [1, 0, 0]]


def test_bad_input() -> None:
    with pytest.raises(DataError, match="not workspace classes"):
        score(["cardio"], [[1, 0, 0]], CLASSES, [10], [5, 20], resamples=100)
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        score(["nervous", "neoplasms"], [[1, 0, 0]], CLASSES, [10, 10], [5, 20], resamples=100)
    with pytest.raises(DataError, match="empty holdout"):
        score([], np.zeros((0, 3)), CLASSES, [], [5, 20])
