"""Bootstrap CIs: determinism, agreement with a slow loop, and coverage on simulated data."""

from __future__ import annotations

import time

import numpy as np
import pytest

from bedside.evaluation.bootstrap import bootstrap_ci, bootstrap_confusions, resample_indices
from bedside.evaluation.metrics import confusion_matrix, macro_f1, macro_f1_from_confusion


def _data(n: int, seed: int, k: int = 5, acc: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = rng.integers(0, k, n)
    p = np.where(rng.random(n) < acc, t, rng.integers(0, k, n))
    return t, p


def test_vectorised_confusions_match_a_plain_loop() -> None:
    t, p = _data(200, 0)
    cms = bootstrap_confusions(t, p, 5, resamples=150, seed=3)
    idx = np.concatenate(list(resample_indices(200, 150, 3)))
    for b in (0, 77, 149):
        assert cms[b].tolist() == confusion_matrix(t[idx[b]], p[idx[b]], 5).tolist()
    assert cms.sum(axis=(1, 2)).tolist() == [200] * 150


def test_chunking_gives_the_same_resamples(monkeypatch: pytest.MonkeyPatch) -> None:
    t, p = _data(300, 1)
    whole = bootstrap_confusions(t, p, 5, resamples=120, seed=9)
    monkeypatch.setattr("bedside.evaluation.bootstrap._CHUNK_ELEMENTS", 300 * 7)
    chunked = bootstrap_confusions(
        t, p, 5, resamples=120, seed=9
    )  # 18 chunks of 7 resamples, then 1 of 6
    # numpy's Generator fills arrays from one stream, so chunking does not change the resamples
    assert np.array_equal(chunked, whole)


def test_seeded_and_shaped() -> None:
    t, p = _data(300, 2)
    a = bootstrap_ci(t, p, 5, resamples=200, seed=1)
    b = bootstrap_ci(t, p, 5, resamples=200, seed=1)
    c = bootstrap_ci(t, p, 5, resamples=200, seed=2)
    assert a == b
    assert a != c
    assert a["resamples"] == 200 and a["seed"] == 1
    assert len(a["recall"]) == 5
    lo, hi = a["macro_f1"]
    assert 0 <= lo <= hi <= 1


def test_class_without_rows_has_no_recall_ci() -> None:
    ci = bootstrap_ci([0, 1] * 50, [0, 1] * 50, 3, resamples=100)
    assert ci["recall"][2] is None
    assert ci["recall"][0] == [1.0, 1.0]


def test_refuses_too_few_resamples_and_empty_input() -> None:
    with pytest.raises(ValueError, match=">= 100"):
        bootstrap_ci([0, 1], [0, 1], 2, resamples=10)
    with pytest.raises(ValueError, match="empty"):
        bootstrap_ci([], [], 2)


def test_ci_contains_the_point_estimate_typically() -> None:
    inside = 0
    for seed in range(40):
        t, p = _data(120, 100 + seed, acc=0.5)
        lo, hi = bootstrap_ci(t, p, 5, resamples=300, seed=seed)["macro_f1"]
        inside += lo <= macro_f1(t, p, 5) <= hi
    assert inside >= 38


def test_coverage_on_simulated_data() -> None:
    """Rows drawn from a known population: the 95 % CIs cover the population values ~95 % of the time."""
    rng = np.random.default_rng(2024)
    prior = np.array([0.5, 0.3, 0.2])
    # P(predicted = j | true = i)
    confusion_probs = np.array([[0.8, 0.15, 0.05], [0.2, 0.7, 0.1], [0.1, 0.3, 0.6]])
    joint = prior[:, None] * confusion_probs  # expected confusion matrix (as shares)
    true_macro_f1 = float(macro_f1_from_confusion(joint))
    true_recall_2 = confusion_probs[2, 2]
    sims, n = 300, 400
    covered_f1 = covered_recall = 0
    for s in range(sims):
        t = rng.choice(3, size=n, p=prior)
        p = _draw(rng, t, confusion_probs)
        ci = bootstrap_ci(t, p, 3, resamples=400, seed=s)
        covered_f1 += ci["macro_f1"][0] <= true_macro_f1 <= ci["macro_f1"][1]
        covered_recall += ci["recall"][2][0] <= true_recall_2 <= ci["recall"][2][1]
    print(f"coverage: macro-F1 {covered_f1 / sims:.3f}, recall {covered_recall / sims:.3f}")
    assert 0.89 <= covered_f1 / sims <= 0.99
    assert 0.89 <= covered_recall / sims <= 0.99


def _draw(rng: np.random.Generator, t: np.ndarray, probs: np.ndarray) -> np.ndarray:
    cum = probs.cumsum(axis=1)[t]
    return (rng.random((t.size, 1)) > cum).sum(axis=1)


def test_speed_n3000_1000_resamples() -> None:
    t, p = _data(3000, 5)
    bootstrap_ci(t, p, 5)  # warm up
    start = time.perf_counter()
    bootstrap_ci(t, p, 5, resamples=1000)
    elapsed = time.perf_counter() - start
    print(f"bootstrap n=3000 x 1000 resamples: {elapsed * 1000:.1f} ms")
    assert elapsed < 2.0
