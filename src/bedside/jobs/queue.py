"""The durable job queue in the store (minimal: enqueue). Claiming, leases and heartbeats are
added by the worker; see docs/architecture.md."""

from __future__ import annotations

from sqlalchemy import Connection

from bedside.store import schema
from bedside.store.store import utcnow


def enqueue_for_submission(conn: Connection, submission_id: int, corpus_version_id: int) -> list[int]:
    """Queue phase 1 then phase 2 (which depends on phase 1) for a submission, in the caller's
    transaction. Returns the new job ids."""
    ids: list[int] = []
    prev: int | None = None
    for kind in ("phase1", "phase2"):
        res = conn.execute(
            schema.jobs.insert().values(
                submission_id=submission_id, corpus_version_id=corpus_version_id, kind=kind,
                state="queued", depends_on=prev, attempts=0, max_attempts=3, spec={}, progress={},
                created_at=utcnow(),
            )
        )
        prev = int(res.inserted_primary_key[0])
        ids.append(prev)
    return ids
