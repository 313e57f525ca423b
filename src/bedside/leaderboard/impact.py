"""The business-impact view of the leaderboard: what each visible row means in money a year."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from bedside.errors import ConfigError
from bedside.leaderboard.board import build_leaderboard
from bedside.leaderboard.shares import class_shares

if TYPE_CHECKING:
    from bedside.auth import Principal
    from bedside.evaluation.impact import ImpactAssumptions
    from bedside.workspace import Workspace

IMPACT_FIELDS = (
    "abstracts_per_year",
    "cost_per_missed_paper",
    "reviewer_cost_per_fte",
    "reviewer_fte",
    "ai_cost_per_year",
    "currency",
)


def impact_assumptions(values: Mapping[str, Any] | None = None) -> ImpactAssumptions:
    """``ImpactAssumptions`` from form or CLI values (strings accepted, blanks ignored).

    Raises ConfigError naming a bad value.
    """
    from bedside.evaluation.impact import ImpactAssumptions

    kwargs: dict[str, Any] = {}
    for key, raw in (values or {}).items():
        if key not in IMPACT_FIELDS or raw is None or raw == "":
            continue
        if key == "currency":
            kwargs[key] = str(raw).strip().upper()
            continue
        try:
            v = float(raw)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"{key} must be a number, got {str(raw)[:40]!r}.") from None
        if key == "abstracts_per_year":
            if not v.is_integer():
                raise ConfigError(f"abstracts_per_year must be a whole number, got {raw!r}.")
            kwargs[key] = int(v)
        else:
            kwargs[key] = v
    return ImpactAssumptions(**kwargs)


def _impact_row(row: Mapping[str, Any], est: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "result_id": row["result_id"],
        "model": row["model"],
        "vendor": row["vendor"],
        "kind": row["kind"],
        "rank_label": row["rank_label"],
        "macro_f1": row["macro_f1"],
        "missed_per_year": round(est["missed_total"], 1),
        "missed_per_class": {k: round(v, 1) for k, v in est["missed_per_class"].items()},
        "miss_cost": round(est["miss_cost"], 2),
        "missed_range": [round(v, 1) for v in est["missed_range"]],
        "miss_cost_range": [round(v, 2) for v in est["miss_cost_range"]],
        "baseline_kind": row.get("baseline_kind"),
        "status_quo": row.get("baseline_kind") == "current",
        "reviewer_cost": round(est["reviewer_cost"], 2),
        "ai_cost": round(est["ai_cost"], 2),
        "total_cost": round(est["total_cost"], 2),
    }


def impact_rows(
    ws: Workspace,
    viewer: Principal | None,
    assumptions: Mapping[str, Any] | None = None,
    ai_costs: Mapping[str, float] | None = None,
    baseline_cost: float = 0.0,
) -> dict[str, Any]:
    """Business impact of every leaderboard row the viewer may see, baseline included.

    ``ai_costs`` maps a vendor name to its yearly price (default: ``ai_cost_per_year``); the
    internal baseline costs ``baseline_cost`` a year; the current classifier (a registered
    baseline) costs what ``ai_costs`` gives for its name, else 0. ``vs_baseline`` is the
    total-cost difference to the internal baseline (negative = cheaper).

    The status quo (the newest registered current classifier) is the first row and
    ``vs_status_quo`` prices every row against it; the miss cost comes with a range from the
    per-class recall CIs (``miss_cost_range``).
    """
    from bedside.evaluation.impact import estimate_impact

    a = impact_assumptions(assumptions)
    board = build_leaderboard(ws, viewer)
    shares = class_shares(ws, (board["corpus_version"] or {}).get("id"))
    out_rows: list[dict[str, Any]] = []
    for row in board["rows"]:
        if row.get("withheld"):
            continue  # per-class recall is withheld under the Ladder / public split (holdout_rules)
        recall = {str(pc["name"]): float(pc["recall"] or 0.0) for pc in row["per_class"]}
        row_shares = {c: v for c, v in shares.items() if c in recall} or {
            c: 1 / len(recall) for c in recall
        }
        recall_ci = {str(pc["name"]): pc.get("recall_ci") for pc in row["per_class"]}
        if row["kind"] == "baseline" and row.get("baseline_kind") == "current":
            ai: float | None = float((ai_costs or {}).get(row["model"], 0.0))
        elif row["kind"] == "baseline":
            ai = float(baseline_cost)
        elif ai_costs and row["vendor"] in ai_costs:
            ai = float(ai_costs[row["vendor"]])
        else:
            ai = None  # the assumption's default
        est = estimate_impact(
            recall, row_shares, a, label=row["vendor"], ai_cost=ai, recall_ci=recall_ci
        )
        out_rows.append(_impact_row(row, est))
    out_rows = status_quo_first(out_rows)
    base = next((r for r in out_rows if r["baseline_kind"] == "tfidf"), None)
    quo = out_rows[0] if out_rows and out_rows[0]["status_quo"] else None
    for r in out_rows:
        r["vs_baseline"] = round(r["total_cost"] - base["total_cost"], 2) if base else None
        r["vs_status_quo"] = round(r["total_cost"] - quo["total_cost"], 2) if quo else None
    return {
        "assumptions": {
            **a.to_dict(),
            "baseline_cost_per_year": float(baseline_cost),
            "ai_costs": dict(ai_costs or {}),
        },
        "statements": [
            *a.describe(),
            f"The internal baseline costs {baseline_cost:,.0f} {a.currency} a year to run.",
            *(
                [
                    f"Status quo: {quo['model']}, the classifier in use today; every row is priced "
                    "against it. Miss-cost ranges come from the per-class recall 95 % CIs."
                ]
                if quo
                else []
            ),
        ],
        "status_quo": quo["model"] if quo else None,
        "currency": a.currency,
        "class_shares": {k: round(v, 4) for k, v in shares.items()},
        "published": board["published"],
        "rows": out_rows,
    }


def status_quo_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest current-classifier row first (the status quo), the rest in board order (pure).

    Older current-classifier rows stay where the board put them and are not the status quo.
    """
    current = [i for i, r in enumerate(rows) if r.get("status_quo")]
    if not current:
        return list(rows)
    first = max(current, key=lambda i: rows[i].get("result_id") or 0)
    rest = [{**r, "status_quo": False} if r.get("status_quo") else r for r in rows[:first]]
    rest += [{**r, "status_quo": False} if r.get("status_quo") else r for r in rows[first + 1 :]]
    return [rows[first], *rest]


def vendors(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Distinct vendor names of submission rows, in order of appearance."""
    seen: list[str] = []
    for r in rows:
        if r["kind"] == "submission" and r["vendor"] not in seen:
            seen.append(r["vendor"])
    return seen
