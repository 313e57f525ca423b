"""Run jobs on a Ray cluster: a ``Launcher`` that sends each job to a node as a Ray task.

``bedside worker --ray [ADDRESS]`` is today's ``Worker`` with this launcher: the worker still
claims from the store, stages the job directory, heartbeats the lease, reads progress, checks and
scores the outputs (the holdout labels never leave the host); only the sandboxed run moves. The
task asks Ray for the CPUs, memory and GPU the policy gives a job, so it lands on a node with
that much free, and on that node it probes the isolation tier and runs the job with the best
launcher that meets the policy's ``min_tier`` (a node below it fails the job as a platform error,
which is retried elsewhere).

The job directory reaches the node through the filesystem: every node mounts the workspace at
the same path (one machine, or NFS/CephFS on a cluster); the task refuses a directory it cannot
see. Outputs and checkpoints are written there, so results come back through the same
``out/`` contract, and a retry on another node resumes from the last complete checkpoint.

Faults: a node (or its Ray worker) that dies mid-job fails the task; the launcher raises a
``SandboxError``, the executor requeues the job as a platform error (attempts bounded by
``max_attempts``) and the next claim runs it on a live node. Ray never retries a task itself
(``max_retries=0``): the store's lease is the only source of truth. If the worker process itself
dies, its lease expires and any worker reclaims the job.

Example::

    launcher = RayLauncher(ws.policy(), address="127.0.0.1:6379")
    Worker(ws, launcher=launcher, concurrency=launcher.slots(ws.policy().limits)).run()
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bedside.config import JobLimits, Policy
from bedside.errors import SandboxError
from bedside.jobs.raycluster import ray_module, task_resources
from bedside.jobs.spec import JobSpec
from bedside.sandbox.launch import Launcher, LaunchResult

if TYPE_CHECKING:
    from bedside.sandbox.launch import Cancel, Poll

POLL_S = 0.5
CANCEL_GRACE_S = 10.0


def run_on_node(
    policy: dict[str, Any],
    job_dir: str,
    limits: dict[str, Any],
    test_command: list[str] | None = None,
) -> LaunchResult:
    """The Ray task's body, on the node: find the job directory, pick the node's launcher for
    the policy, run the job."""
    import socket

    from bedside.sandbox.probe import launcher_for_policy

    path = Path(job_dir)
    try:
        spec = JobSpec.read(path)
    except Exception as e:
        raise SandboxError(
            f"node {socket.gethostname()} cannot read the job directory {job_dir}: {e}.",
            hint="Mount the workspace at the same path on every Ray node.",
        ) from e
    launcher = launcher_for_policy(Policy.from_dict(policy))
    if test_command is not None:  # the same tier's launcher, running a stand-in engine
        launcher = type(launcher)(test_command=test_command)  # type: ignore[call-arg]
    return launcher.launch(path, spec, JobLimits(**limits))


class RayLauncher(Launcher):
    """Dispatches each job as a Ray task; see the module docstring."""

    def __init__(
        self,
        policy: Policy,
        address: str | None = None,
        *,
        resources: dict[str, float] | None = None,
        test_command: list[str] | None = None,
    ) -> None:
        """``resources``: extra Ray resources every job asks for (e.g. a node label);
        ``test_command``: tests and benchmarks only, like the process launchers' one."""
        self.ray = ray_module()
        self.resources, self.test_command = dict(resources or {}), test_command
        if not self.ray.is_initialized():
            self.ray.init(address=address or "auto", log_to_driver=False)
        self.policy = policy
        self.tier = f"ray ({policy.min_tier} or better per node)"
        self._task = self.ray.remote(max_retries=0)(run_on_node)

    def slots(self, limits: JobLimits) -> int:
        """How many jobs of this size the cluster can run at once (at least 1)."""
        cpus = float(self.ray.cluster_resources().get("CPU", 1))
        return max(1, int(cpus // limits.cpus))

    def launch(
        self,
        job_dir: Path,
        spec: JobSpec,
        limits: JobLimits,
        *,
        should_cancel: Cancel | None = None,
        on_poll: Poll | None = None,
    ) -> LaunchResult:
        from dataclasses import asdict

        t0 = time.monotonic()
        opts = task_resources(limits)
        if self.resources:
            opts["resources"] = self.resources
        ref = self._task.options(**opts).remote(
            self.policy.to_dict(), str(Path(job_dir).resolve()), asdict(limits), self.test_command
        )
        cancelled_at: float | None = None
        while True:
            ready, _ = self.ray.wait([ref], timeout=POLL_S)
            if ready:
                break
            if on_poll is not None:
                on_poll()
            if should_cancel is not None and should_cancel():
                if cancelled_at is None:
                    cancelled_at = time.monotonic()
                    self.ray.cancel(ref)  # KeyboardInterrupt in the task: the launcher cleans up
                elif time.monotonic() - cancelled_at > CANCEL_GRACE_S:
                    self.ray.cancel(ref, force=True)
        try:
            res: LaunchResult = self.ray.get(ref)
        except self.ray.exceptions.TaskCancelledError:
            return LaunchResult(
                None, "cancelled", time.monotonic() - t0, None, self.tier, cancelled=True
            )
        except self.ray.exceptions.RayTaskError as e:
            cause = e.cause if isinstance(e.cause, Exception) else e
            if isinstance(cause, SandboxError):
                raise cause from e
            if cancelled_at is not None:
                return LaunchResult(
                    None, "cancelled", time.monotonic() - t0, None, self.tier, cancelled=True
                )
            raise SandboxError(
                f"the Ray task for job {spec.job_id} failed on its node: {cause}."
            ) from e
        except self.ray.exceptions.RayError as e:  # node died, worker crashed, object lost
            if cancelled_at is not None:
                return LaunchResult(
                    None, "cancelled", time.monotonic() - t0, None, self.tier, cancelled=True
                )
            raise SandboxError(
                f"job {spec.job_id} lost its Ray node or worker mid-run ({type(e).__name__}); "
                "it is requeued and resumes from its last complete checkpoint."
            ) from e
        if cancelled_at is not None and not res.cancelled:
            res.cancelled = True
        return res
