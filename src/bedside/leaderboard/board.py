"""The leaderboard for one viewer, built from the store: rows, ranks, ties, small classes.

Example::

    board = build_leaderboard(ws, viewer=OWNER)
    for row in board["rows"]:
        print(row["rank_label"], row["model"], row["macro_f1"])
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from bedside.leaderboard.claims import row_claims
from bedside.leaderboard.freeze import apply_freeze, maybe_freeze
from bedside.leaderboard.holdout_rules import apply_holdout_rules
from bedside.leaderboard.publish import is_published
from bedside.leaderboard.ranking import rank_rows, tie_method
from bedside.leaderboard.release import ALL, may_see, round_released, scope_for
from bedside.leaderboard.rows import build_row
from bedside.leaderboard.shares import (
    active_corpus,
    class_shares,
    shares_from_metrics,
    small_classes,
)
from bedside.leaderboard.ties import TieJudge
from bedside.store import schema

if TYPE_CHECKING:
    from bedside.auth import Principal
    from bedside.workspace import Workspace


def visible_contributor(ws: Workspace, viewer: Principal | None) -> int | None | bool:
    """Which submissions ``viewer`` may see: True (all), or one contributor id.

    Raises AuthError for an anonymous viewer before publishing.
    """
    return scope_for(viewer, is_published(ws))


def latest_results(ws: Workspace, corpus_version_id: int) -> list[dict[str, Any]]:
    """The latest result of every (submission, phase) (and every baseline label) on a corpus."""
    r, s, c = schema.results, schema.submissions, schema.contributors
    q = (
        select(
            r,
            s.c.name.label("submission_name"),
            s.c.contributor_id,
            s.c.status.label("submission_status"),
            s.c.manifest.label("submission_manifest"),
            c.c.name.label("vendor"),
        )
        .select_from(
            r.outerjoin(s, r.c.submission_id == s.c.id).outerjoin(c, s.c.contributor_id == c.c.id)
        )
        .where(r.c.corpus_version_id == corpus_version_id)
        .order_by(r.c.id)
    )
    with ws.store.read() as conn:
        rows = [dict(x) for x in conn.execute(q).mappings()]
    latest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:  # ordered by id: later results of the same (submission, phase) win
        key = (
            row["submission_id"],
            row["phase"],
            row["model_label"] if row["submission_id"] is None else "",
        )
        latest[key] = row
    return list(latest.values())


def build_leaderboard(
    ws: Workspace,
    viewer: Principal | None,
    *,
    corpus_version_id: int | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Rows of the leaderboard that ``viewer`` may see, best first, with ties marked.

    Once the evaluation window has closed (at ``now``, default the real clock) the final ranking
    is recorded (``freeze.maybe_freeze``) and the board shows that ranking, ``frozen`` says when.
    """
    from bedside.auth import OWNER
    from bedside.submissions.window import utc_now

    frozen = None
    now = now or utc_now()
    if corpus_version_id is None:

        def owner_rows() -> tuple[int | None, list[dict[str, Any]]]:
            b = _build(ws, OWNER, None, now)
            return (b["corpus_version"] or {}).get("id"), b["rows"]

        frozen = maybe_freeze(ws, now, owner_rows)
    board = _build(ws, viewer, corpus_version_id, now)
    board["frozen"] = None
    if frozen is not None and (board["corpus_version"] or {}).get("id") == frozen.get(
        "corpus_version_id"
    ):
        board["rows"] = apply_freeze(board["rows"], frozen)
        board["frozen"] = {k: frozen[k] for k in ("frozen_at", "closes_at", "digest")}
    return board


def _build(
    ws: Workspace,
    viewer: Principal | None,
    corpus_version_id: int | None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    published = is_published(ws)
    scope = scope_for(viewer, published)
    policy = ws.policy()
    corpus = (
        active_corpus(ws) if corpus_version_id is None else {"id": corpus_version_id, "hash": None}
    )
    board: dict[str, Any] = {
        "published": published,
        "corpus_version": {"id": corpus["id"], "hash": corpus["hash"]} if corpus else None,
        "classes": [],
        "small_classes": [],
        "tie_method": None,
        "decimals": policy.score_decimals,
        "claim_gap_threshold": policy.claim_gap_threshold,
        "scope": "all" if scope is ALL else "own",
        "rows": [],
    }
    if corpus is None:
        return board
    cv_id = int(corpus["id"] or 0)
    results = latest_results(ws, cv_id)
    shares = class_shares(ws, cv_id)
    if not shares and results:
        shares = shares_from_metrics(results[0]["metrics"] or {})
    small = set(small_classes(shares))
    board["classes"] = list(shares)
    board["small_classes"] = [c for c in shares if c in small]

    by_sub: dict[int, dict[int, dict[str, Any]]] = {}
    rows: list[dict[str, Any]] = []
    for res in results:
        if res["submission_id"] is None:
            if res["phase"] == 0:
                row = build_row(res, None, None, small, policy.score_decimals)
                rows.append({**row, **row_claims(row, None, policy.claim_gap_threshold)})
            continue
        if not may_see(scope, res["contributor_id"]):
            continue
        by_sub.setdefault(res["submission_id"], {})[res["phase"]] = res
    for phases in by_sub.values():
        p1, p2 = phases.get(1), phases.get(2)
        head = p2 or p1
        if head is not None:
            row = build_row(head, p1, p2, small, policy.score_decimals)
            claims = row_claims(row, head.get("submission_manifest"), policy.claim_gap_threshold)
            rows.append({**row, **round_released(claims, policy.score_decimals)})

    # the public/private split and the Ladder (release rules against probing the holdout)
    rows, released_tie, board["holdout"] = apply_holdout_rules(
        ws,
        rows,
        results,
        owner=scope is ALL and viewer is not None and viewer.is_owner,
        closed=window_closed(policy, now),
        policy=policy,
        corpus_version_id=cv_id,
    )
    if released_tie is not None:
        board["rows"] = rank_rows(rows, released_tie)
        board["tie_method"] = "released_scores" if board["holdout"]["ladder"] else "ci_overlap"
        return board
    judge = TieJudge(ws, resamples=policy.bootstrap_resamples)
    if corpus_version_id is not None:  # paired tests on that version's holdout rows
        judge._corpus = _corpus_or_none(ws, cv_id)
    board["rows"] = rank_rows(rows, judge.tied)
    board["tie_method"] = tie_method(judge.methods_used)
    return board


def window_closed(policy: Any, now: dt.datetime | None) -> bool:
    """Whether the evaluation window has closed at ``now`` (the real clock when None)."""
    from bedside.submissions.window import utc_now, window_state

    return window_state(policy, now or utc_now()).state == "closed"


def _corpus_or_none(ws: Workspace, version_id: int) -> Any:
    from bedside.data.corpus import load_corpus
    from bedside.errors import NotFoundError

    try:
        return load_corpus(ws, version_id)
    except (NotFoundError, OSError):
        return None
