"""The durable queue: leases, dependencies, attempts, cancellation, concurrency."""

from __future__ import annotations

import threading
from pathlib import Path

from bedside.jobs.queue import SqlQueue
from tests.jobs.support import job_row, make_workspace, submission_row


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _queue(tmp_path: Path) -> tuple[SqlQueue, Clock, object, int, list[int]]:
    ws, sub, jobs = make_workspace(tmp_path / "ws")
    clock = Clock()
    return SqlQueue(ws.store, clock=clock), clock, ws, sub, jobs


def test_phase2_waits_for_phase1(tmp_path: Path) -> None:
    q, _clock, ws, sub, (p1, p2) = _queue(tmp_path)
    job = q.claim("w1", 30)
    assert job is not None and job.id == p1 and job.attempts == 1
    assert q.claim("w2", 30) is None  # phase 2 depends on a running phase 1
    assert submission_row(ws, sub)["status"] == "running"  # type: ignore[arg-type]
    assert q.complete(p1, "w1")
    job2 = q.claim("w2", 30)
    assert job2 is not None and job2.id == p2 and job2.depends_on == p1


def test_an_expired_lease_is_reclaimed_and_the_old_owner_is_locked_out(tmp_path: Path) -> None:
    q, clock, ws, _sub, (p1, _p2) = _queue(tmp_path)
    assert q.claim("w1", 30) is not None
    clock.t += 10
    assert q.heartbeat(p1, "w1", 30)  # the lease now ends at 1040
    clock.t += 25
    assert q.claim("w2", 30) is None  # still leased
    clock.t += 10
    job = q.claim("w2", 30)
    assert job is not None and job.id == p1 and job.attempts == 2 and job.lease_owner == "w2"
    assert not q.heartbeat(p1, "w1", 30)  # the dead worker's late heartbeat is refused
    assert not q.complete(p1, "w1")
    assert q.fail(p1, "w1", "model_error", "late") == "running"
    assert job_row(ws, p1)["lease_owner"] == "w2"  # type: ignore[arg-type]


def test_max_attempts_then_failed_as_platform_error_not_counted(tmp_path: Path) -> None:
    q, clock, ws, sub, (p1, p2) = _queue(tmp_path)
    for attempt in (1, 2, 3):
        job = q.claim(f"w{attempt}", 5)
        assert job is not None and job.attempts == attempt
        clock.t += 6  # the worker dies; its lease runs out
    assert q.claim("w4", 5) is None  # gave up on phase 1, and phase 2 fails with it
    r1, r2 = job_row(ws, p1), job_row(ws, p2)  # type: ignore[arg-type]
    assert (r1["state"], r1["error_class"], r1["attempts"]) == ("failed", "platform_error", 3)
    assert (r2["state"], r2["error_class"]) == ("failed", "platform_error")
    s = submission_row(ws, sub)  # type: ignore[arg-type]
    assert s["status"] == "failed" and s["counted"] is False


def test_platform_failure_retries_then_gives_the_submission_back(tmp_path: Path) -> None:
    q, _clock, ws, sub, (p1, _p2) = _queue(tmp_path)
    states = []
    for _ in range(3):
        job = q.claim("w", 30)
        assert job is not None and job.id == p1
        states.append(q.fail(p1, "w", "platform_error", "sandbox broke", retry=True))
    assert states == ["queued", "queued", "failed"]
    assert submission_row(ws, sub)["counted"] is False  # type: ignore[arg-type]


def test_model_failure_is_final_and_counts(tmp_path: Path) -> None:
    q, _clock, ws, sub, (p1, p2) = _queue(tmp_path)
    q.claim("w", 30)
    assert q.fail(p1, "w", "out_of_memory", "oom") == "failed"
    assert q.claim("w", 30) is None
    assert job_row(ws, p2)["error_class"] == "out_of_memory"  # type: ignore[arg-type]
    s = submission_row(ws, sub)  # type: ignore[arg-type]
    assert s["status"] == "failed" and s["counted"] is True


def test_cancel_a_queued_and_a_running_job(tmp_path: Path) -> None:
    q, _clock, ws, sub, (p1, p2) = _queue(tmp_path)
    assert q.claim("w", 30) is not None
    assert q.cancel(p1) == "cancelled"
    assert not q.heartbeat(p1, "w", 30)  # the worker learns it at its next heartbeat
    assert job_row(ws, p2)["state"] == "cancelled"  # type: ignore[arg-type]
    assert q.cancel(p1) == "cancelled"  # idempotent
    assert submission_row(ws, sub)["status"] == "cancelled"  # type: ignore[arg-type]
    assert q.claim("w", 30) is None


def test_two_workers_never_claim_the_same_job(tmp_path: Path) -> None:
    from bedside.jobs.queue import enqueue_for_submission
    from bedside.store import schema

    q, _clock, ws, sub, _jobs = _queue(tmp_path)
    with ws.store.write() as conn:  # type: ignore[attr-defined]
        for _ in range(9):
            ids = enqueue_for_submission(conn, sub, 1)
            conn.execute(
                schema.jobs.update().where(schema.jobs.c.id == ids[1]).values(depends_on=None)
            )
    claimed: list[int] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        qq = SqlQueue(ws.store)  # type: ignore[attr-defined]
        while (job := qq.claim(name, 60)) is not None:
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 20 jobs; the first submission's phase 2 waits on its running phase 1
    assert len(claimed) == len(set(claimed)) == 19
