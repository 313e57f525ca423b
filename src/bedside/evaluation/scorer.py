"""The trusted scorer: holdout labels + a model's probabilities -> the result metrics.

Runs outside the sandbox (the labels never enter a job). The output has exactly the shape of
"Result metrics" in docs/architecture.md. The predicted class is the arg-max of each row's
probabilities; ties go to the class that comes first in workspace order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bedside.errors import DataError
from bedside.evaluation.bootstrap import bootstrap_ci
from bedside.evaluation.calibration import expected_calibration_error
from bedside.evaluation.metrics import classification_metrics
from bedside.evaluation.paired import paired_bootstrap
from bedside.evaluation.robustness import robustness


def label_indices(y_true: Sequence[str], classes: Sequence[str]) -> NDArray[np.int64]:
    """Class names -> indices in workspace order; an unknown name is a ``DataError``.

    >>> label_indices(["b", "a"], ["a", "b"]).tolist()
    [1, 0]
    """
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({str(y) for y in y_true} - set(index))
    if unknown:
        raise DataError(
            f"holdout labels {unknown[:3]!r} are not workspace classes; expected one of {list(classes)!r}.",
            hint="The corpus version and the class list disagree; re-add the corpus with `bedside data add`.",
        )
    return np.fromiter((index[str(y)] for y in y_true), dtype=np.int64, count=len(y_true))


def _check_probs(probs: ArrayLike, n: int, k: int, name: str) -> NDArray[np.float64]:
    p = np.asarray(probs, dtype=np.float64)
    if p.shape != (n, k):
        raise ValueError(f"{name} must have shape ({n}, {k}) (rows x classes), got {p.shape}.")
    return p


def round_floats(obj: Any, decimals: int) -> Any:
    """Round every float inside ``obj`` (dicts, lists) to ``decimals``; ints stay as they are.

    >>> round_floats({"a": [0.12345, 3], "b": None}, 2)
    {'a': [0.12, 3], 'b': None}
    """
    if isinstance(obj, float):
        return round(obj, decimals)
    if isinstance(obj, dict):
        return {k: round_floats(v, decimals) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [round_floats(v, decimals) for v in obj]
    return obj


def score(
    y_true: Sequence[str],
    probs: ArrayLike,
    classes: Sequence[str],
    lengths_words: ArrayLike,
    edges: Sequence[float],
    resamples: int = 1000,
    seed: int = 0,
    phase1_probs: ArrayLike | None = None,
    decimals: int | None = None,
) -> dict[str, Any]:
    """Score probabilities against holdout labels; returns the "Result metrics" dict.

    ``phase1_probs`` (same rows, same order) adds ``delta_vs_phase1`` (paired bootstrap).
    ``decimals`` rounds every released float (release precision); counts are kept exact.

    >>> m = score(["a", "b"] * 50, [[0.9, 0.1], [0.2, 0.8]] * 50, ["a", "b"], [10] * 100, [5, 20])
    >>> m["macro_f1"], m["macro_f1_ci"], m["per_class"][0]["support"]
    (1.0, [1.0, 1.0], 50)
    """
    classes = list(classes)
    k = len(classes)
    t = label_indices(y_true, classes)
    n = int(t.size)
    if n == 0:
        raise DataError("cannot score an empty holdout; expected at least one labelled row.")
    p = _check_probs(probs, n, k, "probs")
    pred = p.argmax(axis=1)

    m = classification_metrics(t, pred, k)
    ci = bootstrap_ci(t, pred, k, resamples=resamples, seed=seed)
    per_class = [
        {
            "name": name,
            "precision": m["precision"][i],
            "recall": m["recall"][i],
            "f1": m["f1"][i],
            "support": m["support"][i],
            "recall_ci": ci["recall"][i],
            "share": m["support"][i] / n,
        }
        for i, name in enumerate(classes)
    ]
    out: dict[str, Any] = {
        "n": n,
        "macro_f1": m["macro_f1"],
        "macro_f1_ci": ci["macro_f1"],
        "accuracy": m["accuracy"],
        "per_class": per_class,
        "confusion": {"labels": classes, "matrix": m["confusion"]},
        "robustness": robustness(t, pred, k, lengths_words, edges),
        "ece": expected_calibration_error(p, t),
        "resamples": resamples,
        "seed": seed,
    }
    if phase1_probs is not None:
        p1 = _check_probs(phase1_probs, n, k, "phase1_probs")
        out["delta_vs_phase1"] = paired_bootstrap(
            t, p1.argmax(axis=1), pred, k, resamples=resamples, seed=seed
        )
    return round_floats(out, decimals) if decimals is not None else out
