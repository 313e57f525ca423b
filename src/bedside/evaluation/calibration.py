"""Expected calibration error (ECE) of the top-class probability.

Rows are grouped into ``n_bins`` equal-width bins of confidence (the largest probability of the
row; bins are ``(lo, hi]``, with 0 in the first). ECE is the row-weighted mean, over non-empty bins,
of ``|accuracy in the bin - mean confidence in the bin|``: 0 for a perfectly calibrated model.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from bedside.evaluation.metrics import check_labels


def expected_calibration_error(probs: ArrayLike, y_true: ArrayLike, n_bins: int = 15) -> float:
    """ECE with ``n_bins`` equal-width bins on the max probability.

    >>> round(expected_calibration_error([[0.9, 0.1], [0.6, 0.4]], [0, 1]), 6)
    0.35
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(f"probs must be a non-empty (n, K) array, got shape {p.shape}.")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}.")
    pred = p.argmax(axis=1)
    t, _ = check_labels(y_true, pred, p.shape[1])
    conf = p.max(axis=1)
    correct = (pred == t).astype(np.float64)
    # Bin k holds confidences in (k/n_bins, (k+1)/n_bins]; clip so 0 lands in bin 0 and 1 in the last.
    which = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins).astype(np.float64)
    gap = np.abs(
        np.bincount(which, weights=correct, minlength=n_bins)
        - np.bincount(which, weights=conf, minlength=n_bins)
    )
    # sum_k (n_k / n) * |acc_k - conf_k| = sum_k |sum correct - sum conf| / n
    return float(gap.sum() / count.sum())
