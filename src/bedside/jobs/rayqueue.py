"""The job queue reached through a Ray cluster: a ``Queue`` whose calls run in one Ray actor that
holds a ``SqlQueue`` on the store.

For a process on a cluster node that has no route or credentials to the store: it claims,
heartbeats and completes through the actor, and the store stays the source of truth (the actor
only forwards; a restarted actor loses nothing). Lease times are the caller's clock, sent with
each call, so every process on the cluster reasons about one lease timeline.

Example::

    q = RayQueue.connect("postgresql://bedside@db/bedside", address="10.0.0.1:6379")
    job = q.claim("node-2:77", lease_s=60)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from bedside.jobs.queue import ClaimedJob, Queue
from bedside.jobs.raycluster import ray_module


class _QueueService:
    """The actor's body: one ``SqlQueue`` whose clock is the caller's (set per call)."""

    def __init__(self, url: str) -> None:
        from bedside.jobs.queue import SqlQueue
        from bedside.store.store import Store

        self._now = time.time()
        self.queue = SqlQueue(Store(url), clock=lambda: self._now)

    def call(self, now: float, method: str, args: tuple[Any, ...]) -> Any:
        self._now = now
        return getattr(self.queue, method)(*args)


class RayQueue(Queue):
    def __init__(self, actor: Any, clock: Callable[[], float] = time.time) -> None:
        self.actor, self.clock = actor, clock

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        address: str | None = None,
        clock_at: Callable[[], float] = time.time,
    ) -> RayQueue:
        """Start the queue actor on the cluster at ``address`` (``ray.init`` if not yet)."""
        ray = ray_module()
        if not ray.is_initialized():
            ray.init(address=address, log_to_driver=False)
        actor = ray.remote(num_cpus=0)(_QueueService).remote(url)
        return cls(actor, clock_at)

    def _call(self, method: str, *args: Any) -> Any:
        ray = ray_module()
        return ray.get(self.actor.call.remote(self.clock(), method, args))

    def claim(self, owner: str, lease_s: float) -> ClaimedJob | None:
        job: ClaimedJob | None = self._call("claim", owner, lease_s)
        return job

    def heartbeat(self, job_id: int, owner: str, lease_s: float) -> bool:
        return bool(self._call("heartbeat", job_id, owner, lease_s))

    def progress(self, job_id: int, records: Sequence[dict[str, Any]]) -> None:
        self._call("progress", job_id, [dict(r) for r in records])

    def complete(self, job_id: int, owner: str, conn: Any = None) -> bool:
        if conn is not None:
            raise TypeError(
                "RayQueue.complete runs in the queue actor: it cannot join a caller's transaction."
            )
        return bool(self._call("complete", job_id, owner))

    def fail(
        self, job_id: int, owner: str, error_class: str, message: str, retry: bool = False
    ) -> str:
        return str(self._call("fail", job_id, owner, error_class, message, retry))

    def cancel(self, job_id: int) -> str:
        return str(self._call("cancel", job_id))

    def state(self, job_id: int) -> str | None:
        v = self._call("state", job_id)
        return None if v is None else str(v)

    def list(self, states: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self._call("list", states)
        return rows

    def close(self) -> None:
        """Stop the actor (the store keeps everything)."""
        ray_module().kill(self.actor)
