"""Jobs through a real local two-node Ray cluster (``scripts/services.sh start``): the worker
dispatches each job as a Ray task that runs in the node's sandbox tier; a Ray worker killed
mid-job loses nothing (requeued, resumed from its checkpoint, done once)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bedside.jobs.worker import Worker
from tests.backends import RAY_ENV, require_env
from tests.jobs.support import job_row, make_workspace, submission_row

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]


def standin(seconds: float) -> list[str]:
    return ["{python}", "-m", "bedside.testing.standin", "{job}", str(seconds)]


@pytest.fixture
def ray_address() -> Iterator[str]:
    address = require_env(RAY_ENV, "a Ray cluster")
    yield address
    import ray

    if ray.is_initialized():
        ray.shutdown()


def _task_pids() -> list[int]:
    """Ray worker processes executing our task (Ray titles them ``ray::run_on_node``)."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "cmdline").read_bytes().startswith(b"ray::run_on_node"):
                    pids.append(int(d.name))
            except OSError:
                continue
    return pids


def test_jobs_run_as_ray_tasks_in_the_node_sandbox(tmp_path: Path, ray_address: str) -> None:
    from bedside.jobs.raylaunch import RayLauncher

    ws, sub, (p1, p2) = make_workspace(tmp_path / "ws")
    launcher = RayLauncher(ws.policy(), address=ray_address, test_command=standin(0))
    assert launcher.slots(ws.policy().limits) >= 2  # two nodes' CPUs
    outcomes = Worker(
        ws, launcher=launcher, concurrency=2, lease_s=20, poll_s=0.2, baselines=False
    ).run(once=True)
    assert sorted((o.job_id, o.state) for o in outcomes) == [(p1, "done"), (p2, "done")]
    assert {o.tier for o in outcomes} == {"A"}  # the node's launcher met the policy's min_tier
    assert submission_row(ws, sub)["status"] == "done"
    assert all(o.result_id for o in outcomes)


def test_a_ray_worker_killed_mid_job_loses_nothing(tmp_path: Path, ray_address: str) -> None:
    from bedside.jobs.raylaunch import RayLauncher

    ws, sub, (p1, p2) = make_workspace(tmp_path / "ws")
    launcher = RayLauncher(ws.policy(), address=ray_address, test_command=standin(6))
    w = Worker(ws, launcher=launcher, concurrency=1, lease_s=20, poll_s=0.2, baselines=False)
    killed: list[int] = []

    def kill_phase2() -> None:
        # once phase 2 has its complete checkpoint, SIGKILL the Ray worker running it
        ckpt = ws.root / "jobs"
        end = time.monotonic() + 120
        while time.monotonic() < end and not killed:
            if job_row(ws, p2)["state"] == "running" and any(
                ckpt.glob(f"**/{p2}/checkpoints/checkpoint-1/COMPLETE")
            ):
                for pid in _task_pids():
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            time.sleep(0.2)

    t = threading.Thread(target=kill_phase2, daemon=True)
    t.start()
    outcomes = w.run(once=True)
    t.join(timeout=5)
    assert killed, "the Ray worker was never seen running phase 2"
    p2_outcomes = [o.state for o in outcomes if o.job_id == p2]
    assert p2_outcomes == ["queued", "done"]  # requeued as a platform failure, then done once
    row = job_row(ws, p2)
    assert row["state"] == "done" and row["attempts"] == 2
    stages = [r.get("stage") for r in _events(ws, p2)]
    assert stages.count("train") == 1 and "resume" in stages  # resumed from its checkpoint
    assert submission_row(ws, sub)["status"] == "done"
    assert job_row(ws, p1)["attempts"] == 1


def _events(ws: object, job_id: int) -> list[dict[str, object]]:
    from sqlalchemy import select

    from bedside.store import schema

    with ws.store.read() as conn:  # type: ignore[attr-defined]
        return [
            dict(d)
            for d in conn.execute(
                select(schema.job_events.c.data).where(schema.job_events.c.job_id == job_id)
            ).scalars()
        ]
