"""The durable job queue: leases and heartbeats in the store.

``Queue`` is the interface the worker uses (so that a later dispatcher, e.g. Ray, can stand in
without touching the engine); ``SqlQueue`` keeps everything in the ``jobs`` table.

A job moves ``queued -> running -> done | failed | cancelled`` (``JobState``); this module owns
every one of those transitions (enqueue, claim, heartbeat, progress, complete, fail, cancel, rerun)
and the submission status that follows from them (``sync_submission``): nothing else writes job
rows. ``claim`` picks, in one
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

import builtins
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, and_, or_, select

from bedside.errors import NotFoundError
from bedside.store import schema
from bedside.store.store import Store, utcnow


class JobState(StrEnum):
    """The one set of job states (stored as these strings in ``jobs.state``)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class SubmissionStatus(StrEnum):
    """``submissions.status``: follows its jobs (see ``sync_submission``)."""

    ACCEPTED = "accepted"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = (JobState.DONE, JobState.FAILED, JobState.CANCELLED)
ACTIVE = (JobState.QUEUED, JobState.RUNNING)
RUNNABLE_KINDS = ("phase1", "phase2", "screen")
PLATFORM_ERROR = "platform_error"


def enqueue_for_submission(
    conn: Connection,
    submission_id: int,
    corpus_version_id: int,
    kinds: Sequence[str] = ("phase1", "phase2"),
    spec: dict[str, Any] | None = None,
) -> list[int]:
    """Queue phase 1 then phase 2 (which depends on phase 1) for a submission, in the caller's
    transaction. Returns the new job ids. A re-evaluation queues them on another corpus version
    (``bedside.reevaluate``); those jobs leave the submission's status and count alone."""
    ids: list[int] = []
    prev: int | None = None
    for kind in kinds:
        res = conn.execute(
            schema.jobs.insert().values(
                submission_id=submission_id,
                corpus_version_id=corpus_version_id,
                kind=kind,
                state=JobState.QUEUED,
                depends_on=prev,
                attempts=0,
                max_attempts=3,
                spec=dict(spec or {}),
                progress={},
                created_at=utcnow(),
            )
        )
        pk = res.inserted_primary_key
        assert pk is not None
        prev = int(pk[0])
        ids.append(prev)
    return ids


def enqueue_job(
    conn: Connection,
    kind: str,
    corpus_version_id: int,
    spec: dict[str, Any] | None = None,
    max_attempts: int = 3,
) -> int:
    """Queue one job that belongs to no submission (a ``screen`` job), in the caller's
    transaction. Returns its id."""
    res = conn.execute(
        schema.jobs.insert().values(
            submission_id=None,
            corpus_version_id=corpus_version_id,
            kind=kind,
            state=JobState.QUEUED,
            depends_on=None,
            attempts=0,
            max_attempts=max_attempts,
            spec=dict(spec or {}),
            progress={},
            created_at=utcnow(),
        )
    )
    pk = res.inserted_primary_key
    assert pk is not None
    return int(pk[0])


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
    def progress(self, job_id: int, records: Sequence[dict[str, Any]]) -> None:
        """Record cleaned progress records: the latest on the job, all of them as events."""

    @abstractmethod
    def complete(self, job_id: int, owner: str, conn: Connection | None = None) -> bool:
        """Mark done (only by the lease holder) and sync the submission. False if the lease
        was lost meanwhile."""

    @abstractmethod
    def fail(
        self, job_id: int, owner: str, error_class: str, message: str, retry: bool = False
    ) -> str:
        """Record a failure; with ``retry`` requeue while attempts remain. Returns the new state."""

    @abstractmethod
    def cancel(self, job_id: int) -> str:
        """Cancel a job (a running one is killed by its worker at the next heartbeat)."""

    @abstractmethod
    def state(self, job_id: int) -> str | None:
        """A job's state, or None when there is no such job."""

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
        # serial=False: on PostgreSQL claims do not queue behind the store's write lock; each
        # candidate row is locked with FOR UPDATE SKIP LOCKED instead (on SQLite BEGIN IMMEDIATE
        # already serializes, and SQLAlchemy renders no FOR UPDATE there).
        with self.store.write(serial=False) as conn:
            now = self.clock()
            cands = conn.execute(
                select(t)
                .where(
                    t.c.kind.in_(RUNNABLE_KINDS),
                    or_(
                        t.c.state == JobState.QUEUED,
                        and_(t.c.state == JobState.RUNNING, t.c.lease_expires < now),
                    ),
                )
                .where(t.c.id == only if only is not None else t.c.id.is_not(None))
                .order_by(t.c.id)
            ).mappings()
            for row in list(cands):
                if not _lock_candidate(conn, row):
                    continue  # another worker is claiming it right now
                if row["depends_on"] is not None:
                    dep = conn.execute(
                        select(t.c.state, t.c.error_class).where(t.c.id == row["depends_on"])
                    ).first()
                    if dep is None or dep.state in ACTIVE:
                        continue  # wait for it
                    if dep.state != JobState.DONE:
                        ec = dep.error_class if dep.state == JobState.FAILED else "cancelled"
                        self._finish(
                            conn,
                            row["id"],
                            JobState.FAILED,
                            ec or PLATFORM_ERROR,
                            f"job {row['depends_on']} it depends on ended {dep.state} ({ec}).",
                        )
                        continue
                if row["attempts"] >= row["max_attempts"]:
                    # Its worker died on every attempt (lease expired each time).
                    self._finish(
                        conn,
                        row["id"],
                        JobState.FAILED,
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
                        state=JobState.RUNNING,
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
                        .where(
                            s.c.id == row["submission_id"],
                            s.c.status == SubmissionStatus.ACCEPTED,
                            # a re-evaluation on another version leaves the status alone
                            s.c.corpus_version_id == row["corpus_version_id"],
                        )
                        .values(status=SubmissionStatus.RUNNING)
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
        with self.store.write(serial=False) as conn:  # one guarded UPDATE: a row lock suffices
            now = self.clock()
            res = conn.execute(
                t.update()
                .where(t.c.id == job_id, t.c.lease_owner == owner, t.c.state == JobState.RUNNING)
                .values(lease_expires=now + lease_s, heartbeat_at=now)
            )
            return res.rowcount == 1

    def progress(self, job_id: int, records: Sequence[dict[str, Any]]) -> None:
        if not records:
            return
        t, ev = schema.jobs, schema.job_events
        with self.store.write() as conn:
            for r in records:
                ts = r.get("ts")
                conn.execute(
                    ev.insert().values(
                        job_id=job_id,
                        ts=float(ts) if isinstance(ts, int | float) else self.clock(),
                        data=dict(r),
                    )
                )
            conn.execute(t.update().where(t.c.id == job_id).values(progress=dict(records[-1])))

    def complete(self, job_id: int, owner: str, conn: Connection | None = None) -> bool:
        if conn is None:
            with self.store.write() as c:
                return self.complete(job_id, owner, c)
        t = schema.jobs
        res = conn.execute(
            t.update()
            .where(t.c.id == job_id, t.c.lease_owner == owner, t.c.state == JobState.RUNNING)
            .values(
                state=JobState.DONE,
                lease_owner=None,
                lease_expires=None,
                finished_at=utcnow(),
                error_class=None,
                error_message=None,
            )
        )
        if res.rowcount != 1:
            return False
        sync_submission(conn, job_id)
        return True

    def fail(
        self, job_id: int, owner: str, error_class: str, message: str, retry: bool = False
    ) -> str:
        t = schema.jobs
        with self.store.write() as conn:
            row = conn.execute(select(t).where(t.c.id == job_id)).mappings().first()
            if row is None:
                raise NotFoundError(f"no job {job_id}.")
            if row["state"] != JobState.RUNNING or row["lease_owner"] != owner:
                return str(row["state"])  # cancelled meanwhile, or someone else holds it
            if retry and row["attempts"] < row["max_attempts"]:
                conn.execute(
                    t.update()
                    .where(t.c.id == job_id)
                    .values(
                        state=JobState.QUEUED,
                        lease_owner=None,
                        lease_expires=None,
                        error_class=error_class,
                        error_message=message,
                    )
                )
                return JobState.QUEUED
            self._finish(conn, job_id, JobState.FAILED, error_class, message)
            return JobState.FAILED

    def cancel(self, job_id: int) -> str:
        t = schema.jobs
        with self.store.write() as conn:
            row = conn.execute(select(t.c.state).where(t.c.id == job_id)).first()
            if row is None:
                raise NotFoundError(f"no job {job_id}.", hint="List jobs with `bedside jobs list`.")
            if row.state in TERMINAL:
                return str(row.state)
            self._finish(conn, job_id, JobState.CANCELLED, "cancelled", "cancelled by the owner")
            # what waits on it will never run: cancel that too
            deps = conn.execute(
                select(t.c.id).where(t.c.depends_on == job_id, t.c.state == JobState.QUEUED)
            ).scalars()
            for dep in list(deps):
                self._finish(
                    conn,
                    dep,
                    JobState.CANCELLED,
                    "cancelled",
                    f"job {job_id} it depends on was cancelled",
                )
            return JobState.CANCELLED

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

    def jobs_of(self, submission_id: int) -> builtins.list[dict[str, Any]]:
        """A submission's jobs, oldest first."""
        t = schema.jobs
        q = select(t).where(t.c.submission_id == submission_id).order_by(t.c.id)
        with self.store.read() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    @staticmethod
    def _finish(
        conn: Connection, job_id: int, state: JobState, error_class: str, message: str
    ) -> None:
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


def _lock_candidate(conn: Connection, row: Any) -> bool:
    """Row-lock a claim candidate that is still as it was read (PostgreSQL: ``SELECT ... FOR
    UPDATE SKIP LOCKED``, so concurrent claimers pass over it instead of waiting)."""
    t = schema.jobs
    got = conn.execute(
        select(t.c.id)
        .where(t.c.id == row["id"], t.c.state == row["state"], t.c.attempts == row["attempts"])
        .with_for_update(skip_locked=True)
    ).first()
    return got is not None


def rerun_submission_jobs(
    conn: Connection, submission_id: int, corpus_version_id: int
) -> tuple[list[int], list[int]]:
    """Queue a submission's jobs again in the caller's transaction: its unfinished jobs on that
    corpus version are cancelled, new phase jobs are queued and the submission is accepted
    again. Returns (new job ids, cancelled job ids)."""
    t, s = schema.jobs, schema.submissions
    cancelled = [
        int(x)
        for x in conn.execute(
            select(t.c.id).where(
                t.c.submission_id == submission_id,
                t.c.corpus_version_id == corpus_version_id,
                t.c.state.in_(ACTIVE),
            )
        ).scalars()
    ]
    for job_id in cancelled:
        conn.execute(
            t.update()
            .where(t.c.id == job_id)
            .values(
                state=JobState.CANCELLED,
                error_class="cancelled",
                error_message="replaced by a rerun",
                finished_at=utcnow(),
                lease_owner=None,
                lease_expires=None,
            )
        )
    new = enqueue_for_submission(conn, submission_id, corpus_version_id)
    conn.execute(s.update().where(s.c.id == submission_id).values(status=SubmissionStatus.ACCEPTED))
    return new, cancelled


def sync_submission(conn: Connection, job_id: int) -> None:
    """Bring ``submissions.status`` (and ``counted``) in line with its jobs, in ``conn``'s
    transaction: done when every job is done; failed/cancelled when one failed/was cancelled
    and none is still to run; a platform failure gives the submission back (not counted).
    Only the jobs on the submission's own corpus version count: a re-evaluation on a later
    version (``bedside.reevaluate``) changes neither its status nor its count."""
    t, s = schema.jobs, schema.submissions
    job = conn.execute(
        select(t.c.submission_id, t.c.corpus_version_id).where(t.c.id == job_id)
    ).first()
    if job is None or job.submission_id is None:
        return
    sub_id = job.submission_id
    own = conn.execute(select(s.c.corpus_version_id).where(s.c.id == sub_id)).scalar()
    if own is not None and job.corpus_version_id != own:
        return
    jobs = conn.execute(
        select(t.c.state, t.c.error_class).where(
            t.c.submission_id == sub_id, t.c.corpus_version_id == job.corpus_version_id
        )
    ).all()
    states = [j.state for j in jobs]
    values: dict[str, Any] = {}
    if any(j.state == JobState.FAILED and j.error_class == PLATFORM_ERROR for j in jobs):
        values["counted"] = False
    if all(x == JobState.DONE for x in states):
        values["status"] = SubmissionStatus.DONE
    elif all(x in TERMINAL for x in states):
        cancelled = JobState.CANCELLED in states and JobState.FAILED not in states
        values["status"] = SubmissionStatus.CANCELLED if cancelled else SubmissionStatus.FAILED
    elif any(x in (JobState.RUNNING, JobState.DONE) for x in states):
        values["status"] = SubmissionStatus.RUNNING
    if values:
        conn.execute(s.update().where(s.c.id == sub_id).values(**values))
