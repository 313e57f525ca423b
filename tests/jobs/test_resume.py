"""A worker SIGKILLed mid-training: its sandbox dies with it, the lease expires, and the next
worker resumes from the last complete checkpoint (a torn newer one is skipped). Real engine, tiny
random encoder, full fine-tune, tier A."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from bedside.jobs.worker import Worker, wait_for
from bedside.sandbox.launch import STAGE_PREFIX, BwrapLauncher
from bedside.store import schema
from tests.jobs.support import contributor_used, job_row, make_workspace, submission_row
from tests.sandbox.conftest import parent_pids, require_tier
from tests.sandbox.test_attacks import _marked_processes


def _descendants(root: int) -> set[int]:
    """Pids below ``root`` in the host's process tree."""
    parent = parent_pids()
    out: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier} - out
        out |= frontier
    return out


def _complete_checkpoints(d: Path) -> list[int]:
    return sorted(
        int(p.name.split("-")[1]) for p in d.glob("checkpoint-*") if (p / "COMPLETE").exists()
    )


@pytest.mark.slow
@pytest.mark.torch
def test_sigkill_mid_training_then_resume_from_the_last_complete_checkpoint(tmp_path: Path) -> None:
    require_tier("A")
    ws, sub, (p1, p2) = make_workspace(
        tmp_path / "ws",
        bundle="encoder",
        n_train=96,
        spec={"checkpoint_every": 2},
        train={"epochs": 12},
    )
    with ws.store.write() as conn:  # phase 1 is not what this test is about
        conn.execute(schema.jobs.update().where(schema.jobs.c.id == p1).values(state="done"))
    ckpts = ws.jobs_dir / str(p2) / "checkpoints"
    cmd = [
        sys.executable,
        "-m",
        "bedside.cli.app",
        "-w",
        str(ws.root),
        "worker",
        "--once",
        "--lease-seconds",
        "3",
    ]
    worker = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: bool(_complete_checkpoints(ckpts)), timeout_s=180, every_s=0.05), (
            "no checkpoint"
        )
        # This worker's engine processes only: other jobs may run on the same machine.
        engines = set(_marked_processes("bedside.engine.entrypoint")) & _descendants(worker.pid)
        assert engines, "the job's engine process was not found under its worker"
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
    finally:
        if worker.poll() is None:
            worker.kill()
    # --die-with-parent + the pid namespace: no engine process outlives its worker
    assert wait_for(
        lambda: not engines & set(_marked_processes("bedside.engine.entrypoint")), timeout_s=10
    )
    assert job_row(ws, p2)["state"] == "running"  # until its lease runs out

    time.sleep(0.5)  # a checkpoint being written when the kill came is torn: it is never resumed
    last = _complete_checkpoints(ckpts)[-1]
    torn = ckpts / f"checkpoint-{last + 1000}"
    shutil.copytree(ckpts / f"checkpoint-{last}", torn)
    (torn / "COMPLETE").unlink()
    with open(torn / "model.safetensors", "r+b") as f:
        f.truncate(100)

    time.sleep(3.5)  # the dead worker's lease expires
    outcomes = Worker(ws, launcher=BwrapLauncher(), lease_s=10, poll_s=0.2, baselines=False).run(
        once=True
    )
    assert [(o.job_id, o.state) for o in outcomes] == [(p2, "done")]
    # the dead worker's staging dir and cgroups were swept when the new worker started
    assert not list(Path(tempfile.gettempdir()).glob(f"{STAGE_PREFIX}{worker.pid}-*"))
    row = job_row(ws, p2)
    assert row["attempts"] == 2
    log = (ws.jobs_dir / str(p2) / "out" / "log.txt").read_text()
    m = re.search(r"resumed from checkpoint-(\d+)", log)
    assert m is not None, log[-2000:]
    assert last <= int(m.group(1)) < last + 1000
    with ws.store.read() as conn:
        results = conn.execute(
            select(schema.results.c.job_id).where(schema.results.c.job_id == p2)
        ).all()
    assert len(results) == 1
    assert submission_row(ws, sub)["status"] == "done"
    assert contributor_used(ws) > 0
