"""Train / holdout splits by duplicate group, stratified by class, reproducible from a seed.

Rows with the same normalised text (``corpus.group_key``) form a group; a group sits wholly on one
side. Per class the holdout gets ``round(n_class * fraction)`` rows (at least one, and at least
one row left for training). Multi-row groups are placed first, largest first, each where it
brings the per-class holdout counts closer to their targets; single rows then fill the remaining
gaps exactly. Without duplicates every class therefore hits its target exactly; duplicates can
move a class by at most the size of one group.

Groups whose rows carry different labels (the real corpus flattens multi-label abstracts) are
kept, as rows, and placed as one unit like any other group.

The order of rows does not matter: groups are shuffled from their sorted keys with the seed.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np
import pandas as pd

from bedside.data.corpus import ClassInfo
from bedside.errors import ConfigError


def holdout_targets(class_counts: dict[str, int], fraction: float) -> dict[str, int]:
    """Holdout rows wanted per class, e.g. ``holdout_targets({"a": 10}, 0.2) == {"a": 2}``."""
    out = {}
    for c, n in class_counts.items():
        t = int(np.floor(n * fraction + 0.5))  # round half up, the same on every platform
        out[c] = min(max(t, 1), n - 1) if n >= 2 else t
    return out


def split_by_group(
    labels: Sequence[str], groups: Sequence[str], fraction: float = 0.2, seed: int = 0
) -> np.ndarray:
    """Boolean mask: True where a row goes to the holdout.

    >>> split_by_group(["a", "a", "b", "b", "b"], ["1", "2", "3", "4", "5"], 0.4, seed=0).sum()
    np.int64(2)
    """
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"holdout fraction must be between 0 and 1 (exclusive), got {fraction}.")
    if len(labels) != len(groups):
        raise ValueError("labels and groups differ in length")
    members: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    targets = holdout_targets(dict(Counter(labels)), fraction)
    have: Counter[str] = Counter()
    rng = np.random.default_rng(seed)
    keys = sorted(members)
    order = [keys[i] for i in rng.permutation(len(keys))]
    # Big groups first (stable, so the shuffle decides among equal sizes), then singles.
    order.sort(key=lambda g: -len(members[g]))
    mask = np.zeros(len(labels), dtype=bool)
    for g in order:
        rows = members[g]
        need = Counter(labels[i] for i in rows)
        if len(rows) == 1:
            (c,) = need
            take = have[c] < targets[c]
        else:
            # Does moving the group to the holdout reduce the total distance to the targets?
            gain = sum(
                abs(have[c] + k - targets[c]) - abs(have[c] - targets[c]) for c, k in need.items()
            )
            take = gain < 0
        if take:
            mask[rows] = True
            have.update(need)
    _ensure_both_sides(mask, labels, members, order)
    return mask


def _ensure_both_sides(
    mask: np.ndarray, labels: Sequence[str], members: dict[str, list[int]], order: list[str]
) -> None:
    """Where big groups left a class on one side only, move its smallest group across."""
    total = Counter(labels)
    for c in sorted(total):
        for to_holdout in (True, False):
            side = Counter(labels[i] for i in range(len(labels)) if bool(mask[i]) == to_holdout)
            if side[c] > 0:
                continue
            cands = [g for g in order if bool(mask[members[g][0]]) != to_holdout]
            cands = [g for g in cands if c in {labels[i] for i in members[g]}]
            cands = [g for g in cands if sum(labels[i] == c for i in members[g]) < total[c]]
            if cands:
                g = min(cands, key=lambda g: len(members[g]))
                mask[members[g]] = to_holdout


def place_by_group(
    groups: Sequence[str], labels: Sequence[str], known: dict[str, bool], fraction: float, seed: int
) -> np.ndarray:
    """Holdout mask for new rows: a group already placed (``known[group]``) keeps its side,
    the other rows are split with ``split_by_group``."""
    mask = np.zeros(len(groups), dtype=bool)
    new = [i for i, g in enumerate(groups) if g not in known]
    for i, g in enumerate(groups):
        if g in known:
            mask[i] = known[g]
    if len(new) >= 2:
        sub = split_by_group([labels[i] for i in new], [groups[i] for i in new], fraction, seed)
        mask[new] = sub
    return mask


def content_hash(train: pd.DataFrame, holdout: pd.DataFrame, classes: list[ClassInfo]) -> str:
    """SHA-256 over the classes and the (side, label, text) of every row, in a canonical order.

    Row order and row ids do not change the hash; moving a row to the other side does.
    """
    h = hashlib.sha256()
    h.update(json.dumps([c.to_dict() for c in classes], sort_keys=True).encode())
    for side, df in (("train", train), ("holdout", holdout)):
        for label, text in sorted(zip(df["label"], df["text"], strict=True)):
            h.update(json.dumps([side, label, text]).encode())
            h.update(b"\n")
    return h.hexdigest()


def crossing_groups(train: pd.DataFrame, holdout: pd.DataFrame) -> int:
    """How many duplicate groups have rows on both sides (0 for every split made here)."""
    return len(set(train["group"]) & set(holdout["group"]))
