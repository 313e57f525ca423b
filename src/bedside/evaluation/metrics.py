"""Classification metrics from integer class indices: confusion matrix, per-class scores, macro-F1.

Conventions (the same as scikit-learn's ``f1_score(average="macro", zero_division=0)`` without
``labels``):

* the confusion matrix has true classes in rows and predicted classes in columns;
* precision, recall or F1 whose denominator is 0 is reported as 0;
* macro-F1 averages F1 over the *present* classes: those with support > 0 or at least one
  prediction. A class absent from both the labels and the predictions carries no evidence either
  way, so it neither rewards nor penalises a model (perfect predictions always score 1.0, and a
  bootstrap resample or a length bin that happens to miss a small class is not biased downwards).
  On a real holdout every class has support, so this equals the mean over all workspace classes.

All functions on confusion matrices accept a leading batch axis (``(..., K, K)``), which is what
makes the bootstrap a handful of array operations.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def _as_indices(y: ArrayLike, n_classes: int, name: str) -> IntArray:
    a = np.asarray(y)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D class indices, got shape {a.shape}.")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class indices, got dtype {a.dtype}.")
    a = a.astype(np.int64, copy=False)
    if a.size and (a.min() < 0 or a.max() >= n_classes):
        raise ValueError(f"{name} must lie in 0..{n_classes - 1}, found {a.min()}..{a.max()}.")
    return a


def check_labels(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> tuple[IntArray, IntArray]:
    """Validate a pair of index arrays (same length, in range) and return them as int64."""
    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}.")
    t = _as_indices(y_true, n_classes, "y_true")
    p = _as_indices(y_pred, n_classes, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.size} vs {p.size}.")
    return t, p


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> IntArray:
    """Counts ``cm[i, j]`` of rows with true class ``i`` predicted as ``j``.

    >>> confusion_matrix([0, 0, 1], [0, 1, 1], 2).tolist()
    [[1, 1], [0, 1]]
    """
    t, p = check_labels(y_true, y_pred, n_classes)
    counts = np.bincount(t * n_classes + p, minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes).astype(np.int64)


def _safe_div(num: FloatArray, den: FloatArray) -> FloatArray:
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def per_class_from_confusion(cm: ArrayLike) -> dict[str, FloatArray]:
    """Precision, recall, F1 and support per class (0 where undefined); works on ``(..., K, K)``.

    >>> per_class_from_confusion([[1, 1], [0, 1]])["recall"].tolist()
    [0.5, 1.0]
    """
    c = np.asarray(cm, dtype=np.float64)
    tp = np.diagonal(c, axis1=-2, axis2=-1)
    support = c.sum(axis=-1)  # row sums: true counts
    predicted = c.sum(axis=-2)  # column sums: predicted counts
    precision = _safe_div(tp, predicted)
    recall = _safe_div(tp, support)
    # F1 = 2TP / (2TP + FP + FN) = 2TP / (support + predicted); equal to the harmonic mean.
    f1 = _safe_div(2.0 * tp, support + predicted)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": support,
        "predicted": predicted,
    }


def macro_f1_from_confusion(cm: ArrayLike) -> FloatArray:
    """Mean F1 over present classes (support or predictions > 0); works on ``(..., K, K)``.

    >>> float(macro_f1_from_confusion([[2, 0, 0], [0, 1, 0], [0, 0, 0]]))
    1.0
    """
    pc = per_class_from_confusion(cm)
    present = (pc["support"] + pc["predicted"]) > 0
    n_present = present.sum(axis=-1)
    total = np.where(present, pc["f1"], 0.0).sum(axis=-1)
    return _safe_div(total, n_present.astype(np.float64))


def accuracy_from_confusion(cm: ArrayLike) -> FloatArray:
    """Share of rows on the diagonal; works on ``(..., K, K)``."""
    c = np.asarray(cm, dtype=np.float64)
    return _safe_div(np.trace(c, axis1=-2, axis2=-1), c.sum(axis=(-2, -1)))


def macro_f1(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> float:
    """Macro-F1 of two index arrays (the ranking metric).

    >>> round(macro_f1([0, 0, 1, 1], [0, 1, 1, 1], 2), 4)
    0.7333
    """
    return float(macro_f1_from_confusion(confusion_matrix(y_true, y_pred, n_classes)))


def accuracy(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> float:
    """Share of correct predictions.

    >>> accuracy([0, 1, 1], [0, 1, 0], 2)
    0.6666666666666666
    """
    return float(accuracy_from_confusion(confusion_matrix(y_true, y_pred, n_classes)))


def classification_metrics(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> dict[str, Any]:
    """Everything at once: ``confusion``, ``precision``/``recall``/``f1``/``support`` lists,
    ``macro_f1`` and ``accuracy``.

    >>> classification_metrics([0, 1], [0, 1], 2)["macro_f1"]
    1.0
    """
    cm = confusion_matrix(y_true, y_pred, n_classes)
    pc = per_class_from_confusion(cm)
    return {
        "n": int(cm.sum()),
        "confusion": cm.tolist(),
        "precision": pc["precision"].tolist(),
        "recall": pc["recall"].tolist(),
        "f1": pc["f1"].tolist(),
        "support": [int(s) for s in pc["support"]],
        "macro_f1": float(macro_f1_from_confusion(cm)),
        "accuracy": float(accuracy_from_confusion(cm)),
    }
