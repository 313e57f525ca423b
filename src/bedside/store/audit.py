"""Append-only audit log, each entry chained to the previous one by hash.

``append`` runs inside the caller's write transaction, so the audited change and its record
commit together. ``verify`` recomputes the chain and names the first broken entry.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import Connection, select

from bedside.store import schema
from bedside.store.store import Store, utcnow

GENESIS = "0" * 64


def _digest(prev_hash: str, ts: str, actor: str, action: str, payload: dict[str, Any]) -> str:
    body = json.dumps(
        [prev_hash, ts, actor, action, payload], sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(body.encode()).hexdigest()


def append(conn: Connection, actor: str, action: str, payload: dict[str, Any] | None = None) -> str:
    """Record ``action`` by ``actor``; returns the entry's hash. Call inside ``store.write()``."""
    t = schema.audit_log
    payload = json.loads(json.dumps(payload or {}, default=str))
    last = conn.execute(select(t.c.hash).order_by(t.c.id.desc()).limit(1)).scalar()
    prev = last or GENESIS
    ts = utcnow()
    h = _digest(prev, ts, actor, action, payload)
    conn.execute(
        t.insert().values(
            ts=ts, actor=actor, action=action, payload=payload, prev_hash=prev, hash=h
        )
    )
    return h


def entries(store: Store, limit: int | None = None) -> list[dict[str, Any]]:
    t = schema.audit_log
    q = select(t).order_by(t.c.id)
    with store.read() as conn:
        rows = [dict(r) for r in conn.execute(q).mappings()]
    return rows[-limit:] if limit else rows


def verify(store: Store) -> tuple[bool, str]:
    """Check the whole chain. Returns (ok, message naming the first bad entry)."""
    prev = GENESIS
    expected_id = None
    for e in entries(store):
        if expected_id is not None and e["id"] != expected_id:
            return False, f"entry {expected_id} is missing (next entry is {e['id']})."
        if e["prev_hash"] != prev:
            return (
                False,
                f"entry {e['id']} does not follow the previous entry (chain broken: deleted or edited).",
            )
        if _digest(e["prev_hash"], e["ts"], e["actor"], e["action"], e["payload"]) != e["hash"]:
            return False, f"entry {e['id']} ({e['action']}) was edited after it was written."
        prev = e["hash"]
        expected_id = e["id"] + 1
    return True, "audit log intact" if expected_id else "audit log empty"
