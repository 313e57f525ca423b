"""The vendor's claim beside what bedside measures (pure: no store access).

A manifest may carry ``claimed_macro_f1`` (from a published benchmark). The leaderboard shows
claimed → phase 1 → phase 2 and the *claim gap* (claimed minus phase 1, the out-of-the-box score
on the hospital's data). A claim is flagged when the gap exceeds the policy's
``claim_gap_threshold`` or when the claim lies outside the phase-1 95 % CI.

Claims travel inside leaderboard rows, so they are shown exactly where a row is visible.

Example::

    >>> c = claim_columns(0.92, 0.55, [0.50, 0.60], threshold=0.10)
    >>> c.claim_gap, c.claim_flagged, c.claim_reasons
    (0.37, True, ['gap 0.370 > 0.100', 'claim outside the phase-1 95 % CI [0.500, 0.600]'])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bedside.leaderboard.release import finite_or_none

# Rounding noise must not flag a gap that equals the threshold as released.
_EPS = 1e-9


@dataclass(frozen=True)
class ClaimColumns:
    """The claim columns of one leaderboard row."""

    claimed_macro_f1: float | None = None
    claim_source: str = ""
    claimed_per_class: dict[str, float] = field(default_factory=dict)
    claim_gap: float | None = None  # claimed minus phase-1 macro-F1
    claim_flagged: bool = False
    claim_reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def claim_columns(
    claimed: float | None,
    phase1: float | None,
    phase1_ci: Sequence[Any] | None,
    threshold: float,
    *,
    source: str = "",
    per_class: Mapping[str, float] | None = None,
) -> ClaimColumns:
    """Claim gap and warning marker for a claim against the phase-1 macro-F1 and its CI.

    No claim, or no phase-1 result yet: no gap and no marker.
    """
    c = finite_or_none(claimed)
    per = {str(k): float(v) for k, v in (per_class or {}).items() if finite_or_none(v) is not None}
    p1 = finite_or_none(phase1)
    if c is None or p1 is None:
        return ClaimColumns(c, source, per)
    gap = round(c - p1, 12)
    reasons = []
    if gap > threshold + _EPS:
        reasons.append(f"gap {gap:.3f} > {threshold:.3f}")
    lo, hi = (list(phase1_ci) + [None, None])[:2] if phase1_ci else (None, None)
    lo, hi = finite_or_none(lo), finite_or_none(hi)
    if lo is not None and hi is not None and not lo - _EPS <= c <= hi + _EPS:
        reasons.append(f"claim outside the phase-1 95 % CI [{lo:.3f}, {hi:.3f}]")
    return ClaimColumns(c, source, per, gap, bool(reasons), reasons)


def manifest_claim(manifest: Mapping[str, Any] | None) -> dict[str, Any]:
    """The claim keys of a stored manifest (``{}`` for a manifest from before claims)."""
    m = manifest or {}
    per = m.get("claimed_per_class")
    return {
        "claimed": m.get("claimed_macro_f1"),
        "source": str(m.get("claim_source") or ""),
        "per_class": dict(per) if isinstance(per, Mapping) else {},
    }


def row_claims(
    row: Mapping[str, Any], manifest: Mapping[str, Any] | None, threshold: float
) -> dict[str, Any]:
    """The claim columns for a built leaderboard row (phase-1 CI from ``phase1_macro_f1_ci``)."""
    mc = manifest_claim(manifest)
    cols = claim_columns(
        mc["claimed"],
        row.get("phase1_macro_f1"),
        row.get("phase1_macro_f1_ci"),
        threshold,
        source=mc["source"],
        per_class=mc["per_class"],
    )
    return cols.to_dict()


def submission_claims(
    manifest: Mapping[str, Any] | None,
    results: Sequence[Mapping[str, Any]],
    threshold: float,
) -> dict[str, Any]:
    """Claimed → phase 1 → phase 2 for one submission's released results (latest of each phase).

    ``results`` are result views with ``phase``, ``macro_f1`` and ``metrics.macro_f1_ci``.
    """
    latest: dict[int, Mapping[str, Any]] = {}
    for r in results:
        latest[int(r["phase"])] = r
    p1, p2 = latest.get(1), latest.get(2)
    mc = manifest_claim(manifest)
    cols = claim_columns(
        mc["claimed"],
        None if p1 is None else p1.get("macro_f1"),
        None if p1 is None else (p1.get("metrics") or {}).get("macro_f1_ci"),
        threshold,
        source=mc["source"],
        per_class=mc["per_class"],
    )
    return {
        **cols.to_dict(),
        "phase1_macro_f1": None if p1 is None else p1.get("macro_f1"),
        "phase2_macro_f1": None if p2 is None else p2.get("macro_f1"),
        "threshold": threshold,
    }
