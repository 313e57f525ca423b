"""Release rules that keep the holdout from being learnt: public/private split and the Ladder.

Applied by the board to rows already built on the full holdout (:mod:`.rows`), for one viewer:

* ``holdout_public_fraction > 0`` (:mod:`.holdout_split`): while the window is open a
  contributor's rows (and the baselines, for comparison) show macro-F1 on the public rows;
  once it has closed every viewer's ranking, the owner's included, uses the private rows.
* ``ladder_step > 0`` (:mod:`.ladder`): while the window is open a contributor sees, for each of
  its results in order, the Ladder's released score instead of the exact one.

Whenever a contributor sees public or laddered scores, every other figure computed from the
holdout labels (CIs, per-class F1 and recall, accuracy, deltas, length gaps, claim gaps) is
withheld: each of them would leak what the two mechanisms hide. Ties are then judged on the
released figures only (equal released scores, or overlapping public intervals). The owner sees
the exact board during the window, with the public and private scores beside it.

Example::

    rows, tie, info = apply_holdout_rules(ws, rows, results, owner=False, closed=False,
                                          policy=policy, corpus_version_id=2)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from bedside.leaderboard.ladder import released_scores
from bedside.leaderboard.ranking import ci_overlap_tie
from bedside.leaderboard.release import round_released

if TYPE_CHECKING:
    from bedside.config import Policy
    from bedside.workspace import Workspace

Row = dict[str, Any]
Tie = Callable[[Mapping[str, Any], Mapping[str, Any]], bool]

# figures derived from the holdout labels that a probing contributor must not see exactly
WITHHELD = (
    "macro_f1_ci",
    "accuracy",
    "phase1_macro_f1_ci",
    "phase2_macro_f1",
    "delta",
    "delta_ci",
    "worst_gap",
    "claim_gap",
)
PER_CLASS_FIGURES = ("f1", "recall", "recall_ci", "precision")


def withhold_details(row: Mapping[str, Any], keep_ci: bool = False) -> Row:
    """The row with every holdout-derived figure but macro-F1 (and its CI if ``keep_ci``)
    set to None (pure).

    >>> withhold_details({"macro_f1": 0.7, "macro_f1_ci": [0.6, 0.8], "per_class": []})["macro_f1_ci"]
    """
    out = dict(row)
    for key in WITHHELD:
        if key in out and not (keep_ci and key == "macro_f1_ci"):
            out[key] = None
    out["per_class"] = [
        {**pc, **dict.fromkeys(PER_CLASS_FIGURES)} for pc in row.get("per_class") or []
    ]
    if "claim_flagged" in out:
        out["claim_flagged"] = False
        out["claim_reasons"] = []
    out["withheld"] = True
    return out


def holdout_mode(policy: Policy, owner: bool, closed: bool) -> str:
    """``full``, ``public`` or ``private``: which holdout rows this viewer's scores come from."""
    if policy.holdout_public_fraction <= 0:
        return "full"
    if closed:
        return "private"
    return "full" if owner else "public"


def ladder_rows(
    rows: Sequence[Row], results: Sequence[Mapping[str, Any]], step: float, decimals: int
) -> list[Row]:
    """Rows whose ``macro_f1`` and ``phase1_macro_f1`` are each contributor's Ladder figures.

    The Ladder runs per contributor over that contributor's results in result order (phase 1
    and phase 2 alike: each is a score the contributor gets to see); the score fed to it is the
    row's figure for that result (``_scores``: the full or public score). Pure."""
    scores: dict[int, float] = {}
    for row in rows:
        if row["kind"] != "submission":
            continue
        for key, rid in (("macro_f1", row.get("result_id")), ("phase1_macro_f1", row.get("_p1"))):
            if rid is not None and row.get(key) is not None:
                scores[int(rid)] = float(row[f"_exact_{key}"])
    seq: dict[Any, list[int]] = {}
    for res in sorted(results, key=lambda r: int(r["id"])):
        if res.get("submission_id") is not None and int(res["id"]) in scores:
            seq.setdefault(res.get("contributor_id"), []).append(int(res["id"]))
    released: dict[int, float] = {}
    for ids in seq.values():
        for rid, value in zip(ids, released_scores([scores[i] for i in ids], step), strict=True):
            released[rid] = value
    out = []
    for row in rows:
        row = dict(row)
        if row["kind"] == "submission":
            if row.get("result_id") in released:
                row["macro_f1"] = released[int(row["result_id"])]
            if row.get("_p1") in released:
                row["phase1_macro_f1"] = released[int(row["_p1"])]
            row["ladder"] = True
        out.append(round_released(row, decimals))
    return out


def apply_holdout_rules(
    ws: Workspace,
    rows: list[Row],
    results: Sequence[Mapping[str, Any]],
    *,
    owner: bool,
    closed: bool,
    policy: Policy,
    corpus_version_id: int,
) -> tuple[list[Row], Tie | None, dict[str, Any]]:
    """Rows as this viewer may see them, the tie rule to rank them with (None: the usual
    paired test) and a summary for the page (``board["holdout"]``)."""
    mode = holdout_mode(policy, owner, closed)
    use_ladder = policy.ladder_step > 0 and not owner and not closed
    info: dict[str, Any] = {
        "mode": mode,
        "public_fraction": policy.holdout_public_fraction,
        "ladder_step": policy.ladder_step,
        "ladder": use_ladder,
        "withheld": (mode == "public" or use_ladder),
    }
    if mode == "full" and not use_ladder and policy.holdout_public_fraction <= 0:
        return rows, None, info
    p1_of = {
        int(r["submission_id"]): int(r["id"])
        for r in results
        if r.get("submission_id") is not None and r["phase"] == 1
    }
    parts_of = _parts(ws, rows, p1_of, policy, corpus_version_id)
    out: list[Row] = []
    for row in rows:
        row = dict(row)
        row["_p1"] = p1_of.get(int(row["submission_id"])) if row.get("submission_id") else None
        head = parts_of.get(int(row["result_id"])) if row.get("result_id") else None
        p1 = parts_of.get(row["_p1"]) if row["_p1"] is not None else None
        if head is not None:
            row["public_macro_f1"] = head["public"]["macro_f1"]
            row["private_macro_f1"] = head["private"]["macro_f1"]
        if mode in ("public", "private"):
            if head is not None:
                row["macro_f1"] = head[mode]["macro_f1"]
                row["macro_f1_ci"] = head[mode]["macro_f1_ci"]
            if p1 is not None and row.get("phase1_macro_f1") is not None:
                row["phase1_macro_f1"] = p1[mode]["macro_f1"]
            if mode == "public":  # owners never get "public": only contributors see these
                row.pop("private_macro_f1", None)
                row.pop("public_macro_f1", None)
        row["_exact_macro_f1"] = row["macro_f1"]
        row["_exact_phase1_macro_f1"] = row.get("phase1_macro_f1")
        if not owner and (mode == "public" or use_ladder):
            row = withhold_details(row, keep_ci=mode == "public" and not use_ladder)
        out.append(row)
    if use_ladder:
        out = ladder_rows(out, results, policy.ladder_step, policy.score_decimals)
    for row in out:
        for key in ("_p1", "_exact_macro_f1", "_exact_phase1_macro_f1"):
            row.pop(key, None)
    out = [round_released(r, policy.score_decimals) for r in out]
    tie: Tie | None = None
    if use_ladder:
        tie = _equal_released
    elif mode in ("public", "private"):
        tie = ci_overlap_tie
    return out, tie, info


def _equal_released(above: Mapping[str, Any], below: Mapping[str, Any]) -> bool:
    return bool(above.get("macro_f1") == below.get("macro_f1"))


def _parts(
    ws: Workspace,
    rows: Sequence[Row],
    p1_of: Mapping[int, int],
    policy: Policy,
    corpus_version_id: int,
) -> dict[int, dict[str, Any]]:
    if policy.holdout_public_fraction <= 0:
        return {}
    from bedside.data.corpus import load_corpus
    from bedside.leaderboard.holdout_split import result_parts

    corpus = load_corpus(ws, corpus_version_id)
    wanted = {int(r["result_id"]) for r in rows if r.get("result_id") is not None}
    wanted |= {p1_of[int(r["submission_id"])] for r in rows if r.get("submission_id") in p1_of}
    out = {}
    for rid in sorted(wanted):
        parts = result_parts(
            ws, corpus, rid, policy.holdout_public_fraction, policy.bootstrap_resamples
        )
        if parts is not None:
            out[rid] = parts
    return out


def released_result_views(
    ws: Workspace, viewer: Any, views: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Result views (the API's ``/results``) as ``viewer`` may see them under the same rules.

    The owner, and everyone once the window has closed or when neither the Ladder nor the
    public split is on, gets ``views`` unchanged. Otherwise each submission result's macro-F1
    is the figure its board releases for it (Ladder or public score) and its metrics keep only
    ``n``: a contributor's own results page must not show what its board row withholds.
    """
    from bedside.leaderboard.board import build_leaderboard, window_closed

    policy = ws.policy()
    guarded = policy.ladder_step > 0 or policy.holdout_public_fraction > 0
    owner = viewer is not None and getattr(viewer, "is_owner", False)
    if owner or not guarded or window_closed(policy, None):
        return [dict(v) for v in views]
    released: dict[int, tuple[Any, Any]] = {}
    boards: dict[int, dict[str, Any]] = {}
    out = []
    for v in views:
        v = dict(v)
        if v.get("submission_id") is None:
            out.append(v)
            continue
        cv = _result_version(ws, int(v["id"]))
        if cv not in boards:
            boards[cv] = build_leaderboard(ws, viewer, corpus_version_id=cv)
            p1_ids = _phase1_ids(ws, cv)
            for row in boards[cv]["rows"]:
                if row["kind"] != "submission":
                    continue
                released[int(row["result_id"])] = (row["macro_f1"], row.get("macro_f1_ci"))
                p1 = p1_ids.get(int(row["submission_id"]))
                if p1 is not None and p1 != row["result_id"]:
                    released[p1] = (row.get("phase1_macro_f1"), None)
        score, ci = released.get(int(v["id"]), (None, None))
        metrics = v.get("metrics") or {}
        v["macro_f1"] = score
        v["metrics"] = {  # the shape of a result's metrics, every withheld figure None
            "n": metrics.get("n"),
            "macro_f1": score,
            "macro_f1_ci": ci,
            "accuracy": None,
            "per_class": [],
            "confusion": None,
            "robustness": None,
            "delta_vs_phase1": None,
            "withheld": True,
        }
        out.append(v)
    return out


def _result_version(ws: Workspace, result_id: int) -> int:
    from sqlalchemy import select

    from bedside.store import schema

    r = schema.results
    with ws.store.read() as conn:
        return int(
            conn.execute(select(r.c.corpus_version_id).where(r.c.id == result_id)).scalar_one()
        )


def _phase1_ids(ws: Workspace, corpus_version_id: int) -> dict[int, int]:
    from bedside.leaderboard.board import latest_results

    return {
        int(r["submission_id"]): int(r["id"])
        for r in latest_results(ws, corpus_version_id)
        if r["submission_id"] is not None and r["phase"] == 1
    }
