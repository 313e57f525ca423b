"""``bedside worker``: claim jobs from the queue and run them in the sandbox the policy requires.

Each of ``concurrency`` threads loops: claim (lease), run through ``JobExecutor`` (heartbeat,
progress, score), repeat; idle threads poll. The launcher is picked once from the host's probed
tier (``sandbox.probe.launcher_for_policy``): a host below the policy's ``min_tier`` refuses to
start with a ``SandboxError`` that says what to install.

A worker killed with SIGKILL leaves its jobs ``running`` with a lease that expires; the next
claim (by any worker) reruns them, and the engine resumes from the last complete checkpoint.
Results are recorded once per job (``results.job_id`` is unique), and compute is charged in the
same transaction that marks a job done.

Example::

    Worker(ws, concurrency=2).run(once=True)   # drain the queue, then return
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from bedside.jobs.executor import JobExecutor, JobOutcome, ProgressHook
from bedside.jobs.queue import SqlQueue

if TYPE_CHECKING:
    from bedside.sandbox.launch import Launcher
    from bedside.workspace import Workspace


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 100000}"


class Worker:
    def __init__(
        self,
        ws: Workspace,
        *,
        launcher: Launcher | None = None,
        concurrency: int = 1,
        lease_s: float = 60.0,
        poll_s: float = 1.0,
        on_progress: ProgressHook | None = None,
        on_outcome: Callable[[JobOutcome], None] | None = None,
        baselines: bool = True,
    ) -> None:
        if launcher is None:
            from bedside.sandbox.probe import launcher_for_policy

            launcher = launcher_for_policy(ws.policy())
        self.ws, self.launcher = ws, launcher
        self.queue = SqlQueue(ws.store)
        self.concurrency, self.lease_s, self.poll_s = max(1, concurrency), lease_s, poll_s
        self.on_progress, self.on_outcome = on_progress, on_outcome
        self.baselines = baselines
        self.stop = threading.Event()
        self.outcomes: list[JobOutcome] = []
        self._lock = threading.Lock()

    def ensure_baselines(self) -> None:
        """The internal baseline of the active corpus, if it is missing (cheap, in-process)."""
        try:
            from bedside.evaluation.baseline import ensure_baselines
        except ImportError:
            return
        try:
            ensure_baselines(self.ws)
        except Exception as e:  # best effort: a baseline problem must not stop the queue
            print(f"worker: the internal baseline could not be computed: {e}", file=sys.stderr)

    def run(self, once: bool = False, max_jobs: int | None = None) -> list[JobOutcome]:
        """Work until stopped; with ``once``, until the queue has nothing runnable left."""
        from bedside.sandbox.probe import sweep_stale

        sweep_stale()
        if self.baselines:
            self.ensure_baselines()
        threads = [
            threading.Thread(
                target=self._loop, args=(once, max_jobs), name=f"worker-{i}", daemon=True
            )
            for i in range(self.concurrency)
        ]
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(timeout=0.5)
        except KeyboardInterrupt:
            self.stop.set()
            for t in threads:
                t.join()
            raise
        return self.outcomes

    def _loop(self, once: bool, max_jobs: int | None) -> None:
        ex = JobExecutor(
            self.ws, self.queue, self.launcher, lease_s=self.lease_s, on_progress=self.on_progress
        )
        owner = worker_id()
        while not self.stop.is_set():
            with self._lock:
                if max_jobs is not None and len(self.outcomes) >= max_jobs:
                    return
            job = self.queue.claim(owner, self.lease_s)
            if job is None:
                if once and not self._others_running():
                    return
                self.stop.wait(self.poll_s)
                continue
            outcome = ex.run(job, owner)
            with self._lock:
                self.outcomes.append(outcome)
            if self.on_outcome is not None:
                self.on_outcome(outcome)

    def _others_running(self) -> bool:
        """With ``once``: keep polling while another thread's job may unlock a dependent one."""
        return any(
            j["state"] == "running"
            and j["lease_owner"]
            and j["lease_owner"].startswith(f"{socket.gethostname()}:{os.getpid()}:")
            for j in self.queue.list(("running",))
        )


def drain(
    ws: Workspace, launcher: Launcher, *, lease_s: float = 60.0, concurrency: int = 1
) -> list[JobOutcome]:
    """Run every runnable job now (tests, demos): ``Worker(...).run(once=True)``."""
    w = Worker(
        ws, launcher=launcher, concurrency=concurrency, lease_s=lease_s, poll_s=0.1, baselines=False
    )
    return w.run(once=True)


def wait_for(pred: Callable[[], bool], timeout_s: float, every_s: float = 0.1) -> bool:
    """Poll ``pred`` until it holds or ``timeout_s`` passes (tests and the CLI)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(every_s)
    return pred()
