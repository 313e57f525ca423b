from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from bedside.data.split import holdout_targets, split_by_group
from bedside.errors import ConfigError


def _labels_groups(counts: dict[str, int]) -> tuple[list[str], list[str]]:
    labels = [c for c, n in counts.items() for _ in range(n)]
    return labels, [f"g{i}" for i in range(len(labels))]


def test_targets_known_answer() -> None:
    assert holdout_targets({"a": 37, "b": 23, "c": 11, "d": 2}, 0.2) == {
        "a": 7,
        "b": 5,
        "c": 2,
        "d": 1,
    }
    assert holdout_targets({"a": 5}, 0.9) == {"a": 4}  # one row stays for training


def test_class_counts_exact_without_duplicates() -> None:
    labels, groups = _labels_groups({"a": 37, "b": 23, "c": 11})
    mask = split_by_group(labels, groups, 0.2, seed=3)
    got = Counter(lab for lab, m in zip(labels, mask, strict=True) if m)
    assert got == {"a": 7, "b": 5, "c": 2}


def test_no_group_crosses_and_shares_close() -> None:
    rng = np.random.default_rng(1)
    labels = [str(x) for x in rng.choice(["a", "b", "c"], size=300, p=[0.5, 0.3, 0.2])]
    groups = [f"g{i}" for i in range(300)]
    for i in range(0, 60, 3):  # groups of 3 identical texts, some with conflicting labels
        groups[i + 1] = groups[i + 2] = groups[i]
    mask = split_by_group(labels, groups, 0.25, seed=0)
    sides: dict[str, set[bool]] = {}
    for g, m in zip(groups, mask, strict=True):
        sides.setdefault(g, set()).add(bool(m))
    assert all(len(s) == 1 for s in sides.values())
    targets = holdout_targets(dict(Counter(labels)), 0.25)
    got = Counter(lab for lab, m in zip(labels, mask, strict=True) if m)
    assert all(abs(got[c] - targets[c]) <= 1 for c in targets)


def test_same_seed_same_split_other_seed_differs() -> None:
    labels, groups = _labels_groups({"a": 50, "b": 30})
    a = split_by_group(labels, groups, 0.2, seed=7)
    b = split_by_group(labels, groups, 0.2, seed=7)
    c = split_by_group(labels, groups, 0.2, seed=8)
    assert (a == b).all()
    assert not (a == c).all()


def test_row_order_does_not_matter() -> None:
    labels, groups = _labels_groups({"a": 20, "b": 10})
    mask = split_by_group(labels, groups, 0.3, seed=0)
    held = {g for g, m in zip(groups, mask, strict=True) if m}
    rev = split_by_group(labels[::-1], groups[::-1], 0.3, seed=0)
    assert held == {g for g, m in zip(groups[::-1], rev, strict=True) if m}


def test_big_groups_still_leave_a_class_on_both_sides() -> None:
    labels = ["a"] * 6 + ["b"] * 10
    groups = ["x"] * 3 + ["y"] * 3 + [f"b{i}" for i in range(10)]
    mask = split_by_group(labels, groups, 0.2, seed=0)
    held_a = {g for g, lab, m in zip(groups, labels, mask, strict=True) if m and lab == "a"}
    assert len(held_a) == 1  # one of the two groups went to the holdout


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_bad_fraction(fraction: float) -> None:
    with pytest.raises(ConfigError, match="between 0 and 1"):
        split_by_group(["a", "a"], ["1", "2"], fraction)
