"""Exploratory data analysis that contributors may see: aggregate numbers only, k-suppressed.

Disclosure rules (``k`` is the policy's ``k_anonymity``, default 10):

* No text, no row ids, nothing per record.
* A count from 1 to k-1 is shown as the string ``"<k"`` (e.g. ``"<10"``); zero is shown as 0
  (it describes nobody). Where a hidden count could be recovered by subtraction from a shown
  total, one more cell of the same row or column is hidden too (``"<k"`` or ``">=k"``).
* A class with fewer than k rows gets no length statistics and no share.
* min and max are single records, so they are never exact: min is rounded *down* and max *up*
  to a multiple of 10 words (100 characters); they still bound every length. Means, standard
  deviations and percentiles are rounded to one decimal.
* Length histograms share bin edges (multiples of a round width) and their counts follow the
  same ``"<k"`` rule.

``length_terciles`` holds the two word-count edges of the holdout's terciles; evaluation bins
holdout rows as short (words <= e1), medium (<= e2) and long.

Shares are percentages of all rows; ``share_sd_pp`` is their population standard deviation in
percentage points (a measure of imbalance: 0 for balanced classes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from bedside.data.corpus import Corpus

PERCENTILES = (10, 25, 50, 75, 90)
HIST_BINS = 20
Cell = int | str


def _mask(n: int, k: int) -> Cell:
    return f"<{k}" if 0 < n < k else int(n)


def _nice_width(span: float, bins: int) -> int:
    """The smallest 1-2-5 x 10^j width that covers ``span`` in at most ``bins`` bins."""
    raw = max(span / bins, 1.0)
    base = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * base >= raw:
            return int(m * base)
    return int(10 * base)  # pragma: no cover


def hist_edges(values: Sequence[int], bins: int = HIST_BINS) -> list[int]:
    """Round bin edges from 0 past the largest value, e.g. ``hist_edges([3, 95]) == [0, 5, ..., 95, 100]``."""
    top = max(values) if len(values) else 1
    w = _nice_width(top, bins)
    return list(range(0, (top // w + 1) * w + 1, w))


def length_stats(values: Sequence[int], edges: list[int], k: int, unit: int) -> dict[str, Any]:
    """Summary of lengths; min/max rounded outwards to ``unit``; None when fewer than k values."""
    n = len(values)
    if n < k:
        return {"n": _mask(n, k), "suppressed": True}
    a = np.asarray(values, dtype=float)
    q = np.percentile(a, PERCENTILES)
    counts, _ = np.histogram(a, bins=edges)
    out: dict[str, Any] = {
        "n": n,
        "mean": round(float(a.mean()), 1),
        "sd": round(float(a.std(ddof=1)) if n > 1 else 0.0, 1),
        "min": int(math.floor(a.min() / unit) * unit),
        "max": int(math.ceil(a.max() / unit) * unit),
    }
    out |= {f"p{p}": round(float(v), 1) for p, v in zip(PERCENTILES, q, strict=True)}
    out["hist"] = {"edges": edges, "counts": [_mask(int(c), k) for c in counts]}
    return out


def _suppress_classes(train: list[int], holdout: list[int], k: int) -> list[list[Cell]]:
    """Rows of [train, holdout, total] per class with primary and complementary suppression."""
    cells = [[t, h, t + h] for t, h in zip(train, holdout, strict=True)]
    hidden = [[0 < v < k for v in row] for row in cells]
    for i, row in enumerate(cells):  # a small class hides all of its cells
        if 0 < row[2] < k:
            hidden[i] = [True, True, True]
    changed = True
    while changed:
        changed = False
        for i in range(
            len(cells)
        ):  # train + holdout = total: one hidden cell of three is derivable
            if sum(hidden[i]) == 1:
                j = min((j for j in range(3) if not hidden[i][j]), key=lambda j: cells[i][j])
                hidden[i][j] = True
                changed = True
        for j in range(3):  # a column adds up to its shown margin
            col_hidden = [i for i in range(len(cells)) if hidden[i][j]]
            visible = [i for i in range(len(cells)) if not hidden[i][j]]
            if len(col_hidden) == 1 and visible:
                i = min(visible, key=lambda r: cells[r][j])
                hidden[i][j] = True
                changed = True
    out: list[list[Cell]] = []
    for row, hid in zip(cells, hidden, strict=True):
        out.append(
            [(f"<{k}" if v < k else f">={k}") if h else v for v, h in zip(row, hid, strict=True)]
        )
    return out


def _duplicates(df: pd.DataFrame) -> dict[str, int]:
    sizes = df.groupby("group").size()
    n_labels = df.groupby("group")["label"].nunique()
    dup = sizes[sizes > 1]
    conflict = n_labels[n_labels > 1]
    return {
        "duplicate_rows": int((dup - 1).sum()),  # rows beyond the first of each group
        "duplicate_groups": int(len(dup)),
        "conflicting_rows": int(sizes[conflict.index].sum()),
        "conflicting_groups": int(len(conflict)),
    }


def duplicate_counts(train: pd.DataFrame, holdout: pd.DataFrame) -> dict[str, int]:
    """Exact duplicate and conflicting-label counts over both sides (owner-only intake report)."""
    both = pd.concat([train[["group", "label"]], holdout[["group", "label"]]], ignore_index=True)
    out = _duplicates(both)
    out["crossing_groups"] = len(set(train["group"]) & set(holdout["group"]))
    return out


def eda_from_frames(
    train: pd.DataFrame, holdout: pd.DataFrame, class_names: list[str], k: int = 10
) -> dict[str, Any]:
    """``compute_eda`` on two frames with ``text, label, group`` columns."""
    both = pd.concat([train, holdout], ignore_index=True)
    words = both["text"].map(lambda t: len(t.split())).to_numpy()
    chars = both["text"].str.len().to_numpy()
    n_tr = [int((train["label"] == c).sum()) for c in class_names]
    n_ho = [int((holdout["label"] == c).sum()) for c in class_names]
    table = _suppress_classes(n_tr, n_ho, k)
    total = len(both)
    classes, shares = [], []
    for name, (tr, ho, tot) in zip(class_names, table, strict=True):
        share = None
        if isinstance(tot, int):
            share = round(100.0 * tot / total, 1)
            shares.append(100.0 * tot / total)
        classes.append({"name": name, "train": tr, "holdout": ho, "total": tot, "share_pct": share})
    lengths: dict[str, Any] = {}
    for key, vals, unit in (("words", words, 10), ("chars", chars, 100)):
        edges = hist_edges(vals.tolist())
        per = {}
        for c, cell in zip(class_names, table, strict=True):
            sel = vals[(both["label"] == c).to_numpy()]
            stats = length_stats(sel.tolist(), edges, k, unit)
            if not isinstance(cell[2], int):  # the class count is hidden: so is its n
                stats = {"n": cell[2], "suppressed": True}
            per[c] = stats
        lengths[key] = {"overall": length_stats(vals.tolist(), edges, k, unit), "per_class": per}
    dup = duplicate_counts(train, holdout)
    hwords = holdout["text"].map(lambda t: len(t.split())).to_numpy()
    terciles = (
        [int(round(float(v))) for v in np.percentile(hwords, [100 / 3, 200 / 3])]
        if len(hwords)
        else None
    )
    return {
        "k": k,
        "rows": {
            key: _mask(v, k)
            for key, v in (("train", len(train)), ("holdout", len(holdout)), ("total", total))
        },
        "classes": classes,
        "share_sd_pp": round(float(np.std(shares)), 2) if len(shares) == len(class_names) else None,
        "lengths": lengths,
        "duplicates": {key: _mask(v, k) for key, v in dup.items()},
        "length_terciles": terciles,
    }


def compute_eda(corpus: Corpus, k: int = 10) -> dict[str, Any]:
    """Aggregate, k-suppressed statistics of a stored corpus (see the module docstring).

    >>> eda = compute_eda(load_corpus(ws), k=10)  # doctest: +SKIP
    >>> eda["classes"][0]["name"], eda["length_terciles"]  # doctest: +SKIP
    ('neoplasms', [139, 206])
    """
    return eda_from_frames(corpus.train, corpus.holdout, corpus.class_names, k)
