"""The durable job queue: leases and heartbeats in the store.

``Queue`` is the interface the worker uses (so that a later dispatcher, e.g. Ray, can stand in
without touching the engine); ``SqlQueue`` keeps everything in the ``jobs`` table.

A job moves ``queued -> running -> done | failed | cancelled``. ``claim`` picks, in one
``BEGIN IMMEDIATE`` transaction, the oldest job that is queued (or running with an expired
lease: its worker died) and whose dependency is done; it sets the lease and counts the attempt.
A job whose dependency failed or was cancelled fails with the dependency's error class (so a
platform failure stays a platform failure). A job that has used ``max_attempts`` fails instead of
being claimed again. Two workers never hold the same job: the claim is one write transaction and
every later write checks the lease owner.

Example::

    q = SqlQueue(ws.store)
    job = q.claim("host-1:4242", lease_s=60)
    ...
    q.heartbeat(job.id, "host-1:4242", lease_s=60)   # False: cancelled or lease lost -> stop
    q.complete(job.id, "host-1:4242")
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, or_, select

from bedside.errors import NotFoundError
from bedside.store import schema
from bedside.store.store import Store, utcnow

TERMINAL = ("done", "failed", "cancelled")
RUNNABLE_KINDS = ("phase1", "phase2")
PLATFORM_ERROR = "platform_error"


def enqueue_for_submission(
    conn: Connection, submission_id: int, corpus_version_id: int
) -> list[int]:
    """Queue phase 1 then phase 2 (which depends on phase 1) for a submission, in the caller's
    transaction. Returns the new job ids."""
    ids: list[int] = []
    prev: int | None = None
    for kind in ("phase1", "phase2"):
        res = conn.execute(
            schema.jobs.insert().values(
                submission_id=submission_id,
                corpus_version_id=corpus_version_id,
                kind=kind,
                state="queued",
                depends_on=prev,
                attempts=0,
                max_attempts=3,
                spec={},
                progress={},
                created_at=utcnow(),
            )
        )
        pk = res.inserted_primary_key
        assert pk is not None
        prev = int(pk[0])
        ids.append(prev)
    return ids


@dataclass
class ClaimedJob:
    """A job a worker holds a lease on."""

    id: int
    submission_id: int | None
    corpus_version_id: int
    kind: str
    attempts: int
    max_attempts: int
    depends_on: int | None
    spec: dict[str, Any]
    lease_owner: str
    lease_expires: float

    def row(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Queue(ABC):
    """What the worker needs from a queue."""

    @abstractmethod
    def claim(self, owner: str, lease_s: float) -> ClaimedJob | None:
        """Lease the next runnable job, or None."""

    @abstractmethod
    def heartbeat(self, job_id: int, owner: str, lease_s: float) -> bool:
        """Extend the lease. False: the job was cancelled or the lease is lost; stop it."""

    @abstractmethod
    def complete(self, job_id: int, owner: str, conn: Connection | None = None) -> bool:
        """Mark done (only by the lease holder). False if the lease was lost meanwhile."""

    @abstractmethod
    def fail(
        self, job_id: int, owner: str, error_class: str, message: str, retry: bool = False
    ) -> str:
        """Record a failure; with ``retry`` requeue while attempts remain. Returns the new state."""

    @abstractmethod
    def cancel(self, job_id: int) -> str:
        """Cancel a job (a running one is killed by its worker at the next heartbeat)."""

    @abstractmethod
    def list(self, states: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        """Jobs, oldest first (owner view: includes the error message)."""


class SqlQueue(Queue):
    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def claim(self, owner: str, lease_s: float) -> ClaimedJob | None:
        return self._claim(owner, lease_s, None)

    def claim_job(self, job_id: int, owner: str, lease_s: float) -> ClaimedJob | None:
        """Lease one given job if it is runnable now (``bedside run``), else None."""
        return self._claim(owner, lease_s, job_id)

    def _claim(self, owner: str, lease_s: float, only: int | None) -> ClaimedJob | None:
        t = schema.jobs
        with self.store.write() as conn:
            now = self.clock()
            cands = conn.execute(
                select(t)
                .where(
                    t.c.kind.in_(RUNNABLE_KINDS),
                    or_(
                        t.c.state == "queued",
                        and_(t.c.state == "running", t.c.lease_expires < now),
                    ),
                )
                .where(t.c.id == only if only is not None else t.c.id.is_not(None))
                .order_by(t.c.id)
            ).mappings()
            for row in list(cands):
                if row["depends_on"] is not None:
                    dep = conn.execute(
                        select(t.c.state, t.c.error_class).where(t.c.id == row["depends_on"])
                    ).first()
                    if dep is None or dep.state in ("queued", "running"):
                        continue  # wait for it
                    if dep.state != "done":
                        ec = dep.error_class if dep.state == "failed" else "cancelled"
                        self._finish(
                            conn,
                            row["id"],
                            "failed",
                            ec or PLATFORM_ERROR,
                            f"job {row['depends_on']} it depends on ended {dep.state} ({ec}).",
                        )
                        continue
                if row["attempts"] >= row["max_attempts"]:
                    # Its worker died on every attempt (lease expired each time).
                    self._finish(
                        conn,
                        row["id"],
                        "failed",
                        PLATFORM_ERROR,
                        f"gave up after {row['attempts']} attempts (the worker was lost each time).",
                    )
                    continue
                expires = now + lease_s
                res = conn.execute(
                    t.update()
                    .where(
                        t.c.id == row["id"],
                        t.c.state == row["state"],
                        t.c.attempts == row["attempts"],
                    )
                    .values(
                        state="running",
                        attempts=row["attempts"] + 1,
                        lease_owner=owner,
                        lease_expires=expires,
                        heartbeat_at=now,
                        started_at=row["started_at"] or utcnow(),
                        finished_at=None,
                    )
                )
                if res.rowcount != 1:
                    continue
                if row["submission_id"] is not None:
                    s = schema.submissions
                    conn.execute(
                        s.update()
                        .where(s.c.id == row["submission_id"], s.c.status == "accepted")
                        .values(status="running")
                    )
                return ClaimedJob(
                    id=row["id"],
                    submission_id=row["submission_id"],
                    corpus_version_id=row["corpus_version_id"],
                    kind=row["kind"],
                    attempts=row["attempts"] + 1,
                    max_attempts=row["max_attempts"],
                    depends_on=row["depends_on"],
                    spec=dict(row["spec"] or {}),
                    lease_owner=owner,
                    lease_expires=expires,
                )
        return None

    def heartbeat(self, job_id: int, owner: str, lease_s: float) -> bool:
        t = schema.jobs
        with self.store.write() as conn:
            now = self.clock()
            res = conn.execute(
                t.update()
                .where(t.c.id == job_id, t.c.lease_owner == owner, t.c.state == "running")
                .values(lease_expires=now + lease_s, heartbeat_at=now)
            )
            return res.rowcount == 1

    def complete(self, job_id: int, owner: str, conn: Connection | None = None) -> bool:
        if conn is None:
            with self.store.write() as c:
                return self.complete(job_id, owner, c)
        t = schema.jobs
        res = conn.execute(
            t.update()
            .where(t.c.id == job_id, t.c.lease_owner == owner, t.c.state == "running")
            .values(
                state="done",
                lease_owner=None,
                lease_expires=None,
                finished_at=utcnow(),
                error_class=None,
                error_message=None,
            )
        )
        return res.rowcount == 1

    def fail(
        self, job_id: int, owner: str, error_class: str, message: str, retry: bool = False
    ) -> str:
        t = schema.jobs
        with self.store.write() as conn:
            row = conn.execute(select(t).where(t.c.id == job_id)).mappings().first()
            if row is None:
                raise NotFoundError(f"no job {job_id}.")
            if row["state"] != "running" or row["lease_owner"] != owner:
                return str(row["state"])  # cancelled meanwhile, or someone else holds it
            if retry and row["attempts"] < row["max_attempts"]:
                conn.execute(
                    t.update()
                    .where(t.c.id == job_id)
                    .values(
                        state="queued",
                        lease_owner=None,
                        lease_expires=None,
                        error_class=error_class,
                        error_message=message,
                    )
                )
                return "queued"
            self._finish(conn, job_id, "failed", error_class, message)
            return "failed"

    def cancel(self, job_id: int) -> str:
        t = schema.jobs
        with self.store.write() as conn:
            row = conn.execute(select(t.c.state).where(t.c.id == job_id)).first()
            if row is None:
                raise NotFoundError(f"no job {job_id}.", hint="List jobs with `bedside jobs list`.")
            if row.state in TERMINAL:
                return str(row.state)
            self._finish(conn, job_id, "cancelled", "cancelled", "cancelled by the owner")
            # what waits on it will never run: cancel that too
            deps = conn.execute(
                select(t.c.id).where(t.c.depends_on == job_id, t.c.state == "queued")
            ).scalars()
            for dep in list(deps):
                self._finish(
                    conn, dep, "cancelled", "cancelled", f"job {job_id} it depends on was cancelled"
                )
            return "cancelled"

    def state(self, job_id: int) -> str | None:
        t = schema.jobs
        with self.store.read() as conn:
            v = conn.execute(select(t.c.state).where(t.c.id == job_id)).scalar()
        return None if v is None else str(v)

    def list(self, states: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        t = schema.jobs
        q = select(t).order_by(t.c.id)
        if states:
            q = q.where(t.c.state.in_(states))
        with self.store.read() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    @staticmethod
    def _finish(conn: Connection, job_id: int, state: str, error_class: str, message: str) -> None:
        t = schema.jobs
        conn.execute(
            t.update()
            .where(t.c.id == job_id)
            .values(
                state=state,
                lease_owner=None,
                lease_expires=None,
                finished_at=utcnow(),
                error_class=error_class,
                error_message=message[-LOG_LIMIT:],
            )
        )
        sync_submission(conn, job_id)


LOG_LIMIT = 64 * 1024


def sync_submission(conn: Connection, job_id: int) -> None:
    """Bring ``submissions.status`` (and ``counted``) in line with its jobs, in ``conn``'s
    transaction: done when every job is done; failed/cancelled when one failed/was cancelled
    and none is still to run; a platform failure gives the submission back (not counted)."""
    t, s = schema.jobs, schema.submissions
    sub_id = conn.execute(select(t.c.submission_id).where(t.c.id == job_id)).scalar()
    if sub_id is None:
        return
    jobs = conn.execute(select(t.c.state, t.c.error_class).where(t.c.submission_id == sub_id)).all()
    states = [j.state for j in jobs]
    values: dict[str, Any] = {}
    if any(j.state == "failed" and j.error_class == PLATFORM_ERROR for j in jobs):
        values["counted"] = False
    if all(x == "done" for x in states):
        values["status"] = "done"
    elif all(x in TERMINAL for x in states):
        values["status"] = (
            "cancelled" if "cancelled" in states and "failed" not in states else "failed"
        )
    elif any(x in ("running",) for x in states) or any(x == "done" for x in states):
        values["status"] = "running"
    if values:
        conn.execute(s.update().where(s.c.id == sub_id).values(**values))
