"""Seeded percentile bootstrap for macro-F1 and per-class recall.

Rows are resampled with replacement ``resamples`` times. Rather than looping over resamples, we
draw the whole index matrix at once and build every resample's confusion matrix with a single
``np.bincount``: each row contributes the code ``y_true * K + y_pred``, offset by ``b * K * K`` for
resample ``b``. For n = 3,000 rows and 1,000 resamples that is one 3-million-element bincount
(a few tens of milliseconds) instead of 1,000 Python-level metric calls. Large inputs are
processed in chunks of resamples so memory stays bounded (~32 MB of indices per chunk).

The interval is the percentile interval (2.5th and 97.5th percentile for 95 %). A class missing
from a resample has no recall there; its recall interval is taken over the resamples where it is
present (and is ``None`` if it never is).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from bedside.evaluation.metrics import (
    FloatArray,
    IntArray,
    check_labels,
    macro_f1_from_confusion,
    per_class_from_confusion,
)

MIN_RESAMPLES = 100
_CHUNK_ELEMENTS = 4_000_000  # resample indices held at once (int64: 32 MB)


def resample_indices(n: int, resamples: int, seed: int) -> Iterator[IntArray]:
    """Yield ``(b, n)`` blocks of row indices, ``resamples`` rows in all, from one seeded generator."""
    rng = np.random.default_rng(seed)
    per_chunk = max(1, _CHUNK_ELEMENTS // max(n, 1))
    done = 0
    while done < resamples:
        b = min(per_chunk, resamples - done)
        yield rng.integers(0, n, size=(b, n), dtype=np.int64)
        done += b


def confusions_for(codes: IntArray, idx: IntArray, n_classes: int) -> IntArray:
    """Confusion matrices ``(b, K, K)`` of the resamples ``idx`` (``(b, n)``) over ``codes``
    (``y_true * K + y_pred`` per row)."""
    kk = n_classes * n_classes
    b = idx.shape[0]
    flat = codes[idx] + (np.arange(b, dtype=np.int64) * kk)[:, None]
    return np.bincount(flat.ravel(), minlength=b * kk).reshape(b, n_classes, n_classes)


def bootstrap_confusions(
    y_true: ArrayLike, y_pred: ArrayLike, n_classes: int, resamples: int = 1000, seed: int = 0
) -> IntArray:
    """Confusion matrices of ``resamples`` bootstrap resamples, shape ``(resamples, K, K)``.

    >>> bootstrap_confusions([0, 1, 1], [0, 1, 0], 2, resamples=100).shape
    (100, 2, 2)
    """
    t, p = check_labels(y_true, y_pred, n_classes)
    if t.size == 0:
        raise ValueError("cannot bootstrap an empty set of rows.")
    if resamples < MIN_RESAMPLES:
        raise ValueError(f"resamples must be >= {MIN_RESAMPLES}, got {resamples}.")
    codes = t * n_classes + p
    blocks = [
        confusions_for(codes, idx, n_classes) for idx in resample_indices(t.size, resamples, seed)
    ]
    return np.concatenate(blocks, axis=0)


def percentile_ci(values: FloatArray, level: float = 0.95) -> list[float] | None:
    """Percentile interval of the finite ``values`` (``None`` if there are none)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return None
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(v, [tail, 100.0 - tail])
    return [float(lo), float(hi)]


def bootstrap_ci(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    n_classes: int,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """Percentile CIs for macro-F1 and each class's recall.

    Returns ``{"macro_f1": [lo, hi], "recall": [[lo, hi] | None per class], "resamples", "seed"}``.

    >>> ci = bootstrap_ci([0, 0, 1, 1] * 25, [0, 1, 1, 1] * 25, 2)
    >>> ci["macro_f1"][0] <= 0.7333 <= ci["macro_f1"][1]
    True
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}.")
    cms = bootstrap_confusions(y_true, y_pred, n_classes, resamples, seed)
    pc = per_class_from_confusion(cms)
    # Recall is undefined where a resample has no row of that class: mask it out.
    recall = np.where(pc["support"] > 0, pc["recall"], np.nan)
    macro_ci = percentile_ci(macro_f1_from_confusion(cms), level)
    assert macro_ci is not None  # every resample has rows, so macro-F1 is always finite
    return {
        "macro_f1": macro_ci,
        "recall": [percentile_ci(recall[:, k], level) for k in range(n_classes)],
        "resamples": resamples,
        "seed": seed,
    }
