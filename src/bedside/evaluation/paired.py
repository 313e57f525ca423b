"""Paired bootstrap for the difference in macro-F1 between two models on the same rows.

Both models are scored on the *same* resampled rows in each resample, so the row-to-row
difficulty they share cancels out and the interval of the difference is much narrower than
two independent intervals would suggest. Used for the phase-2 minus phase-1 delta and for
comparing two submissions on one holdout: when the interval includes 0 the leaderboard shows a tie.

``p_value`` is the two-sided bootstrap p-value ``2 * min(P*(d <= 0), P*(d >= 0))`` with the usual
``+1`` correction (``(count + 1) / (resamples + 1)``), capped at 1; identical predictions give 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from bedside.evaluation.bootstrap import (
    MIN_RESAMPLES,
    confusions_for,
    percentile_ci,
    resample_indices,
)
from bedside.evaluation.metrics import check_labels, macro_f1, macro_f1_from_confusion


def paired_bootstrap(
    y_true: ArrayLike,
    pred_a: ArrayLike,
    pred_b: ArrayLike,
    n_classes: int,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """``macro_f1(b) - macro_f1(a)`` with a paired percentile CI and a two-sided p-value.

    >>> r = paired_bootstrap([0, 1] * 50, [0, 1] * 50, [0, 1] * 50, 2)
    >>> r["delta"], r["ci"], r["p_value"]
    (0.0, [0.0, 0.0], 1.0)
    """
    t, a = check_labels(y_true, pred_a, n_classes)
    _, b = check_labels(y_true, pred_b, n_classes)
    if t.size == 0:
        raise ValueError("cannot compare two models on an empty set of rows.")
    if resamples < MIN_RESAMPLES:
        raise ValueError(f"resamples must be >= {MIN_RESAMPLES}, got {resamples}.")
    codes_a = t * n_classes + a
    codes_b = t * n_classes + b
    deltas = []
    for idx in resample_indices(t.size, resamples, seed):
        fa = macro_f1_from_confusion(confusions_for(codes_a, idx, n_classes))
        fb = macro_f1_from_confusion(confusions_for(codes_b, idx, n_classes))
        deltas.append(fb - fa)
    d = np.concatenate(deltas)
    ci = percentile_ci(d, level)
    assert ci is not None
    below = int((d <= 0).sum())
    above = int((d >= 0).sum())
    p = min(1.0, 2.0 * (min(below, above) + 1) / (resamples + 1))
    delta = macro_f1(t, b, n_classes) - macro_f1(t, a, n_classes)
    return {"delta": float(delta), "ci": ci, "p_value": float(p)}


def is_tie(comparison: dict[str, Any]) -> bool:
    """True when the CI of the difference includes 0 (the leaderboard shows the two as tied).

    >>> is_tie({"delta": 0.01, "ci": [-0.02, 0.04], "p_value": 0.5})
    True
    """
    lo, hi = comparison["ci"]
    return bool(lo <= 0.0 <= hi)
