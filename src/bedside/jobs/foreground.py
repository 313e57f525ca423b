"""``bedside run``: run a submission's phase jobs now, in this process, through the same queue
leases, sandbox and scoring as the worker.

Example::

    [o.state for o in run_submission(ws, 3, phases=(1,))]   # ['done']
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bedside.errors import JobError, NotFoundError
from bedside.jobs.executor import JobExecutor, JobOutcome
from bedside.jobs.progressbar import progress_bar
from bedside.jobs.queue import JobState, SqlQueue
from bedside.jobs.worker import worker_id

if TYPE_CHECKING:
    from bedside.sandbox.launch import Launcher
    from bedside.workspace import Workspace


def run_submission(
    ws: Workspace,
    submission_id: int,
    phases: tuple[int, ...] = (1, 2),
    launcher: Launcher | None = None,
    progress: bool = True,
    lease_s: float = 60.0,
) -> list[JobOutcome]:
    """Run a submission's phase jobs now, in this process (``bedside run``), through the same
    queue leases, sandbox and scoring as the worker. Jobs already done are skipped.

    >>> [o.state for o in run_submission(ws, 3, phases=(1,))]  # doctest: +SKIP
    ['done']
    """
    queue = SqlQueue(ws.store)
    rows = {r["kind"]: r for r in queue.jobs_of(submission_id)}
    if not rows:
        raise NotFoundError(
            f"submission {submission_id} has no jobs.",
            hint="List submissions with `bedside submissions`.",
        )
    if launcher is None:
        from bedside.sandbox.probe import launcher_for_policy

        launcher = launcher_for_policy(ws.policy())
    owner = worker_id()
    outcomes: list[JobOutcome] = []
    with progress_bar(progress) as hook:
        ex = JobExecutor(ws, queue, launcher, lease_s=lease_s, on_progress=hook)
        for phase in sorted(phases):
            row = rows.get(f"phase{phase}")
            if row is None:
                raise NotFoundError(f"submission {submission_id} has no phase {phase} job.")
            if row["state"] == JobState.DONE:
                continue
            job = queue.claim_job(int(row["id"]), owner, lease_s)
            if job is None:
                state = queue.state(int(row["id"]))
                raise JobError(
                    f"job {row['id']} (phase {phase}) cannot run now: it is {state}"
                    + (" and its dependency is not done" if state == JobState.QUEUED else "")
                    + ".",
                    hint="A running job belongs to a worker; a failed one was final. See `bedside jobs show ID`.",
                )
            outcome = ex.run(job, owner)
            outcomes.append(outcome)
            if outcome.state != JobState.DONE:
                break
    return outcomes
