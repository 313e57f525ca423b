"""Two results side by side: per-class recall with CIs, and a paired test of macro-F1.

A viewer may compare what they may see: the owner any result; a contributor their own results
and the baselines, and once the leaderboard is published every result on it. The paired
bootstrap runs on the owner-only stored predictions (only the aggregate difference leaves);
without them the page says that the intervals are compared instead.

Example::

    view = compare_view(ws, viewer, a=3, b=7)
    view["test"]["words"]   # "B is ahead of A by +0.031 [0.004, 0.058] (paired bootstrap, ...)"
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bedside import leaderboard
from bedside.errors import NotFoundError
from bedside.web import queries
from bedside.web.decisions import excludes_zero

if TYPE_CHECKING:
    from bedside.auth import Principal
    from bedside.workspace import Workspace


def _visible_result(
    ws: Workspace, viewer: Principal, result_id: int, board_rows: list[dict[str, Any]]
) -> dict[str, Any]:
    try:
        return queries.get_result(ws, viewer, result_id)
    except NotFoundError:
        if not any(r.get("result_id") == result_id for r in board_rows):
            raise
    from sqlalchemy import select

    from bedside.store import schema

    with ws.store.read() as conn:
        row = (
            conn.execute(select(schema.results).where(schema.results.c.id == result_id))
            .mappings()
            .first()
        )
    if row is None:  # pragma: no cover - it was on the board a moment ago
        raise NotFoundError(f"no result {result_id} in this workspace.")
    from bedside.leaderboard.holdout_rules import released_result_views

    view = queries.result_view(dict(row), False, ws.policy().score_decimals)
    return released_result_views(ws, viewer, [view])[0]  # the Ladder / public split


def _label(res: dict[str, Any], board_rows: list[dict[str, Any]]) -> dict[str, Any]:
    row = next((r for r in board_rows if r.get("result_id") == res["id"]), None)
    model = row["model"] if row else res["model_label"]
    vendor = row["vendor"] if row else None
    return {
        "result_id": res["id"],
        "submission_id": res["submission_id"],
        "phase": res["phase"],
        "model": model,
        "vendor": vendor,
        "macro_f1": res["macro_f1"],
        "macro_f1_ci": res["metrics"].get("macro_f1_ci"),
    }


def _fmt(v: float) -> str:
    return f"{v:+.3f}".replace("-", "−")


def comparable(ws: Workspace, viewer: Principal) -> list[dict[str, Any]]:
    """The results this viewer may pick for a comparison: the leaderboard rows they see."""
    rows = leaderboard.build_leaderboard(ws, viewer)["rows"]
    return [
        {
            "result_id": r["result_id"],
            "label": f"{r['model']} · {r['vendor']}"
            + (f" · phase {r['phase']}" if r.get("phase") else ""),
            "kind": r["kind"],
        }
        for r in rows
    ]


def compare_view(ws: Workspace, viewer: Principal, a: int, b: int) -> dict[str, Any]:
    """Results ``a`` and ``b`` side by side (``b`` minus ``a`` in every difference)."""
    board = leaderboard.build_leaderboard(ws, viewer)
    rows = board["rows"] if board.get("scope") == "all" else []
    ra, rb = (_visible_result(ws, viewer, x, rows) for x in (a, b))
    la, lb = _label(ra, board["rows"]), _label(rb, board["rows"])
    pa = {pc["name"]: pc for pc in ra["metrics"].get("per_class") or []}
    pb = {pc["name"]: pc for pc in rb["metrics"].get("per_class") or []}
    classes = []
    for name in [*pa, *(n for n in pb if n not in pa)]:
        ca, cb = pa.get(name, {}), pb.get(name, {})
        diff = None
        if ca.get("recall") is not None and cb.get("recall") is not None:
            diff = round(float(cb["recall"]) - float(ca["recall"]), ws.policy().score_decimals)
        classes.append(
            {
                "name": name,
                "support": ca.get("support", cb.get("support")),
                "recall_a": ca.get("recall"),
                "recall_a_ci": ca.get("recall_ci"),
                "recall_b": cb.get("recall"),
                "recall_b_ci": cb.get("recall_ci"),
                "diff": diff,
                "small": name in set(board.get("small_classes") or []),
            }
        )
    return {"a": la, "b": lb, "classes": classes, "test": _test(ws, ra, rb, la, lb)}


def _test(
    ws: Workspace, ra: dict[str, Any], rb: dict[str, Any], la: dict[str, Any], lb: dict[str, Any]
) -> dict[str, Any]:
    decimals = ws.policy().score_decimals
    # the release rules (Ladder, public split) reduce a contributor's metrics to n: compare
    # nothing finer than what they release
    reduced = any(not r["metrics"].get("macro_f1_ci") for r in (ra, rb))
    if ra["macro_f1"] is None or rb["macro_f1"] is None or reduced:
        # withheld by the release rules: a paired test would give the figure away
        return {
            "method": "withheld",
            "delta": None,
            "ci": None,
            "significant": False,
            "words": "A macro-F1 here is withheld by the workspace's release rules, so the two "
            "are not compared.",
        }
    delta = float(rb["macro_f1"]) - float(ra["macro_f1"])
    out: dict[str, Any] = {"method": "ci_overlap", "delta": round(delta, decimals), "ci": None}
    try:
        from bedside.data.corpus import load_corpus
        from bedside.evaluation.results import compare_results, predictions_path

        if predictions_path(ws, ra["id"]).exists() and predictions_path(ws, rb["id"]).exists():
            cmp = compare_results(
                ws, load_corpus(ws), ra["id"], rb["id"], ws.policy().bootstrap_resamples
            )
            out = {
                "method": "paired_bootstrap",
                "delta": round(float(cmp["delta"]), decimals),
                "ci": [round(float(x), decimals) for x in cmp["ci"]],
                "p_value": round(float(cmp["p_value"]), 4),
            }
    except Exception:  # no or unreadable predictions, another corpus: intervals only
        pass
    ci = out["ci"]
    if ci is not None:
        out["significant"] = excludes_zero(ci)
        basis = "paired bootstrap on the same held-out abstracts"
    else:
        ca, cb = la.get("macro_f1_ci"), lb.get("macro_f1_ci")
        out["significant"] = bool(
            ca and cb and (float(cb[0]) > float(ca[1]) or float(cb[1]) < float(ca[0]))
        )
        basis = "95 % intervals compared; no stored predictions for a paired test"
    d = float(out["delta"])
    if not out["significant"]:
        span = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
        out["words"] = f"No significant difference in macro-F1 ({_fmt(d)}{span}; {basis})."
        return out
    # say it from the leader's side: the difference and its interval flip with it
    lead, trail, sign = (lb, la, 1.0) if d > 0 else (la, lb, -1.0)
    span = ""
    if ci:
        lo, hi = sorted((sign * float(ci[0]), sign * float(ci[1])))
        span = f" [{lo:.3f}, {hi:.3f}]"
    out["words"] = (
        f"{lead['model']} is ahead of {trail['model']} by {_fmt(sign * d)}{span} macro-F1 ({basis})."
    )
    return out
