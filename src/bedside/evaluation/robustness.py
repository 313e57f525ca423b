"""Robustness to text length: macro-F1 per word-count tercile bin, and the worst gap.

Bins come from two word-count edges ``[e1, e2]`` (the EDA's ``length_terciles``):

* ``short``: ``words <= e1``
* ``medium``: ``e1 < words <= e2``
* ``long``: ``words > e2``

``worst_gap`` is the largest macro-F1 of a non-empty bin minus the smallest one: how much the model's
quality moves with text length (0 = no sensitivity). It is ``None`` when fewer than two bins have
rows. Words are whitespace-separated tokens (``len(text.split())``), the same count the EDA uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from bedside.evaluation.metrics import IntArray, check_labels, macro_f1

BIN_NAMES = ("short", "medium", "long")


def word_count(text: str) -> int:
    """Whitespace-separated words in ``text``.

    >>> word_count("Acute  myocardial infarction.")
    3
    """
    return len(str(text).split())


def word_counts(texts: Iterable[str]) -> IntArray:
    """``word_count`` of each text, as an array."""
    return np.fromiter((word_count(t) for t in texts), dtype=np.int64)


def tercile_edges(lengths_words: ArrayLike) -> list[float]:
    """The 1/3 and 2/3 quantiles of the word counts (fallback when the EDA has no edges).

    >>> tercile_edges([10, 20, 30, 40, 50, 60])
    [26.666666666666664, 43.33333333333333]
    """
    a = np.asarray(lengths_words, dtype=np.float64)
    if a.size == 0:
        raise ValueError("cannot compute length terciles of no texts.")
    lo, hi = np.quantile(a, [1 / 3, 2 / 3])
    return [float(lo), float(hi)]


def check_edges(edges: Sequence[float]) -> list[float]:
    """Two finite, non-decreasing word-count edges."""
    e = [float(x) for x in edges]
    if len(e) != 2 or not all(np.isfinite(e)) or e[0] > e[1]:
        raise ValueError(
            f"length edges must be two non-decreasing numbers [e1, e2], got {list(edges)!r}."
        )
    return e


def length_bins(lengths_words: ArrayLike, edges: Sequence[float]) -> IntArray:
    """Bin index per row: 0 short, 1 medium, 2 long.

    >>> length_bins([5, 10, 11, 20, 21], [10, 20]).tolist()
    [0, 0, 1, 1, 2]
    """
    e = check_edges(edges)
    return np.digitize(np.asarray(lengths_words, dtype=np.float64), e, right=True).astype(np.int64)


def robustness(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    n_classes: int,
    lengths_words: ArrayLike,
    edges: Sequence[float],
) -> dict[str, Any]:
    """Macro-F1 per length bin and the worst gap between bins.

    >>> r = robustness([0, 1, 0, 1], [0, 1, 1, 1], 2, [5, 5, 50, 50], [10, 20])
    >>> [(b["name"], b["n"]) for b in r["bins"]], round(r["worst_gap"], 4)
    ([('short', 2), ('medium', 0), ('long', 2)], 0.6667)
    """
    t, p = check_labels(y_true, y_pred, n_classes)
    lengths = np.asarray(lengths_words)
    if lengths.shape != t.shape:
        raise ValueError(f"lengths_words has {lengths.size} entries for {t.size} rows.")
    which = length_bins(lengths, edges)
    bins: list[dict[str, Any]] = []
    for i, name in enumerate(BIN_NAMES):
        mask = which == i
        n = int(mask.sum())
        score = macro_f1(t[mask], p[mask], n_classes) if n else None
        bins.append({"name": name, "n": n, "macro_f1": score})
    scores = [b["macro_f1"] for b in bins if b["macro_f1"] is not None]
    gap = float(max(scores) - min(scores)) if len(scores) >= 2 else None
    return {"edges": check_edges(edges), "bins": bins, "worst_gap": gap}
