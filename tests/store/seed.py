"""Rows the queue needs (a corpus version, a contributor, submissions with their two jobs),
written straight into a store on any backend."""

from __future__ import annotations

from sqlalchemy import Connection

from bedside.jobs.queue import enqueue_for_submission
from bedside.store import schema
from bedside.store.store import Store, utcnow


def seed(store: Store, n_submissions: int = 1) -> list[tuple[int, list[int]]]:
    """``n_submissions`` accepted submissions, each with queued phase 1 and phase 2 jobs.
    Returns [(submission id, [phase1 id, phase2 id])]."""
    out: list[tuple[int, list[int]]] = []
    with store.write() as conn:
        cv = conn.execute(
            schema.corpus_versions.insert().values(
                hash="ab" * 32,
                created_at=utcnow(),
                path="corpora/v1",
                n_train=1,
                n_holdout=1,
                classes=[],
                split={},
                source={},
                report={},
                active=True,
            )
        ).inserted_primary_key[0]
        con = insert_contributor(
            conn, "vendor", max_submissions=10_000, budget_pflops=1e9, token_prefix="bsc_seed"
        )
        for i in range(n_submissions):
            sub = conn.execute(
                schema.submissions.insert().values(
                    contributor_id=con,
                    bundle_hash=f"bundle-{i}",
                    name=f"model-{i}",
                    kind="encoder",
                    status="accepted",
                    counted=True,
                    corpus_version_id=cv,
                    created_at=utcnow(),
                    manifest={},
                    estimate={},
                    meta={},
                )
            ).inserted_primary_key[0]
            out.append((int(sub), enqueue_for_submission(conn, int(sub), int(cv))))
    return out


def insert_contributor(
    conn: Connection,
    name: str,
    *,
    max_submissions: int = 5,
    budget_pflops: float = 10.0,
    token_prefix: str | None = None,
    created_at: str | None = None,
) -> int:
    """A contributor row (dummy token) as the tests need one; returns its id."""
    return int(
        conn.execute(
            schema.contributors.insert().values(
                name=name,
                token_salt="00",
                token_hash="00",
                token_prefix=token_prefix or f"bsc_{name}",
                max_submissions=max_submissions,
                budget_pflops=budget_pflops,
                used_pflops=0.0,
                revoked=False,
                created_at=created_at or utcnow(),
                meta={},
            )
        ).inserted_primary_key[0]
    )
