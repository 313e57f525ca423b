"""Publishing the leaderboard (or withdrawing it), audited with a digest of what was shown."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from bedside.store import audit, schema

if TYPE_CHECKING:
    from bedside.workspace import Workspace

PUBLISHED_KEY = "published"


def is_published(ws: Workspace) -> bool:
    return bool(ws.store.get_setting(PUBLISHED_KEY, False))


def set_published(ws: Workspace, published: bool, actor: str = "owner") -> dict[str, Any]:
    """Publish (or withdraw) the leaderboard; the audit entry holds a digest of what was shown.

    Returns ``{"published": bool, "changed": bool, "rows": n}``.
    """
    from bedside.auth import OWNER
    from bedside.leaderboard.board import build_leaderboard

    board = build_leaderboard(ws, OWNER)
    snapshot = [
        {
            "rank": r["rank_label"],
            "model": r["model"],
            "vendor": r["vendor"],
            "macro_f1": r["macro_f1"],
        }
        for r in board["rows"]
    ]
    digest = hashlib.sha256(json.dumps(snapshot, sort_keys=True).encode()).hexdigest()
    with ws.store.write() as conn:
        t = schema.settings
        row = conn.execute(select(t.c.value).where(t.c.key == PUBLISHED_KEY)).first()
        was = bool(row[0]) if row else False
        ws.store.set_setting(PUBLISHED_KEY, published, conn)
        action = "leaderboard.publish" if published else "leaderboard.unpublish"
        payload: dict[str, Any] = {"was_published": was, "rows": len(snapshot), "digest": digest}
        if published:
            payload["snapshot"] = snapshot
        audit.append(conn, actor, action, payload)
    return {"published": published, "changed": was != published, "rows": len(snapshot)}
