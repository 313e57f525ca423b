"""One leaderboard row from a submission's phase results (pure: no store access).

Example::

    row = build_row(head=p2, p1=p1, p2=p2, small={"rare"}, decimals=3)
    row["macro_f1"], row["delta"], row["compute_pflops"]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bedside.leaderboard.release import finite_or_none, round_released

BASELINE_VENDOR = "internal baseline"
CURRENT_VENDOR = "current classifier"  # the owner's classifier in use today (a baseline row)


def compute_pflops(provenance: Mapping[str, Any]) -> tuple[float | None, bool]:
    """PFLOPs a result used, from its provenance: (value, is_estimate).

    Reads ``compute.actual_pflops`` (or ``pflops_actual`` / ``pflops``); falls back to the
    pre-flight estimate, flagged as such.
    """
    compute = provenance.get("compute")
    sources: list[Mapping[str, Any]] = [compute] if isinstance(compute, Mapping) else []
    sources.append(provenance)
    for src in sources:
        for key in ("actual_pflops", "pflops_actual", "pflops", "compute_pflops"):
            v = finite_or_none(src.get(key))
            if v is not None:
                return v, False
        flops = finite_or_none(src.get("flops") or src.get("actual_flops"))
        if flops is not None:
            return flops / 1e15, False
    for src in sources:
        for key in ("estimated_pflops", "pflops_estimate", "estimate_pflops"):
            v = finite_or_none(src.get(key))
            if v is not None:
                return v, True
    return None, False


def _per_class(metrics: Mapping[str, Any], small: set[str]) -> list[dict[str, Any]]:
    return [
        {
            "name": pc.get("name"),
            "f1": pc.get("f1"),
            "recall": pc.get("recall"),
            "recall_ci": pc.get("recall_ci"),
            "precision": pc.get("precision"),
            "share": pc.get("share"),
            "small": pc.get("name") in small,
        }
        for pc in metrics.get("per_class") or []
        if isinstance(pc, Mapping)
    ]


def _delta(p1: Mapping[str, Any] | None, p2: Mapping[str, Any] | None) -> tuple[float | None, Any]:
    """Phase-2 minus phase-1 macro-F1 (the scorer's paired value when stored) and its CI."""
    if p1 is None or p2 is None:
        return None, None
    dv = (p2["metrics"] or {}).get("delta_vs_phase1") or {}
    delta = finite_or_none(dv.get("delta"))
    if delta is None:
        delta = float(p2["macro_f1"]) - float(p1["macro_f1"])
    return delta, dv.get("ci")


def _pflops(parts: tuple[Mapping[str, Any] | None, ...]) -> tuple[float | None, bool]:
    total: float | None = None
    estimated = False
    for part in parts:
        if part is None:
            continue
        v, est = compute_pflops(part["provenance"] or {})
        if v is not None:
            total = (total or 0.0) + v
            estimated = estimated or est
    return total, estimated


def build_row(
    head: Mapping[str, Any],
    p1: Mapping[str, Any] | None,
    p2: Mapping[str, Any] | None,
    small: set[str],
    decimals: int,
) -> dict[str, Any]:
    """The released row for ``head`` (the latest phase; the baseline's own result), rounded."""
    m = head["metrics"] or {}
    is_baseline = head["submission_id"] is None
    # a baseline the owner registered (the current classifier) says so in its provenance
    baseline_kind = ((head["provenance"] or {}).get("baseline") or "tfidf") if is_baseline else None
    delta, delta_ci = _delta(p1, p2)
    pflops, estimated = _pflops((head,) if is_baseline else (p1, p2))
    row = {
        "kind": "baseline" if is_baseline else "submission",
        "rank": None,
        "rank_label": "baseline" if is_baseline else "",
        "tied_with_above": False,
        "result_id": head["id"],
        "submission_id": head["submission_id"],
        "model": head["model_label"]
        if is_baseline
        else (head.get("submission_name") or head["model_label"]),
        "vendor": (CURRENT_VENDOR if baseline_kind == "current" else BASELINE_VENDOR)
        if is_baseline
        else head.get("vendor"),
        "baseline_kind": baseline_kind,
        "phase": head["phase"],
        "macro_f1": float(head["macro_f1"]),
        "macro_f1_ci": m.get("macro_f1_ci"),
        "accuracy": m.get("accuracy"),
        "phase1_macro_f1": float(p1["macro_f1"]) if p1 else None,
        "phase1_macro_f1_ci": (p1["metrics"] or {}).get("macro_f1_ci") if p1 else None,
        "phase2_macro_f1": float(p2["macro_f1"]) if p2 else None,
        "delta": delta,
        "delta_ci": delta_ci,
        "per_class": _per_class(m, small),
        "worst_gap": (m.get("robustness") or {}).get("worst_gap"),
        "compute_pflops": pflops,
        "compute_estimated": estimated,
        "n": m.get("n"),
    }
    return round_released(row, decimals)
