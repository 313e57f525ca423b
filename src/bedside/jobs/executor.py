"""Run one claimed job to its end: stage, launch with a heartbeat, collect, score, record.

``JobExecutor.run`` is what the worker (and ``bedside run``) calls for each job it holds. While
the sandbox runs, a heartbeat thread renews the lease; when the heartbeat is refused (the owner
cancelled the job, or the lease was lost) the launcher kills the sandbox. Progress records go to
``jobs.progress`` (latest) and ``job_events`` (the curve).

Failures: a platform failure (the sandbox itself, a missing bundle) is retried while attempts
remain and, in the end, gives the submission back (``counted = False``); a model failure
(out_of_memory, timeout, model_error, invalid_output ...) is final and counts.

Example::

    ex = JobExecutor(ws, SqlQueue(ws.store), launcher)
    outcome = ex.run(job, owner="host:123")
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bedside.errors import BedsideError, JobError
from bedside.jobs import outputs
from bedside.jobs.collect import collect_and_score, existing_result
from bedside.jobs.progressbar import ProgressHook
from bedside.jobs.queue import PLATFORM_ERROR, ClaimedJob, JobState, Queue
from bedside.jobs.spec import JobSpec
from bedside.jobs.staging import prepare_job_dir
from bedside.jobs.views import clean_progress
from bedside.submissions.contributors import actual_pflops, charge

if TYPE_CHECKING:
    from bedside.sandbox.launch import Launcher, LaunchResult
    from bedside.workspace import Workspace

LOG_TAIL = 64 * 1024
__all__ = ["Heartbeat", "JobExecutor", "JobOutcome", "ProgressHook"]


@dataclass
class JobOutcome:
    job_id: int
    state: str  # done | failed | queued (retry) | cancelled
    error_class: str | None = None
    result_id: int | None = None
    tier: str | None = None
    wall_s: float | None = None


class Heartbeat:
    """Renews a lease every ``interval_s`` in a thread; ``lost`` is set when renewal is refused."""

    def __init__(
        self,
        queue: Queue,
        job_id: int,
        owner: str,
        lease_s: float,
        interval_s: float | None = None,
    ) -> None:
        self.queue, self.job_id, self.owner, self.lease_s = queue, job_id, owner, lease_s
        self.interval_s = interval_s if interval_s is not None else max(0.2, lease_s / 3)
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{job_id}", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                ok = self.queue.heartbeat(self.job_id, self.owner, self.lease_s)
            except Exception:  # a busy database: try again next beat, the lease has slack
                continue
            if not ok:
                self.lost.set()
                return

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class JobExecutor:
    def __init__(
        self,
        ws: Workspace,
        queue: Queue,
        launcher: Launcher,
        *,
        lease_s: float = 60.0,
        on_progress: ProgressHook | None = None,
    ) -> None:
        self.ws, self.queue, self.launcher, self.lease_s = ws, queue, launcher, lease_s
        self.on_progress = on_progress

    def run(self, job: ClaimedJob, owner: str) -> JobOutcome:
        row = job.row()
        # Scored already (the worker died between recording and marking done): just finish.
        if (done := existing_result(self.ws, job.id)) is not None:
            return self._complete(job, owner, done, None)
        try:
            job_dir = _stage(self.ws, row)
            spec = JobSpec.read(job_dir)
        except BedsideError as e:
            return self._fail(job, owner, PLATFORM_ERROR, f"staging failed: {e}", retry=True)
        except OSError as e:
            return self._fail(job, owner, PLATFORM_ERROR, f"staging failed: {e}", retry=True)
        limits = self.ws.policy().limits
        out_dir, ckpt_dir = spec.path(job_dir, "out"), spec.path(job_dir, "checkpoints")
        tail = outputs.ProgressTail(out_dir)
        with Heartbeat(self.queue, job.id, owner, self.lease_s) as hb:
            try:
                res = self.launcher.launch(
                    job_dir,
                    spec,
                    limits,
                    should_cancel=hb.lost.is_set,
                    on_poll=lambda: self._progress(job, tail),
                )
            except BedsideError as e:
                return self._fail(job, owner, PLATFORM_ERROR, f"launch failed: {e}", retry=True)
            except OSError as e:
                return self._fail(job, owner, PLATFORM_ERROR, f"launch failed: {e}", retry=True)
        outputs.seal(out_dir, ckpt_dir)  # every job process is gone: nothing can change them now
        if res.cancelled or hb.lost.is_set():
            self._progress(job, tail)
            state = self.queue.state(job.id) or JobState.CANCELLED
            return JobOutcome(job.id, state, "cancelled", tier=res.tier, wall_s=res.wall_s)
        try:
            quota = int(limits.output_quota_mb * 2**20)
            for d in (out_dir, ckpt_dir):
                outputs.check_tree(d, quota)  # before anything in them is read
            self._progress(job, tail)
            result_id = _collect(self.ws, row, res)
        except JobError as e:
            retry = e.error_class == PLATFORM_ERROR
            return self._fail(
                job, owner, e.error_class, _owner_message(e, res), retry=retry, res=res
            )
        return self._complete(job, owner, result_id, res)

    # -- endings ------------------------------------------------------------------------------
    def _complete(
        self, job: ClaimedJob, owner: str, result_id: int | None, res: LaunchResult | None
    ) -> JobOutcome:
        pflops = actual_pflops(self.ws, job.id)
        with self.ws.store.write() as conn:
            if self.queue.complete(job.id, owner, conn):
                # charged in the same transaction as "done": a job is charged once
                charge(conn, job.submission_id, pflops)
                state = JobState.DONE.value
            else:
                state = "lost"
        return JobOutcome(
            job.id, state, None, result_id, res.tier if res else None, res.wall_s if res else None
        )

    def _fail(
        self,
        job: ClaimedJob,
        owner: str,
        error_class: str,
        message: str,
        *,
        retry: bool,
        res: LaunchResult | None = None,
    ) -> JobOutcome:
        state = self.queue.fail(job.id, owner, error_class, message[-LOG_TAIL:], retry=retry)
        if state == JobState.FAILED and res is not None:
            with self.ws.store.write() as conn:  # a failed run still spent what it reports
                charge(conn, job.submission_id, actual_pflops(self.ws, job.id))
        return JobOutcome(
            job.id,
            state,
            error_class,
            tier=res.tier if res else None,
            wall_s=res.wall_s if res else None,
        )

    def _progress(self, job: ClaimedJob, tail: outputs.ProgressTail) -> None:
        recs = [r for raw in tail.read() if (r := clean_progress(raw)) is not None]
        for r in recs:
            r.setdefault("ts", time.time())
        if not recs:
            return
        self.queue.progress(job.id, recs)
        if self.on_progress is not None:
            self.on_progress(job, recs[-1])


def _stage(ws: Workspace, row: dict[str, Any]) -> Path:
    if row["kind"] == "screen":  # a screening run stages its own inputs (bedside.screening)
        from bedside.screening.runs import stage_screen_job

        return stage_screen_job(ws, row)
    return prepare_job_dir(ws, row)


def _collect(ws: Workspace, row: dict[str, Any], res: LaunchResult) -> int | None:
    """The result id of a scored phase job; None for a screening job (it records a run)."""
    if row["kind"] == "screen":
        from bedside.screening.runs import collect_screen_job

        collect_screen_job(ws, row, res)
        return None
    return collect_and_score(ws, row, res)


def _owner_message(e: JobError, res: LaunchResult) -> str:
    """The owner-only failure record: the reason, then the tail of the job's log."""
    msg = f"[{res.tier}] {e.message}"
    if res.log_tail:
        msg += "\n--- log (tail) ---\n" + res.log_tail
    return msg[-LOG_TAIL:]
