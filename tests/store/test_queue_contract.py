"""The one contract every ``Queue`` implementation passes: SQL on SQLite, SQL on a real
PostgreSQL server, and the Ray-backed queue (the same calls made through a Ray actor on a real
local cluster)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bedside.jobs.queue import Queue, SqlQueue
from bedside.store.store import Store
from tests.backends import RAY_ENV, require_env
from tests.store.seed import seed


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture(params=["sqlite", "postgres", "ray"])
def impl(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Queue, Store, Clock]]:
    """(queue, its store, the clock the queue reads)."""
    if request.param == "postgres":
        url = str(request.getfixturevalue("pg_url"))
    else:
        url = f"sqlite:///{tmp_path / 'q.db'}"
    store = Store(url)
    store.migrate()
    clock = Clock()
    if request.param == "ray":
        address = require_env(RAY_ENV, "a Ray cluster")
        from bedside.jobs.rayqueue import RayQueue

        q: Queue = RayQueue.connect(url, address=address, clock_at=clock)
        try:
            yield q, store, clock
        finally:
            q.close()  # type: ignore[attr-defined]
            store.dispose()
        return
    yield SqlQueue(store, clock=clock), store, clock
    store.dispose()


def test_phase2_waits_for_phase1_then_runs(impl: tuple[Queue, Store, Clock]) -> None:
    q, store, _clock = impl
    [(_sub, (p1, p2))] = seed(store)
    job = q.claim("w1", 30)
    assert job is not None and job.id == p1 and job.attempts == 1 and job.lease_owner == "w1"
    assert q.claim("w2", 30) is None
    assert q.state(p1) == "running"
    assert q.complete(p1, "w1")
    job2 = q.claim("w2", 30)
    assert job2 is not None and job2.id == p2 and job2.depends_on == p1
    assert q.complete(p2, "w2")
    assert [j["state"] for j in q.list()] == ["done", "done"]


def test_an_expired_lease_is_reclaimed_and_the_old_owner_locked_out(
    impl: tuple[Queue, Store, Clock],
) -> None:
    q, store, clock = impl
    [(_sub, (p1, _p2))] = seed(store)
    assert q.claim("w1", 30) is not None
    clock.t += 10
    assert q.heartbeat(p1, "w1", 30)
    clock.t += 25
    assert q.claim("w2", 30) is None  # still leased
    clock.t += 10
    job = q.claim("w2", 30)
    assert job is not None and job.id == p1 and job.attempts == 2
    assert not q.heartbeat(p1, "w1", 30)
    assert not q.complete(p1, "w1")
    assert q.fail(p1, "w1", "model_error", "late") == "running"


def test_retry_requeues_until_attempts_run_out(impl: tuple[Queue, Store, Clock]) -> None:
    q, store, _clock = impl
    [(_sub, (p1, p2))] = seed(store)
    for attempt in (1, 2):
        job = q.claim(f"w{attempt}", 30)
        assert job is not None and job.attempts == attempt
        assert q.fail(p1, f"w{attempt}", "platform_error", "node lost", retry=True) == "queued"
    assert q.claim("w3", 30) is not None
    assert q.fail(p1, "w3", "platform_error", "node lost", retry=True) == "failed"
    assert q.claim("w4", 30) is None  # phase 2 fails with its dependency
    assert q.state(p2) == "failed"


def test_cancel_stops_heartbeats_and_dependents(impl: tuple[Queue, Store, Clock]) -> None:
    q, store, _clock = impl
    [(_sub, (p1, p2))] = seed(store)
    assert q.claim("w1", 30) is not None
    assert q.cancel(p1) == "cancelled"
    assert not q.heartbeat(p1, "w1", 30)
    assert q.state(p2) == "cancelled"
    assert q.state(10_000) is None


def test_progress_keeps_the_latest_record(impl: tuple[Queue, Store, Clock]) -> None:
    q, store, _clock = impl
    [(_sub, (p1, _p2))] = seed(store)
    assert q.claim("w1", 30) is not None
    q.progress(p1, [{"step": 1, "ts": 1.0}, {"step": 2, "ts": 2.0}])
    [row] = [j for j in q.list(("running",)) if j["id"] == p1]
    assert row["progress"]["step"] == 2


def test_concurrent_claimers_never_share_a_job(impl: tuple[Queue, Store, Clock]) -> None:
    """6 threads drain 12 submissions (24 jobs): every job claimed and completed exactly once."""
    q, store, _clock = impl
    subs = seed(store, 12)
    claimed: list[tuple[str, int]] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            idle = 0
            while idle < 30:
                job = q.claim(name, 60)
                if job is None:
                    idle += 1
                    threading.Event().wait(0.02)
                    continue
                idle = 0
                with lock:
                    claimed.append((name, job.id))
                assert q.complete(job.id, name)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    ids = sorted(j for _w, j in claimed)
    assert ids == sorted(j for _s, js in subs for j in js)  # each exactly once
    assert {j["state"] for j in q.list()} == {"done"}
