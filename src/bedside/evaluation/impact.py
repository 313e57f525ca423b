"""Business impact: what a model's per-class recall means in missed papers and money per year.

The model routes incoming abstracts to the right specialist queue; an abstract of class ``c`` that
the model misses lands in the wrong queue and is (in this simple model) a missed paper::

    missed_c     = abstracts_per_year * share_c * (1 - recall_c)
    miss_cost    = sum_c missed_c * cost_per_missed_paper
    reviewer_cost = reviewer_fte * reviewer_cost_per_fte      (human review still needed)
    ai_cost      = the vendor's yearly cost (per label override, else the default)
    total_cost   = miss_cost + reviewer_cost + ai_cost
    miss_cost_range = miss_cost at the upper and at the lower ends of each class's recall 95 % CI

Every number is an assumption the owner sets; ``estimate_impact`` returns them as text beside the
result so that no figure travels without the assumptions behind it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from bedside.errors import ConfigError

SHARE_TOLERANCE = 0.02  # shares released rounded (e.g. to 3 decimals) may not sum to exactly 1
# Amounts and counts are bounded so that every product and sum stays finite (1e15 x 1e15 x a few
# terms is far below float max): finite inputs such as 1e308 used to give inf/NaN in the output.
MAX_AMOUNT = 1e15


def _check_amount(name: str, value: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}.")
    if value > MAX_AMOUNT:
        raise ConfigError(
            f"{name} must be at most {MAX_AMOUNT:.0e}, got {value!r}.",
            hint="Give the amount in the currency's usual unit; larger figures overflow the estimate.",
        )


@dataclass
class ImpactAssumptions:
    """The owner's assumptions for the impact estimate (validated on construction).

    >>> ImpactAssumptions(abstracts_per_year=5000).ai_cost_for("vendor A")
    0.0
    """

    abstracts_per_year: int = 10_000
    cost_per_missed_paper: float = 500.0
    reviewer_cost_per_fte: float = 90_000.0
    reviewer_fte: float = 1.0  # human review effort still needed with the model
    ai_cost_per_year: float | dict[str, float] = (
        0.0  # one default, or {label: cost} ("*" = default)
    )
    currency: str = "EUR"
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.abstracts_per_year, bool) or not isinstance(
            self.abstracts_per_year, int
        ):
            raise ConfigError(
                f"abstracts_per_year must be a whole number, got {self.abstracts_per_year!r}."
            )
        if not 0 <= self.abstracts_per_year <= MAX_AMOUNT:
            raise ConfigError(
                f"abstracts_per_year must be between 0 and {MAX_AMOUNT:.0e}, "
                f"got {self.abstracts_per_year}."
            )
        _check_amount("cost_per_missed_paper", self.cost_per_missed_paper)
        _check_amount("reviewer_cost_per_fte", self.reviewer_cost_per_fte)
        _check_amount("reviewer_fte", self.reviewer_fte)
        if isinstance(self.ai_cost_per_year, dict):
            for label, cost in self.ai_cost_per_year.items():
                _check_amount(f"ai_cost_per_year[{label!r}]", cost)
        else:
            _check_amount("ai_cost_per_year", self.ai_cost_per_year)
        if not isinstance(self.currency, str) or not 1 <= len(self.currency.strip()) <= 8:
            raise ConfigError(
                f"currency must be a short code such as 'EUR', got {self.currency!r}."
            )

    def ai_cost_for(self, label: str | None = None) -> float:
        """The yearly AI cost for ``label``: its override, else the ``"*"`` entry, else 0."""
        if isinstance(self.ai_cost_per_year, dict):
            if label is not None and label in self.ai_cost_per_year:
                return float(self.ai_cost_per_year[label])
            return float(self.ai_cost_per_year.get("*", 0.0))
        return float(self.ai_cost_per_year)

    def describe(self) -> list[str]:
        """The assumptions as sentences, shown next to every estimate."""
        cur = self.currency
        ai = self.ai_cost_per_year
        ai_text = (
            ", ".join(f"{k}: {v:,.0f} {cur}" for k, v in ai.items())
            if isinstance(ai, dict)
            else f"{ai:,.0f} {cur}"
        )
        return [
            f"{self.abstracts_per_year:,} abstracts a year, distributed over classes as in the holdout.",
            f"Every abstract the model misses (1 - recall of its class) is a missed paper costing "
            f"{self.cost_per_missed_paper:,.0f} {cur}.",
            f"Human review still needed: {self.reviewer_fte:g} FTE at {self.reviewer_cost_per_fte:,.0f} {cur} a year.",
            f"AI cost a year: {ai_text}.",
            *self.notes,
        ]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ImpactAssumptions:
        """Build from a form or a stored setting; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(
                f"unknown impact assumption(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}."
            )
        return cls(**dict(d))


def _check_inputs(
    per_class_recall: Mapping[str, float], class_shares: Mapping[str, float]
) -> dict[str, float]:
    missing = sorted(set(class_shares) - set(per_class_recall))
    if missing:
        raise ConfigError(
            f"no recall given for class(es) {', '.join(missing)}; expected one recall per class in the shares.",
            hint="Pass the per-class recall of every workspace class (result metrics 'per_class').",
        )
    for name, r in per_class_recall.items():
        if not isinstance(r, int | float) or not 0.0 <= float(r) <= 1.0:
            raise ConfigError(f"recall of {name!r} must be in [0, 1], got {r!r}.")
    for name, s in class_shares.items():
        _check_amount(f"share of {name!r}", s)
    total = float(sum(class_shares.values()))
    if abs(total - 1.0) > SHARE_TOLERANCE:
        raise ConfigError(
            f"class shares must sum to 1, found {total:.4f}.",
            hint="Pass each class's share of the corpus (result metrics 'per_class[].share').",
        )
    return {name: float(s) / total for name, s in class_shares.items()}  # absorb rounding


def estimate_impact(
    per_class_recall: Mapping[str, float],
    class_shares: Mapping[str, float],
    assumptions: ImpactAssumptions,
    *,
    label: str | None = None,
    ai_cost: float | None = None,
    recall_ci: Mapping[str, Sequence[float | None] | None] | None = None,
) -> dict[str, Any]:
    """Expected missed papers and annual cost of using a model with ``per_class_recall``.

    ``ai_cost`` overrides the assumption's AI cost; else ``label`` picks a per-vendor override.
    ``recall_ci`` (class -> [low, high]) gives ``missed_range`` and ``miss_cost_range``: the
    figures at the upper ends of the recall CIs, then at the lower ends (a class without a CI
    counts at its point recall).

    >>> r = estimate_impact({"a": 0.9, "b": 0.5}, {"a": 0.8, "b": 0.2}, ImpactAssumptions())
    >>> round(r["missed_total"]), round(r["total_cost"])
    (1800, 990000)
    """
    shares = _check_inputs(per_class_recall, class_shares)
    if ai_cost is not None:
        _check_amount("ai_cost", ai_cost)
    n = assumptions.abstracts_per_year
    missed = {
        name: n * share * (1.0 - float(per_class_recall[name])) for name, share in shares.items()
    }
    missed_total = sum(missed.values())
    miss_cost = missed_total * assumptions.cost_per_missed_paper
    reviewer_cost = assumptions.reviewer_fte * assumptions.reviewer_cost_per_fte
    ai = float(ai_cost) if ai_cost is not None else assumptions.ai_cost_for(label)
    missed_range = _missed_range(per_class_recall, shares, n, recall_ci or {})
    return {
        "missed_range": missed_range,
        "miss_cost_range": [m * assumptions.cost_per_missed_paper for m in missed_range],
        "missed_per_class": missed,
        "missed_total": missed_total,
        "miss_cost": miss_cost,
        "reviewer_cost": reviewer_cost,
        "ai_cost": ai,
        "total_cost": miss_cost + reviewer_cost + ai,
        "currency": assumptions.currency,
        "assumptions": assumptions.describe(),
    }


def _missed_range(
    recall: Mapping[str, float],
    shares: Mapping[str, float],
    n: int,
    recall_ci: Mapping[str, Sequence[float | None] | None],
) -> list[float]:
    """[fewest, most] missed papers a year: every class at the top, then the bottom, of its CI."""
    best = worst = 0.0
    for name, share in shares.items():
        point = float(recall[name])
        ci = list(recall_ci.get(name) or [])
        lo = float(ci[0]) if len(ci) == 2 and ci[0] is not None else point
        hi = float(ci[1]) if len(ci) == 2 and ci[1] is not None else point
        lo, hi = max(0.0, min(lo, point)), min(1.0, max(hi, point))
        best += n * share * (1.0 - hi)
        worst += n * share * (1.0 - lo)
    return [best, worst]


def impact_table(
    rows: Sequence[Mapping[str, Any]],
    class_shares: Mapping[str, float],
    assumptions: ImpactAssumptions,
) -> list[dict[str, Any]]:
    """One estimate per model, side by side; ``vs_first`` is the total cost minus the first row's.

    Each row is ``{"label", "per_class_recall", "ai_cost"}`` (``ai_cost`` optional / ``None``: use
    the assumptions).

    >>> t = impact_table([{"label": "baseline", "per_class_recall": {"a": 0.5}},
    ...                   {"label": "vendor", "per_class_recall": {"a": 0.9}, "ai_cost": 1000.0}],
    ...                  {"a": 1.0}, ImpactAssumptions())
    >>> [round(r["vs_first"]) for r in t]
    [0, -1999000]
    """
    out: list[dict[str, Any]] = []
    for row in rows:
        if "label" not in row or "per_class_recall" not in row:
            raise ConfigError(
                f"each row needs 'label' and 'per_class_recall', got keys {sorted(row)}."
            )
        est = estimate_impact(
            row["per_class_recall"],
            class_shares,
            assumptions,
            label=row["label"],
            ai_cost=row.get("ai_cost"),
        )
        out.append({"label": row["label"], **est})
    if out:
        first = out[0]["total_cost"]
        for r in out:
            r["vs_first"] = r["total_cost"] - first
    return out
