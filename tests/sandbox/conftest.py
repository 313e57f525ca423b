"""Fixtures for the sandbox tests: a job directory inside a 0700 workspace (as in production),
secrets beside it, and a way to run test-only Python code through a launcher."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bedside.config import JobLimits
from bedside.jobs.spec import JobSpec
from bedside.sandbox.launch import (
    BwrapLauncher,
    LaunchResult,
    NamespaceLauncher,
    PlainLauncher,
    ProcessLauncher,
    RlimitLauncher,
)
from bedside.sandbox.probe import probe

CANARY = "CANARY-7f3a9c1e-holdout-label"
LAUNCHERS: dict[str, type[ProcessLauncher]] = {
    "A": BwrapLauncher,
    "B": NamespaceLauncher,
    "C": RlimitLauncher,
    "none": PlainLauncher,
}


def parent_pids() -> dict[int, int]:
    """Every host process's parent pid, read from /proc (processes that exit meanwhile skipped)."""
    parents: dict[int, int] = {}
    for e in os.scandir("/proc"):
        if e.name.isdigit():
            try:
                stat = Path(f"/proc/{e.name}/stat").read_text()
            except OSError:
                continue
            parents[int(e.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def require_tier(tier: str) -> None:
    """Skip when this host cannot give ``tier`` -- except in CI, where that is a failure."""
    rep = probe()
    t = rep.tiers.get(tier)
    if t is None or not t.ok:
        msg = f"isolation tier {tier} is not available here: {t.detail if t else 'unknown'}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)


@dataclass
class JobDir:
    ws: Path
    job: Path
    spec: JobSpec
    corpus_file: Path
    db_file: Path

    def run(self, tier: str, code: str, **limits: Any) -> tuple[LaunchResult, dict[str, Any]]:
        """Run ``code`` (test-only Python) as the job; returns the result and what the code
        printed on its ``RESULT {...}`` line."""
        if tier != "none":
            require_tier(tier)
        launcher = LAUNCHERS[tier](test_command=[sys.executable, "-c", code])
        lim = {
            "cpus": 1,
            "memory_gb": 1.0,
            "wall_time_s": 30,
            "output_quota_mb": 64,
            "pids": 64,
            **limits,
        }
        res = launcher.launch(self.job, self.spec, JobLimits(**lim))
        line = next((ln for ln in res.log_tail.splitlines() if ln.startswith("RESULT ")), None)
        return res, (json.loads(line[7:]) if line else {})


@pytest.fixture
def jobdir(tmp_path: Path) -> JobDir:
    """WS (0700) / jobs/1 (0755) with spec and holdout texts; WS/corpora/v1/holdout.parquet (0600,
    with labels and a canary) and WS/bedside.db (0600) beside it."""
    ws = tmp_path / "ws"
    ws.mkdir(mode=0o700)
    corpus = ws / "corpora" / "v1"
    corpus.mkdir(parents=True, mode=0o700)
    df = pd.DataFrame(
        {
            "row_id": ["r1", "r2"],
            "text": ["a tumour", f"the heart {CANARY}"],
            "label": ["neo", "cardio"],
        }
    )
    corpus_file = corpus / "holdout.parquet"
    df.to_parquet(corpus_file)
    corpus_file.chmod(0o600)
    db = ws / "bedside.db"
    db.write_text("SQLite format 3 SECRET-DB")
    db.chmod(0o600)
    job = ws / "jobs" / "1"
    (job / "inputs").mkdir(parents=True)
    (ws / "jobs").chmod(0o700)
    job.chmod(0o755)
    (job / "inputs").chmod(0o755)
    df[["row_id", "text"]].to_parquet(job / "inputs" / "holdout_texts.parquet")
    (job / "inputs" / "holdout_texts.parquet").chmod(0o644)
    spec = JobSpec(job_id=1, kind="phase1", model_kind="encoder", manifest={}, classes=[])
    spec.write(job)
    (job / "spec.json").chmod(0o644)
    return JobDir(ws=ws, job=job, spec=spec, corpus_file=corpus_file, db_file=db)


def result_code(body: str) -> str:
    """Wrap test code: ``r`` is a dict the body fills; it is printed as ``RESULT {...}``."""
    indented = "\n".join("    " + ln for ln in body.strip().splitlines())
    return (
        "import json, os, socket, sys\n"
        "r = {}\n"
        "def attempt(name, fn):\n"
        "    try:\n"
        "        r[name] = ['ok', repr(fn())[:200]]\n"
        "    except BaseException as e:\n"
        "        r[name] = ['denied', type(e).__name__ + ': ' + str(e)[:200]]\n"
        "try:\n"
        f"{indented}\n"
        "finally:\n"
        "    print('RESULT ' + json.dumps(r), flush=True)\n"
    )
