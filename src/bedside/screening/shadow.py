"""Shadow mode: the new model beside the classifier in use today, and recall once reviewers label.

``compare`` takes, for the same abstracts, the new model's predicted classes, its review flags
(from the operating points) and the current classifier's labels (a column of the screening
file, or the internal TF-IDF baseline's predictions). It reports agreement, per-class
disagreements, and the abstracts the new model flags for a *watched* class (a class with a
recall target: the small classes the owner screens for) that the current classifier did not
put in that class. Counts are aggregate; the row ids of those abstracts are owner-only and are
kept apart (``ShadowReport.missed_ids``, written to an owner-only file, never to a row or a page
other than the owner's).

``realised_recall`` joins a finished run with reviewer labels (taken in with
``bedside data add --append``) by row id, and sets the recall the flags achieved on those
abstracts beside the recall that was promised.

Example::

    rep = compare(ids, new_labels, flags, old_labels, classes, watched=["digestive system diseases"])
    rep.agreement, rep.missed_by_current
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bedside.errors import DataError


@dataclass
class ShadowReport:
    """Aggregate comparison of the new model and the current classifier on one run."""

    source: str  # "column NAME" | "internal baseline"
    n: int = 0
    agree: int = 0
    agreement: float | None = None
    # per class: {"new": rows the new model puts there, "current": rows the current one puts
    # there, "new_only": new says k and current does not, "current_only": the reverse}
    per_class: dict[str, dict[str, int]] = field(default_factory=dict)
    # per watched class: abstracts flagged for it by the new model that the current one missed
    missed_by_current: dict[str, int] = field(default_factory=dict)
    missed_ids: dict[str, list[str]] = field(default_factory=dict)  # owner-only

    def counts(self) -> dict[str, Any]:
        """Everything but the row ids."""
        d = asdict(self)
        d.pop("missed_ids")
        return d


def compare(
    row_ids: Sequence[str],
    new_labels: ArrayLike,
    flags: NDArray[np.bool_],
    current_labels: ArrayLike,
    classes: Sequence[str],
    watched: Sequence[str],
    source: str,
    report: ShadowReport | None = None,
) -> ShadowReport:
    """Add one chunk to ``report`` (a new one when None) and return it. Labels are class indices.

    >>> r = compare(["a", "b", "c"], [0, 1, 1], np.array([[0, 1], [0, 1], [0, 1]], bool),
    ...             [0, 0, 1], ["x", "y"], ["y"], "column old")
    >>> r.agree, r.missed_by_current["y"], r.missed_ids["y"]
    (2, 2, ['a', 'b'])
    """
    new = np.asarray(new_labels, dtype=np.int64)
    cur = np.asarray(current_labels, dtype=np.int64)
    f = np.asarray(flags, dtype=bool)
    if not (len(row_ids) == new.size == cur.size == f.shape[0]):
        raise DataError(
            f"shadow comparison needs one row each: {len(row_ids)} ids, {new.size} new labels, "
            f"{cur.size} current labels, {f.shape[0]} flag rows."
        )
    rep = report or ShadowReport(source=source)
    rep.n += int(new.size)
    rep.agree += int((new == cur).sum())
    rep.agreement = rep.agree / rep.n if rep.n else None
    for k, name in enumerate(classes):
        pc = rep.per_class.setdefault(
            name, {"new": 0, "current": 0, "new_only": 0, "current_only": 0}
        )
        pc["new"] += int((new == k).sum())
        pc["current"] += int((cur == k).sum())
        pc["new_only"] += int(((new == k) & (cur != k)).sum())
        pc["current_only"] += int(((cur == k) & (new != k)).sum())
    for name in watched:
        k = list(classes).index(name)
        hit = f[:, k] & (cur != k)
        rep.missed_by_current[name] = rep.missed_by_current.get(name, 0) + int(hit.sum())
        rep.missed_ids.setdefault(name, []).extend(
            str(row_ids[int(i)]) for i in np.flatnonzero(hit)
        )
    return rep


@dataclass
class RealisedRecall:
    """Recall of the flags on screened abstracts that reviewers have since labelled."""

    class_name: str
    promised: float | None  # the operating point's expected recall on the reporting half
    promised_ci: list[float] | None
    target: float | None
    labelled: int  # screened abstracts with a reviewer label
    positives: int  # ... of this class
    flagged_positives: int
    realised: float | None
    flagged: int  # labelled abstracts flagged for this class
    precision: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def realised_recall(
    flags: NDArray[np.bool_],
    labels: Sequence[int],
    classes: Sequence[str],
    points: Mapping[str, Mapping[str, Any]],
) -> list[RealisedRecall]:
    """Per watched class: the flags' recall on the labelled abstracts vs the promise.

    ``flags`` (n, K) and ``labels`` (n,) are the labelled screened abstracts only; ``points``
    maps a class name to its stored operating point.

    >>> out = realised_recall(np.array([[1, 0], [0, 1], [0, 0]], bool), [0, 0, 1], ["x", "y"],
    ...                       {"x": {"expected_recall": 0.9, "target": 0.9}})
    >>> out[0].realised, out[0].positives
    (0.5, 2)
    """
    f = np.asarray(flags, dtype=bool)
    y = np.asarray(labels, dtype=np.int64)
    out = []
    for name, point in points.items():
        k = list(classes).index(name)
        pos = y == k
        tp = int((f[:, k] & pos).sum())
        n_flag = int(f[:, k].sum())
        out.append(
            RealisedRecall(
                class_name=name,
                promised=point.get("expected_recall"),
                promised_ci=point.get("recall_ci"),
                target=point.get("target"),
                labelled=int(y.size),
                positives=int(pos.sum()),
                flagged_positives=tp,
                realised=tp / int(pos.sum()) if pos.any() else None,
                flagged=n_flag,
                precision=tp / n_flag if n_flag else None,
            )
        )
    return out
