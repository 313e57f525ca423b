"""Load and faults on the job path: throughput with 1, 2, 4 workers on SQLite and PostgreSQL and
with the Ray executor, exactly-once under SIGKILLed workers. Loopback only, bounded in count
and time. Every job runs a fast stand-in engine (bedside.testing.standin) through the real
tier-A sandbox, so the figures measure queue + staging + sandbox + scoring, not training.

    python bench/load.py --quick [--pg URL] [--ray ADDRESS]

--pg defaults to $BEDSIDE_TEST_POSTGRES, --ray to $BEDSIDE_TEST_RAY (scripts/services.sh start);
a backend without an address is left out and said so. Prints one line per run and a JSON line.
Checks after each run: every job done, each exactly one result, nothing lost.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bedside.config import JobLimits, Policy
from bedside.data.corpus import ClassInfo, group_key, write_version_files
from bedside.jobs.queue import enqueue_for_submission
from bedside.store import schema
from bedside.store.store import utcnow
from bedside.workspace import Workspace

CLASSES = ("neoplasms", "digestive system diseases", "cardiovascular diseases")
# seconds of stand-in "training" per job: BEDSIDE_BENCH_STANDIN_S (load_http's Ray node kill sets
# it, so the kill lands on tasks in flight)
STANDIN = [
    "{python}",
    "-m",
    "bedside.testing.standin",
    "{job}",
    os.environ.get("BEDSIDE_BENCH_STANDIN_S", "0"),
]


def fresh_pg_url(base: str) -> str:
    """A new database on the server at ``base`` for one run."""
    import sqlalchemy as sa

    name = f"bench_{secrets.token_hex(4)}"
    eng = sa.create_engine(
        base.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with eng.connect() as c:
        c.exec_driver_sql(f"CREATE DATABASE {name}")
    eng.dispose()
    return base.rsplit("/", 1)[0] + "/" + name


def seed_corpus(root: Path, db_url: str | None) -> tuple[Workspace, str, int]:
    """A workspace with the benchmark policy and a tiny active corpus; (workspace, owner token,
    corpus version id)."""
    import pandas as pd

    ws, owner = Workspace.init(root, db_url=db_url)
    ws.set_policy(
        Policy(
            limits=JobLimits(cpus=1, memory_gb=2.0, wall_time_s=60, output_quota_mb=64),
            bootstrap_resamples=100,
        )
    )
    rows = [
        {"row_id": f"r{i}", "text": f"case {i} {CLASSES[i % 3]}", "label": CLASSES[i % 3]}
        for i in range(36)
    ]
    for r in rows:
        r["group"] = group_key(r["text"])
    df = pd.DataFrame(rows)
    classes = [ClassInfo(str(i), c, c) for i, c in enumerate(CLASSES)]
    write_version_files(ws.root / "corpora/v1", df.iloc[:24], df.iloc[24:], classes)
    with ws.store.write() as conn:
        cv = conn.execute(
            schema.corpus_versions.insert().values(
                hash="be" * 32,
                created_at=utcnow(),
                path="corpora/v1",
                n_train=24,
                n_holdout=12,
                classes=[c.to_dict() for c in classes],
                split={},
                source={},
                report={},
                active=True,
            )
        ).inserted_primary_key[0]
    return ws, owner, int(cv)


def seed(root: Path, db_url: str | None, n_contributors: int, per: int) -> Workspace:
    """A workspace with a tiny corpus and ``n_contributors x per`` accepted submissions
    (2 jobs each)."""
    ws, _, cv = seed_corpus(root, db_url)
    bdir = ws.bundles_dir / "standin"
    bdir.mkdir(parents=True)
    (bdir / "bedside.toml").write_text('name = "standin"\n')
    manifest = {"name": "s", "kind": "encoder", "phase1": {"method": "similarity"}, "train": {}}
    with ws.store.write() as conn:
        for c in range(n_contributors):
            con = conn.execute(
                schema.contributors.insert().values(
                    name=f"vendor{c}",
                    token_salt="00",
                    token_hash=f"{c}",
                    token_prefix=f"bsc_{c:08d}",
                    max_submissions=per,
                    budget_pflops=1e6,
                    used_pflops=0.0,
                    revoked=False,
                    created_at=utcnow(),
                    meta={},
                )
            ).inserted_primary_key[0]
            for k in range(per):
                sub = conn.execute(
                    schema.submissions.insert().values(
                        contributor_id=con,
                        bundle_hash="standin",
                        name=f"m{c}-{k}",
                        kind="encoder",
                        status="accepted",
                        counted=True,
                        corpus_version_id=cv,
                        created_at=utcnow(),
                        manifest=manifest,
                        estimate={"phase1": 0.001, "phase2": 0.001, "total": 0.002},
                        meta={},
                    )
                ).inserted_primary_key[0]
                enqueue_for_submission(conn, int(sub), int(cv))
    return ws


def check(ws: Workspace) -> dict[str, int]:
    """Lost (not done) jobs, jobs with more than one result, results total."""
    j, r = schema.jobs, schema.results
    with ws.store.read() as conn:
        n_jobs = conn.execute(select(func.count()).select_from(j)).scalar_one()
        not_done = conn.execute(
            select(func.count()).select_from(j).where(j.c.state != "done")
        ).scalar_one()
        n_results = conn.execute(select(func.count()).select_from(r)).scalar_one()
        dup = conn.execute(
            select(func.count()).select_from(
                select(r.c.job_id).group_by(r.c.job_id).having(func.count() > 1).subquery()
            )
        ).scalar_one()
        attempts = conn.execute(select(func.sum(j.c.attempts))).scalar_one()
    return {
        "jobs": n_jobs,
        "not_done": not_done,
        "results": n_results,
        "run_twice_to_completion": dup,
        "attempts": int(attempts or 0),
    }


def worker_main(ws_root: str, ray_address: str | None) -> None:
    """One worker process (the fault runs SIGKILL these)."""
    from bedside.jobs.worker import Worker
    from bedside.sandbox.launch import BwrapLauncher

    ws = Workspace.open(Path(ws_root))
    launcher: Any
    if ray_address:
        from bedside.jobs.raylaunch import RayLauncher

        launcher = RayLauncher(ws.policy(), address=ray_address, test_command=STANDIN)
        conc = launcher.slots(ws.policy().limits)
    else:
        launcher, conc = BwrapLauncher(test_command=STANDIN), 1
    Worker(ws, launcher=launcher, concurrency=conc, lease_s=6, poll_s=0.2, baselines=False).run(
        once=True
    )


def run(
    label: str,
    ws: Workspace,
    workers: int,
    ray: str | None,
    kill_every_s: float | None,
    timeout_s: float,
) -> dict[str, Any]:
    """Start ``workers`` worker processes; optionally SIGKILL one every ``kill_every_s`` (and
    start a replacement); wait until every job is terminal."""
    cmd = [sys.executable, __file__, "_worker", str(ws.root), ray or ""]

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    t0 = time.monotonic()
    procs = [spawn() for _ in range(workers)]
    kills = 0
    next_kill = t0 + kill_every_s if kill_every_s else None
    j = schema.jobs
    while time.monotonic() - t0 < timeout_s:
        with ws.store.read() as conn:
            left = conn.execute(
                select(func.count()).select_from(j).where(j.c.state.in_(("queued", "running")))
            ).scalar_one()
        if left == 0:
            break
        if next_kill and time.monotonic() >= next_kill:
            victim = procs.pop(0)
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            kills += 1
            procs.append(spawn())
            next_kill = time.monotonic() + (kill_every_s or 0)
        for p in procs:  # a worker with --once exits when idle; keep the pool full
            if p.poll() is not None and left:
                procs.remove(p)
                procs.append(spawn())
                break
        time.sleep(0.5)
    wall = time.monotonic() - t0
    for p in procs:
        p.kill()
        p.wait()
    c = check(ws)
    res = {
        "run": label,
        "workers": workers,
        "wall_s": round(wall, 1),
        "jobs_per_min": round(c["jobs"] / wall * 60, 1),
        "sigkills": kills,
        **c,
    }
    print(
        f"{label:<28} workers={workers} jobs={c['jobs']} wall={wall:6.1f}s "
        f"{res['jobs_per_min']:6.1f} jobs/min lost={c['not_done']} twice={c['run_twice_to_completion']} "
        f"attempts={c['attempts']} sigkills={kills}",
        flush=True,
    )
    return res


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_worker":
        worker_main(sys.argv[2], sys.argv[3] or None)
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--quick", action="store_true", help="4 contributors x 2 submissions, 1-2 workers"
    )
    ap.add_argument("--contributors", type=int, default=100)
    ap.add_argument("--per", type=int, default=5)
    ap.add_argument("--pg", default=os.environ.get("BEDSIDE_TEST_POSTGRES"))
    ap.add_argument("--ray", default=os.environ.get("BEDSIDE_TEST_RAY"))
    ap.add_argument("--timeout", type=float, default=600)
    a = ap.parse_args()
    n_c, per, counts = (4, 2, (1, 2)) if a.quick else (a.contributors, a.per, (1, 2, 4))
    tmp = Path(tempfile.mkdtemp(prefix="bedside-load-"))
    backends: list[tuple[str, str | None]] = [("sqlite", None)]
    if a.pg:
        backends.append(("postgres", a.pg))
    else:
        print("postgres: left out (no --pg / BEDSIDE_TEST_POSTGRES)")
    out: list[dict[str, Any]] = []
    i = 0
    for name, base in backends:
        for w in counts:
            i += 1
            ws = seed(tmp / f"ws{i}", fresh_pg_url(base) if base else None, n_c, per)
            out.append(run(f"{name}", ws, w, None, None, a.timeout))
        i += 1
        ws = seed(tmp / f"ws{i}", fresh_pg_url(base) if base else None, n_c, per)
        out.append(run(f"{name} + SIGKILL every 5 s", ws, 2, None, 5.0, a.timeout))
    if a.ray:
        i += 1
        ws = seed(tmp / f"ws{i}", None, n_c, per)
        out.append(run("ray executor (sqlite)", ws, 1, a.ray, None, a.timeout))
    else:
        print("ray: left out (no --ray / BEDSIDE_TEST_RAY)")
    print(json.dumps({"bench": "load", "contributors": n_c, "per": per, "runs": out}))


if __name__ == "__main__":
    main()
