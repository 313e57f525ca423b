"""Runs you can follow: queue position, an ETA from measured job times, whether a worker is
running, and the server-sent event stream of a submission's jobs.

Everything here reads the ``jobs`` table; nothing writes. The ETA is the mean wall time of the
last finished jobs of the same kind (``started_at`` to ``finished_at``), so it says nothing until
a job of that kind has finished once, and the page says so instead of guessing.

A worker leaves no row while it waits for work, so "no worker is running" is inferred: jobs are
queued, none is running under a live lease, and the oldest runnable one has waited longer than
``STALL_S``. The banner states exactly that.

Example::

    info = queue_info(ws)
    info.position(job_id), info.eta_s(job)   # 3, 540.0
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from bedside.store import schema

if TYPE_CHECKING:
    from bedside.workspace import Workspace

STALL_S = 30.0  # a runnable job older than this with nothing running: no worker picks jobs up
SAMPLE = 20  # finished jobs per kind that the mean duration is taken over


def parse_ts(value: Any) -> float | None:
    """A stored ISO timestamp as unix seconds (None when missing or unreadable)."""
    if not value:
        return None
    try:
        t = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.timestamp()


def mean_durations(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Mean wall seconds of the latest ``SAMPLE`` done jobs of each kind.

    >>> mean_durations([{"kind": "phase1", "state": "done", "id": 1,
    ...   "started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T00:01:00+00:00"}])
    {'phase1': 60.0}
    """
    seen: dict[str, list[float]] = {}
    for r in sorted(rows, key=lambda r: -int(r["id"])):
        if r["state"] != "done":
            continue
        a, b = parse_ts(r.get("started_at")), parse_ts(r.get("finished_at"))
        if a is None or b is None or b < a:
            continue
        got = seen.setdefault(str(r["kind"]), [])
        if len(got) < SAMPLE:
            got.append(b - a)
    return {k: sum(v) / len(v) for k, v in seen.items() if v}


@dataclass
class QueueInfo:
    """A snapshot of the queue: what is waiting, what runs, how long jobs take."""

    queued: list[dict[str, Any]]  # oldest first (the claim order)
    running: list[dict[str, Any]]
    durations: dict[str, float]
    now: float = field(default_factory=time.time)

    @property
    def live_workers(self) -> int:
        """Workers holding a live lease now (at least one while a job runs)."""
        return len(
            {
                r["lease_owner"]
                for r in self.running
                if r.get("lease_owner") and (r.get("lease_expires") or 0) > self.now
            }
        )

    def position(self, job_id: int) -> int | None:
        """1 for the next job a worker will claim; None when the job is not queued."""
        for i, r in enumerate(self.queued):
            if r["id"] == job_id:
                return i + 1
        return None

    def _remaining(self, row: Mapping[str, Any]) -> float | None:
        mean = self.durations.get(str(row["kind"]))
        if mean is None:
            return None
        started = parse_ts(row.get("started_at"))
        if row["state"] == "running" and started is not None:
            return max(0.0, mean - (self.now - started))
        return mean

    def eta_s(self, job: Mapping[str, Any]) -> float | None:
        """Seconds until ``job`` is done: the jobs ahead of it and its own measured time, shared
        among the workers that run now (one when none does). None without measurements."""
        if job["state"] == "running":
            own = job.get("progress") or {}
            if isinstance(own.get("eta_s"), int | float):
                return float(own["eta_s"])
            return self._remaining(job)
        if job["state"] != "queued":
            return None
        pos = self.position(int(job["id"]))
        if pos is None:
            return None
        ahead = [*self.running, *self.queued[: pos - 1]]
        parts = [self._remaining(r) for r in ahead]
        mine = self._remaining(job)
        if mine is None or any(p is None for p in parts):
            return None
        workers = max(1, self.live_workers)
        return sum(p for p in parts if p is not None) / workers + mine

    def stalled_s(self) -> float | None:
        """How long the oldest runnable job has waited with nothing running, else None."""
        if self.running or not self.queued:
            return None
        waiting = {r["id"] for r in self.queued}
        runnable = [r for r in self.queued if r.get("depends_on") not in waiting]
        created = [t for r in runnable if (t := parse_ts(r.get("created_at"))) is not None]
        if not created:
            return None
        waited = self.now - min(created)
        return waited if waited >= STALL_S else None


def queue_info(ws: Workspace, now: float | None = None) -> QueueInfo:
    """Read the queue once (queued and running jobs, recent durations per kind)."""
    j = schema.jobs
    cols = (
        j.c.id,
        j.c.kind,
        j.c.state,
        j.c.depends_on,
        j.c.lease_owner,
        j.c.lease_expires,
        j.c.progress,
        j.c.created_at,
        j.c.started_at,
        j.c.finished_at,
    )
    with ws.store.read() as conn:
        active = [
            dict(r)
            for r in conn.execute(
                select(*cols).where(j.c.state.in_(("queued", "running"))).order_by(j.c.id)
            ).mappings()
        ]
        done = [
            dict(r)
            for r in conn.execute(
                select(*cols).where(j.c.state == "done").order_by(j.c.id.desc()).limit(200)
            ).mappings()
        ]
    return QueueInfo(
        queued=[r for r in active if r["state"] == "queued"],
        running=[r for r in active if r["state"] == "running"],
        durations=mean_durations(done),
        now=time.time() if now is None else now,
    )


def follow(job: dict[str, Any], info: QueueInfo) -> dict[str, Any]:
    """``job`` (a ``queries.job_view``) with ``queue_position`` and ``eta_s`` added."""
    pos = info.position(int(job["id"])) if job["state"] == "queued" else None
    return {**job, "queue_position": pos, "eta_s": info.eta_s(job)}


def duration(seconds: Any) -> str:
    """A duration in words a reader takes in at once: 45 s, 12 min, 2 h 5 min, 3 d 4 h.

    >>> duration(59), duration(61), duration(7500), duration(None)
    ('59 s', '1 min', '2 h 5 min', '–')
    """
    if seconds is None:
        return "–"
    s = max(0, int(round(float(seconds))))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        h, m = divmod(s // 60, 60)
        return f"{h} h {m} min" if m else f"{h} h"
    d, h = divmod(s // 3600, 24)
    return f"{d} d {h} h" if h else f"{d} d"


def worker_notice(info: QueueInfo) -> str | None:
    """The owner's "no worker is running" line, or None while the queue moves."""
    waited = info.stalled_s()
    if waited is None:
        return None
    n = len(info.queued)
    return (
        f"No worker is running: {n} job{'s' if n != 1 else ''} queued and none picked up for "
        f"{duration(waited)}. Start one with `bedside worker`."
    )


def snapshot(ws: Workspace, viewer: Any, submission_id: int) -> dict[str, Any]:
    """What the submission page shows live: its status and jobs (with queue position, ETA)."""
    from bedside.web import queries

    sub = queries.get_submission(ws, viewer, submission_id, with_results=False)
    return {
        "id": sub["id"],
        "status": sub["status"],
        "terminal": all(j["terminal"] for j in sub["jobs"]),
        "jobs": sub["jobs"],
    }


async def event_stream(
    request: Any, ws: Workspace, viewer: Any, submission_id: int
) -> AsyncIterator[str]:
    """Server-sent events for a submission: ``jobs`` (a snapshot, sent when it changes), a
    comment every ``KEEPALIVE_S`` otherwise, ``end`` once every job has finished. A stream lasts
    at most ``app.state.sse_max_s`` (default 10 min); the browser's EventSource reconnects."""
    import asyncio
    import json

    from starlette.concurrency import run_in_threadpool

    from bedside.errors import BedsideError

    every = float(getattr(request.app.state, "sse_every_s", 1.0))
    max_s = float(getattr(request.app.state, "sse_max_s", 600.0))
    t0 = last_sent = time.monotonic()
    last = None
    yield "retry: 3000\n\n"
    while True:
        if await request.is_disconnected():
            return
        try:
            snap = await run_in_threadpool(snapshot, ws, viewer, submission_id)
        except BedsideError as e:
            yield f"event: gone\ndata: {json.dumps(e.to_dict())}\n\n"
            return
        text = json.dumps(snap, sort_keys=True, default=str)
        if text != last:
            yield f"event: jobs\ndata: {text}\n\n"
            last, last_sent = text, time.monotonic()
        elif time.monotonic() - last_sent > KEEPALIVE_S:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()
        if snap["terminal"]:
            yield "event: end\ndata: {}\n\n"
            return
        if time.monotonic() - t0 > max_s:
            return
        await asyncio.sleep(every)


KEEPALIVE_S = 15.0
