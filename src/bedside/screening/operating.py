"""Recall-targeted operating points: one threshold per class, picked on one half of the holdout
predictions and reported on the other.

The held-out predictions are the deployed result's per-record probabilities (owner-only, under
``artefacts/predictions/``). ``split_slices`` cuts the holdout into a *tuning* half and a
*reporting* half, stratified by class and ordered by a hash of the row id (so the halves do not
depend on file order and never change for a given corpus version). A threshold is picked on the
tuning half only; every number shown (expected recall with its bootstrap CI, precision, workload)
is measured on the reporting half, which the threshold never saw.

An abstract is flagged for class ``k`` when ``p_k >= threshold_k`` (one-vs-rest), and it *needs
review* when it is flagged for any class with a target. The chosen threshold is the highest one
whose tuning recall reaches the target (the least review work). A threshold that flags every
abstract is not a screening rule, and neither is one above ``max_workload`` per 1,000: a target
that only such a threshold reaches is reported as not reachable, with the best reachable recall.

Example::

    ops = operating_points(y, probs, classes, row_ids, {"digestive system diseases": 0.9})
    ops.points[0].threshold, ops.points[0].expected_recall, ops.points[0].workload_per_1000
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bedside.errors import ConfigError, DataError
from bedside.evaluation.bootstrap import bootstrap_ci

SLICE_RULE = (
    "holdout rows split per class into two halves by sha256 of the row id: thresholds are picked "
    "on the tuning half, every reported number is measured on the reporting half"
)
CURVE_POINTS = 120


@dataclass(frozen=True)
class Pick:
    """A threshold picked on the tuning slice."""

    threshold: float | None
    reached: bool
    tuning_recall: float | None


@dataclass
class OperatingPoint:
    """One class's target and what its threshold does on the reporting half."""

    class_name: str
    target: float
    threshold: float | None
    reached: bool
    tuning_recall: float | None
    expected_recall: float | None
    recall_ci: list[float] | None
    precision: float | None
    workload_per_1000: float | None
    n_report: int
    n_positive_report: int
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OperatingPoint:
        kw: dict[str, Any] = {k: d.get(k) for k in cls.__dataclass_fields__}
        return cls(**kw)


@dataclass
class OperatingPoints:
    """Every class's operating point, the slice rule, and recall-vs-workload curves."""

    points: list[OperatingPoint]
    slice_rule: str = SLICE_RULE
    n_tuning: int = 0
    n_reporting: int = 0
    max_workload: float | None = None
    resamples: int = 1000
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def thresholds(self) -> dict[str, float]:
        return {p.class_name: p.threshold for p in self.points if p.threshold is not None}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["points"] = [p.to_dict() for p in self.points]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> OperatingPoints:
        d = dict(d or {})
        return cls(
            points=[OperatingPoint.from_dict(p) for p in d.get("points") or []],
            slice_rule=str(d.get("slice_rule") or SLICE_RULE),
            n_tuning=int(d.get("n_tuning") or 0),
            n_reporting=int(d.get("n_reporting") or 0),
            max_workload=d.get("max_workload"),
            resamples=int(d.get("resamples") or 1000),
            curves=dict(d.get("curves") or {}),
        )


def check_targets(targets: Mapping[str, float], classes: Sequence[str]) -> dict[str, float]:
    """Targets keyed by workspace class name, each in (0, 1]."""
    out: dict[str, float] = {}
    for name, value in targets.items():
        if name not in classes:
            raise ConfigError(
                f"target recall for {name!r}, which is not a workspace class.",
                hint="Classes are: " + ", ".join(repr(c) for c in classes) + ".",
            )
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"target recall for {name!r} must be a number, got {value!r}."
            ) from None
        if not (math.isfinite(v) and 0.0 < v <= 1.0):
            raise ConfigError(
                f"target recall for {name!r} must be in (0, 1], got {value!r}.",
                hint="Write it as a fraction: 0.9 for 90 %.",
            )
        out[name] = v
    if not out:
        raise ConfigError("no target recall given.", hint="e.g. --target digestive=0.9")
    return out


def split_slices(
    row_ids: Sequence[str], labels: Sequence[int], seed: int = 0
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(tuning, reporting) row indices: per class, rows ordered by ``sha256(seed:row_id)`` and
    dealt alternately, so each half holds half of every class.

    >>> t, r = split_slices(["a", "b", "c", "d"], [0, 0, 1, 1])
    >>> sorted(t.tolist() + r.tolist())
    [0, 1, 2, 3]
    """
    y = np.asarray(labels, dtype=np.int64)
    if len(row_ids) != len(y):
        raise DataError(f"{len(row_ids)} row ids but {len(y)} labels.")
    key = [hashlib.sha256(f"{seed}:{r}".encode()).hexdigest() for r in row_ids]
    tune: list[int] = []
    report: list[int] = []
    for k in np.unique(y):
        idx = sorted(np.flatnonzero(y == k).tolist(), key=lambda i: key[i])
        tune.extend(idx[0::2])
        report.extend(idx[1::2])
    return np.array(sorted(tune), dtype=np.int64), np.array(sorted(report), dtype=np.int64)


def pick_threshold(
    scores: ArrayLike, positive: ArrayLike, target: float, max_workload: float | None = None
) -> Pick:
    """The highest threshold whose recall on these rows reaches ``target``, flagging fewer than
    all rows (and at most ``max_workload`` per 1,000). When none does, the threshold with the best
    recall that stays within those limits, with ``reached=False``.

    >>> s = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]
    >>> pos = [1, 0, 1, 0, 1, 0, 1, 0, 0, 0]
    >>> pick_threshold(s, pos, 0.75)
    Pick(threshold=0.5, reached=True, tuning_recall=0.75)
    """
    s = np.asarray(scores, dtype=np.float64)
    pos = np.asarray(positive, dtype=bool)
    n, n_pos = s.size, int(pos.sum())
    if n_pos == 0:
        return Pick(None, False, None)
    cap = n if max_workload is None else math.floor(max_workload * n / 1000.0 + 1e-9)
    candidates = np.unique(s[pos])[::-1]  # descending: the fewest flags first
    best: Pick | None = None
    for t in candidates:
        flagged = int((s >= t).sum())
        if flagged >= n or flagged > cap:
            break  # lower thresholds only flag more
        recall = float((s[pos] >= t).sum()) / n_pos
        best = Pick(float(t), recall >= target - 1e-12, recall)
        if best.reached:
            return best
    return best if best is not None else Pick(None, False, 0.0)


def _curve(scores: NDArray[np.float64], positive: NDArray[np.bool_]) -> dict[str, list[float]]:
    """Recall against flagged-per-1,000 as the threshold sweeps down (at most CURVE_POINTS)."""
    n, n_pos = scores.size, int(positive.sum())
    if n == 0 or n_pos == 0:
        return {"workload": [], "recall": []}
    order = np.argsort(-scores, kind="stable")
    hits = np.cumsum(positive[order])
    at = np.unique(np.linspace(0, n - 1, min(n, CURVE_POINTS)).astype(int))
    return {
        "workload": [0.0, *[round((i + 1) * 1000.0 / n, 2) for i in at]],
        "recall": [0.0, *[round(float(hits[i]) / n_pos, 4) for i in at]],
    }


def _message(name: str, target: float, pick: Pick, expected: float | None) -> str:
    if pick.threshold is None:
        return f"{name}: the tuning half has no abstract of this class; no threshold can be picked."
    if not pick.reached:
        return (
            f"{name}: no threshold reaches recall {target:.2f} without flagging every abstract "
            f"(or going over the workload cap); the best reachable is {pick.tuning_recall:.3f} "
            f"on the tuning half at threshold {pick.threshold:.4f}."
        )
    if expected is not None and expected < target:
        return (
            f"{name}: the threshold reaches {target:.2f} on the tuning half, but only "
            f"{expected:.3f} on the reporting half."
        )
    return f"{name}: target {target:.2f} reached."


def operating_points(
    y: ArrayLike,
    probs: ArrayLike,
    classes: Sequence[str],
    row_ids: Sequence[str],
    targets: Mapping[str, float],
    *,
    max_workload: float | None = None,
    resamples: int = 1000,
    seed: int = 0,
) -> OperatingPoints:
    """Pick per-class thresholds for ``targets`` on the tuning half of the holdout predictions
    and measure them on the reporting half (see the module docstring)."""
    p = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(y, dtype=np.int64)
    if p.ndim != 2 or p.shape != (labels.size, len(classes)):
        raise DataError(
            f"expected predictions of shape ({labels.size}, {len(classes)}), got {p.shape}."
        )
    if max_workload is not None and not 0 < max_workload <= 1000:
        raise ConfigError(f"max workload must be in (0, 1000] per 1,000, got {max_workload}.")
    goals = check_targets(targets, classes)
    tune, report = split_slices(row_ids, labels.tolist(), seed)
    points: list[OperatingPoint] = []
    curves: dict[str, dict[str, list[float]]] = {}
    for name, target in goals.items():
        k = list(classes).index(name)
        pick = pick_threshold(p[tune, k], labels[tune] == k, target, max_workload)
        s_rep, pos_rep = p[report, k], labels[report] == k
        curves[name] = _curve(s_rep, pos_rep)
        expected = ci = precision = workload = None
        if pick.threshold is not None and report.size:
            flags = s_rep >= pick.threshold
            workload = round(float(flags.mean()) * 1000.0, 1)
            precision = float((flags & pos_rep).sum() / flags.sum()) if flags.any() else None
            if pos_rep.any():
                expected = float((flags & pos_rep).sum() / pos_rep.sum())
                ci = bootstrap_ci(
                    pos_rep.astype(int), flags.astype(int), 2, resamples=resamples, seed=seed
                )["recall"][1]
        points.append(
            OperatingPoint(
                class_name=name,
                target=target,
                threshold=pick.threshold,
                reached=pick.reached,
                tuning_recall=pick.tuning_recall,
                expected_recall=expected,
                recall_ci=ci,
                precision=precision,
                workload_per_1000=workload,
                n_report=int(report.size),
                n_positive_report=int(pos_rep.sum()),
                message=_message(name, target, pick, expected),
            )
        )
    return OperatingPoints(
        points=points,
        n_tuning=int(tune.size),
        n_reporting=int(report.size),
        max_workload=max_workload,
        resamples=resamples,
        curves=curves,
    )


def flag_matrix(
    probs: NDArray[np.float64], classes: Sequence[str], thresholds: Mapping[str, float]
) -> NDArray[np.bool_]:
    """(n, K) flags: ``probs[:, k] >= threshold_k`` for classes with a threshold, else False."""
    out = np.zeros(probs.shape, dtype=bool)
    for name, t in thresholds.items():
        k = list(classes).index(name)
        out[:, k] = probs[:, k] >= t
    return out
