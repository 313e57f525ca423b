"""Freezing the leaderboard at the close of the evaluation window.

With ``Policy.freeze_at_close`` (the default) the first look at the board after ``closes_at``
records the final ranking: the owner's full board is snapshotted into the ``final_ranking``
setting and audited (``leaderboard.freeze``, with the snapshot and its digest). From then on the
board shows only the results of that ranking, so a job that finishes after the close cannot
change it. Extending the window (a later ``closes_at``) lifts the freeze; the next close freezes
again.

Example::

    maybe_freeze(ws, utc_now())      # records the ranking once the window has closed
    final_ranking(ws)["frozen_at"]   # None before that
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from bedside.store import audit, schema

if TYPE_CHECKING:
    from bedside.workspace import Workspace

FINAL_KEY = "final_ranking"


def snapshot_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """What a recorded ranking keeps of each row (pure)."""
    return [
        {
            "result_id": r["result_id"],
            "rank": r["rank_label"],
            "model": r["model"],
            "vendor": r["vendor"],
            "kind": r["kind"],
            "macro_f1": r["macro_f1"],
            "claimed_macro_f1": r.get("claimed_macro_f1"),
        }
        for r in rows
    ]


def final_ranking(ws: Workspace) -> dict[str, Any] | None:
    """The recorded final ranking that applies under the current policy, or None.

    A ranking recorded at an earlier ``closes_at`` no longer applies once the owner moved it.
    """
    rec = ws.store.get_setting(FINAL_KEY)
    if not isinstance(rec, Mapping):
        return None
    _, closes = ws.policy().window()
    if closes is None or rec.get("closes_at") != closes.isoformat():
        return None
    return dict(rec)


def maybe_freeze(
    ws: Workspace,
    now: dt.datetime,
    build_owner_rows: Callable[[], tuple[int | None, list[dict[str, Any]]]],
    actor: str = "system",
) -> dict[str, Any] | None:
    """Record the final ranking if the window has closed and none applies yet; returns it.

    ``build_owner_rows()`` gives ``(corpus_version_id, rows)`` of the owner's unfrozen board.
    """
    from bedside.submissions.window import window_state

    policy = ws.policy()
    w = window_state(policy, now)
    if not policy.freeze_at_close or w.state != "closed" or w.closes is None:
        return None
    existing = final_ranking(ws)
    if existing is not None:
        return existing
    cv_id, rows = build_owner_rows()
    snap = snapshot_rows(rows)
    digest = hashlib.sha256(json.dumps(snap, sort_keys=True).encode()).hexdigest()
    record = {
        "frozen_at": now.isoformat(),
        "closes_at": w.closes.isoformat(),
        "corpus_version_id": cv_id,
        "digest": digest,
        "rows": snap,
    }
    with ws.store.write() as conn:
        t = schema.settings
        current = conn.execute(select(t.c.value).where(t.c.key == FINAL_KEY)).scalar()
        if isinstance(current, Mapping) and current.get("closes_at") == record["closes_at"]:
            return dict(current)  # another request froze it first
        ws.store.set_setting(FINAL_KEY, record, conn)
        audit.append(conn, actor, "leaderboard.freeze", record)
    return record


def apply_freeze(rows: list[dict[str, Any]], record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Only the ranked rows of the recorded ranking, with their recorded rank labels (pure).

    Baseline rows are references, never ranked: one registered after the close still shows.
    """
    ranks = {int(r["result_id"]): r["rank"] for r in record.get("rows") or []}
    out = []
    for row in rows:
        if row["kind"] == "baseline":
            out.append(row)
        elif int(row["result_id"]) in ranks:
            out.append({**row, "rank_label": ranks[int(row["result_id"])]})
    return out
