"""A fast stand-in for the engine, for tests and benchmarks of the job path (never by policy).

Run by a real launcher through its ``test_command`` (so it goes through the real sandbox):
``python -m bedside.testing.standin JOB_DIR [SECONDS]``. It writes what a real job writes
(uniform predictions for every holdout row, progress, compute) after ``SECONDS`` of "training";
phase 2 marks a complete checkpoint half-way and, started again, resumes from it (its first
progress record is then step 1, in stage ``resume``, instead of step 0).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq


def main(argv: list[str]) -> int:
    job = Path(argv[0])
    seconds = float(argv[1]) if len(argv) > 1 else 0.0
    spec = json.loads((job / "spec.json").read_text())
    out, ckpt = job / spec["out"], job / spec["checkpoints"]
    out.mkdir(exist_ok=True)
    done = ckpt / "checkpoint-1" / "COMPLETE"
    resumed = spec["kind"] == "phase2" and done.exists()
    with (out / "progress.jsonl").open("a") as f:
        if resumed:
            f.write(
                json.dumps({"ts": time.time(), "stage": "resume", "step": 1, "total": 2}) + "\n"
            )
        else:
            f.write(json.dumps({"ts": time.time(), "stage": "train", "step": 0, "total": 2}) + "\n")
            f.flush()
            time.sleep(seconds / 2)
            if spec["kind"] == "phase2":
                done.parent.mkdir(parents=True, exist_ok=True)
                done.write_text("1")
        f.flush()
        time.sleep(seconds / 2)
        f.write(json.dumps({"ts": time.time(), "stage": "predict", "step": 2, "total": 2}) + "\n")
    rows = pq.read_table(job / spec["holdout_texts"], columns=["row_id"]).column(0).to_pylist()
    names = [c["name"] for c in spec["classes"]]
    k = len(names)
    probs = [[1 / k] * k for _ in rows]
    (out / "predictions.json").write_text(
        json.dumps({"classes": names, "row_ids": rows, "probs": probs})
    )
    (out / "compute.json").write_text(
        json.dumps({"flops": 1e12, "wall_s": seconds, "peak_rss_mb": 1.0})
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
