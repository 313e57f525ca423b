"""A terminal progress bar per job, fed by the executor's progress hook (``bedside run``,
``bedside worker`` on a terminal).

Example::

    with progress_bar(True) as hook:
        JobExecutor(ws, queue, launcher, on_progress=hook).run(job, owner)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bedside.jobs.queue import ClaimedJob

ProgressHook = Callable[["ClaimedJob", dict[str, Any]], None]


@contextlib.contextmanager
def progress_bar(enabled: bool) -> Iterator[ProgressHook | None]:
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    tasks: dict[int, Any] = {}
    with Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        transient=False,
    ) as bar:

        def hook(job: ClaimedJob, rec: dict[str, Any]) -> None:
            desc = f"job {job.id} {job.kind}: {rec.get('stage', '')}"
            if job.id not in tasks:
                tasks[job.id] = bar.add_task(desc, total=rec.get("total") or 1)
            bar.update(
                tasks[job.id],
                description=desc,
                total=rec.get("total") or 1,
                completed=rec.get("step") or 0,
            )

        yield hook
