"""Operating points on constructed scores with known answers, and the slice rule."""

from __future__ import annotations

import numpy as np
import pytest

from bedside.errors import ConfigError
from bedside.screening.operating import (
    flag_matrix,
    operating_points,
    pick_threshold,
    split_slices,
)

SCORES = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]
POS = [1, 0, 1, 0, 1, 0, 1, 0, 0, 0]


@pytest.mark.parametrize(
    ("target", "threshold", "recall"),
    [(0.25, 0.9, 0.25), (0.5, 0.7, 0.5), (0.75, 0.5, 0.75), (0.76, 0.3, 1.0), (1.0, 0.3, 1.0)],
)
def test_the_highest_threshold_that_reaches_the_target(
    target: float, threshold: float, recall: float
) -> None:
    p = pick_threshold(SCORES, POS, target)
    assert p.reached and p.threshold == threshold and p.tuning_recall == recall


def test_a_target_only_reached_by_flagging_everything_is_not_reachable() -> None:
    pos = [1, 0, 1, 0, 1, 0, 1, 0, 0, 1]  # the lowest-scored abstract is a positive
    p = pick_threshold(SCORES, pos, 1.0)
    assert not p.reached
    assert p.threshold == 0.3 and p.tuning_recall == 0.8  # the best reachable


def test_a_workload_cap_limits_the_threshold() -> None:
    p = pick_threshold(SCORES, POS, 1.0, max_workload=500)  # at most 5 of 10 flagged
    assert not p.reached and p.threshold == 0.5 and p.tuning_recall == 0.75


def test_no_positive_in_the_tuning_half() -> None:
    p = pick_threshold(SCORES, [0] * 10, 0.9)
    assert p.threshold is None and not p.reached


def test_slices_are_stratified_disjoint_and_order_free() -> None:
    ids = [f"r{i}" for i in range(40)]
    y = [i % 4 for i in range(40)]
    t, r = split_slices(ids, y)
    assert set(t) | set(r) == set(range(40)) and not set(t) & set(r)
    for k in range(4):
        assert sum(y[i] == k for i in t) == 5 and sum(y[i] == k for i in r) == 5
    perm = np.random.default_rng(1).permutation(40)
    t2, _ = split_slices([ids[i] for i in perm], [y[i] for i in perm])
    assert {ids[perm[i]] for i in t2} == {ids[i] for i in t}


def test_reported_numbers_come_from_the_reporting_half_only() -> None:
    # class 1 is perfectly separable on every row: any threshold between its scores and the rest
    # gives recall 1 and precision 1 on both halves; workload = its share (1/4) per 1,000
    n = 200
    ids = [f"r{i}" for i in range(n)]
    y = np.array([i % 4 for i in range(n)])
    probs = np.full((n, 4), 0.1)
    probs[y == 1, 1] = 0.7
    probs /= probs.sum(axis=1, keepdims=True)
    ops = operating_points(y, probs, ["a", "b", "c", "d"], ids, {"b": 0.9}, resamples=200)
    (p,) = ops.points
    assert p.reached and p.expected_recall == 1.0 and p.precision == 1.0
    assert p.workload_per_1000 == 250.0
    assert ops.n_tuning + ops.n_reporting == n and p.n_report == ops.n_reporting
    assert p.recall_ci == [1.0, 1.0]
    assert ops.curves["b"]["recall"][-1] == 1.0


def test_the_reporting_half_can_disagree_and_says_so() -> None:
    # threshold tuned where positives score high; on the reporting half they score low
    ids = [f"r{i}" for i in range(40)]
    y = np.array([i % 2 for i in range(40)])
    tune, report = split_slices(ids, y.tolist())
    probs = np.full((40, 2), 0.5)
    probs[tune[y[tune] == 1], 1] = 0.9
    probs[report[y[report] == 1], 1] = 0.2
    probs[:, 0] = 1 - probs[:, 1]
    (p,) = operating_points(y, probs, ["x", "y"], ids, {"y": 0.9}, resamples=200).points
    assert p.reached and p.threshold == 0.9 and p.expected_recall == 0.0
    assert "only 0.000 on the reporting half" in p.message


@pytest.mark.parametrize(
    ("targets", "fragment"),
    [
        ({"zzz": 0.9}, "not a workspace class"),
        ({"b": 1.5}, "(0, 1]"),
        ({"b": 0}, "(0, 1]"),
        ({}, "no target"),
    ],
)
def test_bad_targets(targets: dict[str, float], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace("]", r"\]")):
        operating_points([0, 1], np.eye(2), ["a", "b"], ["1", "2"], targets)


def test_flags_follow_the_thresholds() -> None:
    probs = np.array([[0.2, 0.8], [0.6, 0.4]])
    f = flag_matrix(probs, ["a", "b"], {"b": 0.5})
    assert f.tolist() == [[False, True], [False, False]]


def test_an_unreachable_recall_of_one_says_so_with_the_best_reachable() -> None:
    # a quarter of class b scores below every other abstract: recall 1.0 needs flagging all
    n = 200
    ids = [f"r{i}" for i in range(n)]
    y = np.array([1 if i % 4 == 1 else 0 for i in range(n)])
    b = np.where(y == 1, np.where(np.arange(n) % 8 == 1, 0.1, 0.9), 0.5)
    probs = np.column_stack([1 - b, b])
    ops = operating_points(y, probs, ["a", "b"], ids, {"b": 1.0}, resamples=100)
    (p,) = ops.points
    assert not p.reached and p.threshold == 0.9
    assert p.tuning_recall is not None and 0 < p.tuning_recall < 1
    assert "no threshold reaches recall 1.00 without flagging every abstract" in p.message
    assert f"the best reachable is {p.tuning_recall:.3f}" in p.message
