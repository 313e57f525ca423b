"""Training-split helpers: labels to ids, a duplicate-aware validation slice, class weights,
macro-F1. Pure numpy/pandas, no torch."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bedside.data.corpus import group_key
from bedside.errors import JobError


def label_ids(labels: pd.Series, class_names: list[str]) -> np.ndarray:
    pos = {c: i for i, c in enumerate(class_names)}
    unknown = sorted(set(labels.astype(str)) - set(pos))
    if unknown:
        raise JobError(
            f"training labels {unknown[:5]} are not workspace classes {class_names}.",
            error_class="invalid_input",
        )
    return labels.astype(str).map(pos).to_numpy(dtype=np.int64)


def split_validation(
    texts: list[str], y: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val). Rows sharing a normalised text (``group_key``) stay together; groups
    are drawn per class (by the group's first label) so each class keeps its share."""
    n = len(texts)
    if fraction <= 0 or n < 4:
        return np.arange(n), np.zeros(0, dtype=np.int64)
    keys = [group_key(t) for t in texts]
    first: dict[str, int] = {}
    members: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        first.setdefault(k, int(y[i]))
        members.setdefault(k, []).append(i)
    rng = np.random.default_rng([seed, 7])
    val: list[int] = []
    for c in sorted(set(first.values())):
        groups = sorted(k for k, lab in first.items() if lab == c)
        if len(groups) < 2:
            continue  # a class with one group stays wholly in training
        rng.shuffle(groups)
        take = min(len(groups) - 1, max(1, round(fraction * len(groups))))
        for k in groups[:take]:
            val.extend(members[k])
    val_idx = np.array(sorted(val), dtype=np.int64)
    train_idx = np.setdiff1d(np.arange(n), val_idx)
    return train_idx, val_idx


def class_weights(y: np.ndarray, k: int, how: str) -> np.ndarray | None:
    """``balanced``: n / (k * n_c) (sklearn's rule); ``sqrt``: its square root (a milder push
    towards small classes); classes absent from training weigh 0."""
    if how not in ("balanced", "sqrt"):
        return None
    counts = np.bincount(y, minlength=k).astype(np.float64)
    w = np.where(counts > 0, len(y) / (k * np.maximum(counts, 1)), 0.0)
    return np.sqrt(w) if how == "sqrt" else w


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> float:
    """Macro-F1 over the classes present in ``y_true`` or ``y_pred``."""
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    tp = np.diag(cm).astype(float)
    pred, true = cm.sum(0), cm.sum(1)
    present = (pred + true) > 0
    if not present.any():
        return 0.0
    f1 = np.where(pred + true > 0, 2 * tp / np.maximum(pred + true, 1), 0.0)
    return float(f1[present].mean())
