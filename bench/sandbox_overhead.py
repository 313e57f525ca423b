"""Sandbox overhead: the same phase-2 job (tiny random BERT, full fine-tune) run as a plain
subprocess and in the tier-A sandbox, interleaved, a few repetitions, medians; plus the bare
launch overhead of a trivial command.

    python bench/sandbox_overhead.py [--reps 3] [--n-train 240] [--epochs 2] [--launch-reps 20]

Prints a table and a JSON line. Needs root and bubblewrap for tier A (see `bedside sandbox probe`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bedside.config import JobLimits, Policy
from bedside.data.corpus import ClassInfo, group_key, write_version_files
from bedside.jobs.queue import enqueue_for_submission
from bedside.jobs.spec import JobSpec
from bedside.jobs.staging import prepare_job_dir
from bedside.sandbox.launch import BwrapLauncher, Launcher, PlainLauncher
from bedside.store import schema
from bedside.store.store import utcnow
from bedside.workspace import Workspace

CLASSES = ("neoplasms", "digestive system diseases", "cardiovascular diseases")
WORDS = {
    "neoplasms": [
        "tumour",
        "carcinoma",
        "chemotherapy",
        "metastasis",
        "oncology",
        "lymphoma",
        "biopsy",
    ],
    "digestive system diseases": [
        "colon",
        "liver",
        "gastric",
        "bowel",
        "hepatic",
        "pancreas",
        "colitis",
    ],
    "cardiovascular diseases": [
        "cardiac",
        "heart",
        "artery",
        "hypertension",
        "coronary",
        "infarction",
        "stroke",
    ],
}


def build(root: Path, n_train: int, n_holdout: int, epochs: int) -> tuple[Workspace, Path, JobSpec]:
    import random

    import pandas as pd

    from bedside.testing.tinymodels import default_manifest, make_tiny_bundle

    ws, _ = Workspace.init(root)
    limits = JobLimits(cpus=2, memory_gb=4.0, wall_time_s=3600, output_quota_mb=1024, pids=256)
    ws.set_policy(Policy(limits=limits, bootstrap_resamples=100))
    rng = random.Random(0)
    rows = []
    for i in range(n_train + n_holdout):
        label = CLASSES[i % 3]
        text = " ".join(
            rng.choice(WORDS[label] + ["patients", "study", "results"]) for _ in range(40)
        )
        rows.append(
            {"row_id": f"r{i}", "text": text, "label": label, "group": group_key(text + str(i))}
        )
    df = pd.DataFrame(rows)
    classes = [ClassInfo(str(i), c, c) for i, c in enumerate(CLASSES)]
    write_version_files(ws.root / "corpora/v1", df.iloc[:n_train], df.iloc[n_train:], classes)
    train = {"epochs": epochs, "batch_size": 16, "max_length": 64}
    make_tiny_bundle(
        ws.bundles_dir / "b",
        texts=list(df["text"]),
        classes=CLASSES,
        manifest_overrides={"train": train},
        hidden=64,
        layers=2,
    )
    manifest = default_manifest("encoder", "bench", CLASSES)
    manifest["train"].update(train)
    with ws.store.write() as conn:
        cv = conn.execute(
            schema.corpus_versions.insert().values(
                hash="b" * 64,
                created_at=utcnow(),
                path="corpora/v1",
                n_train=n_train,
                n_holdout=n_holdout,
                classes=[c.to_dict() for c in classes],
                split={},
                source={},
                report={},
                active=True,
            )
        ).inserted_primary_key[0]
        con = conn.execute(
            schema.contributors.insert().values(
                name="bench",
                token_salt="0",
                token_hash="0",
                token_prefix="bsc_bench",
                max_submissions=9,
                budget_pflops=1e6,
                used_pflops=0.0,
                revoked=False,
                created_at=utcnow(),
                meta={},
            )
        ).inserted_primary_key[0]
        sub = conn.execute(
            schema.submissions.insert().values(
                contributor_id=con,
                bundle_hash="b",
                name="bench",
                kind="encoder",
                status="accepted",
                counted=True,
                corpus_version_id=cv,
                created_at=utcnow(),
                manifest=manifest,
                estimate={"total": 1.0},
                meta={},
            )
        ).inserted_primary_key[0]
        _p1, p2 = enqueue_for_submission(conn, int(sub), int(cv))
        row = dict(
            conn.execute(schema.jobs.select().where(schema.jobs.c.id == p2)).mappings().one()
        )
    job_dir = prepare_job_dir(ws, row)
    return ws, job_dir, JobSpec.read(job_dir)


def fresh(job_dir: Path) -> None:
    """No resume between repetitions: empty out/ and checkpoints/."""
    for d in ("out", "checkpoints"):
        shutil.rmtree(job_dir / d, ignore_errors=True)
        (job_dir / d).mkdir()


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--n-train", type=int, default=240)
    ap.add_argument("--n-holdout", type=int, default=120)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--launch-reps", type=int, default=20)
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bedside-bench-"))
    try:
        ws, job_dir, spec = build(root / "ws", args.n_train, args.n_holdout, args.epochs)
        limits = ws.policy().limits
        launchers: dict[str, Launcher] = {
            "plain": PlainLauncher(),
            "sandbox (A)": BwrapLauncher(),
            "A, no cgroups": BwrapLauncher(use_cgroups=False),
        }

        trivial = {
            "plain": PlainLauncher(test_command=[sys.executable, "-S", "-c", "pass"], poll_s=0.002),
            "sandbox (A)": BwrapLauncher(
                test_command=[sys.executable, "-S", "-c", "pass"], poll_s=0.002
            ),
        }
        launch: dict[str, list[float]] = {k: [] for k in trivial}
        for _ in range(args.launch_reps):
            for name, lau in trivial.items():
                t0 = time.perf_counter()
                res = lau.launch(job_dir, spec, limits)
                launch[name].append(time.perf_counter() - t0)
                assert res.ok, res.log_tail

        walls: dict[str, list[float]] = {k: [] for k in launchers}
        inner: dict[str, list[float]] = {k: [] for k in launchers}
        for _ in range(args.reps):
            for name, lau in launchers.items():  # interleaved, so drift hits both alike
                fresh(job_dir)
                t0 = time.perf_counter()
                res = lau.launch(job_dir, spec, limits)
                walls[name].append(time.perf_counter() - t0)
                # the engine's own wall time (after imports): launch wall minus this is start-up
                inner[name].append(
                    float(json.loads((job_dir / "out" / "compute.json").read_text())["wall_s"])
                )
                if not res.ok:
                    raise SystemExit(f"{name} failed: {res.error_class}\n{res.log_tail[-3000:]}")
    finally:
        shutil.rmtree(root, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in walls.items()}
    imed = {k: statistics.median(v) for k, v in inner.items()}
    lmed = {k: statistics.median(v) for k, v in launch.items()}
    paired = [b - a for a, b in zip(walls["plain"], walls["sandbox (A)"], strict=True)]
    overhead = med["sandbox (A)"] - med["plain"]
    out = {
        "job": f"phase 2, tiny BERT (64 hidden, 2 layers), full fine-tune, {args.n_train} train rows, "
        f"{args.epochs} epochs",
        "reps": args.reps,
        "job_wall_s": {k: [round(x, 3) for x in v] for k, v in walls.items()},
        "job_median_s": {k: round(v, 3) for k, v in med.items()},
        "engine_wall_median_s": {k: round(v, 3) for k, v in imed.items()},
        "job_overhead_s": round(overhead, 3),
        "job_overhead_pct": round(100 * overhead / med["plain"], 2),
        "paired_overhead_median_s": round(statistics.median(paired), 3),
        "paired_overhead_median_pct": round(100 * statistics.median(paired) / med["plain"], 2),
        "launch_median_s": {k: round(v, 4) for k, v in lmed.items()},
        "launch_overhead_s": round(lmed["sandbox (A)"] - lmed["plain"], 4),
    }
    print(
        f"{'':14} {'job wall median s':>18} {'engine wall median s':>21} {'bare launch median s':>21}"
    )
    for k in walls:
        print(f"{k:14} {med[k]:18.3f} {imed[k]:21.3f} {lmed.get(k, float('nan')):21.4f}")
    print(
        f"sandbox overhead: {overhead:+.3f} s wall per job ({out['job_overhead_pct']:+.2f} %), "
        f"paired median {out['paired_overhead_median_pct']:+.2f} %, "
        f"{out['launch_overhead_s'] * 1000:+.1f} ms per bare launch"
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
