"""Screening memory at volume: peak RSS of staging and of the screen job, 20,000 vs 2,000,000 rows.

Writes a CSV of short texts (``row_id,text``, about 70 bytes a row: ~140 MB for 2 million) in a
temporary directory (deleted after), then, each in a fresh process so that peak RSS is its own:

- **stage**: ``screening.inputs.stage_input`` (the path ``bedside screen`` takes first): chunked
  CSV read, checks, parquet row groups;
- **screen**: ``engine.screen.run`` (the sandboxed job's code) with a tiny random classifier over
  the staged parquet, stopped after ``--screen-rows`` rows (predicting 2 million texts on 2 cores
  takes too long for a benchmark; the file is still opened and streamed from its start).

Prints rows, seconds, rows/s, peak RSS (``resource.getrusage``) and the peak's growth over the
process's RSS after imports, and the 2M/20k ratio of that growth.

    python bench/screen_memory.py                  # 20,000 and 2,000,000 rows
    python bench/screen_memory.py --quick          # 20,000 and 200,000 rows
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
WORDS = ["liver", "tumour", "cardiac", "nerve", "patients", "study", "bowel", "artery", "trial"]


def rss_mb() -> float:
    """Peak RSS of this process so far, MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def write_csv(path: Path, n: int) -> int:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["row_id", "text"])
        for i in range(n):
            a, b, c = WORDS[i % 9], WORDS[(i // 9) % 9], WORDS[(i // 81) % 9]
            w.writerow([f"id{i}", f"{a} {b} {c} abstract number {i} of the screening file"])
    return path.stat().st_size


class StopAfter(Exception):
    pass


class CutoffProgress:
    """The job's progress hook; raises once ``limit`` rows are done (the optional cut-off)."""

    def __init__(self, limit: int) -> None:
        self.limit, self.done = limit, 0

    def start(self, stage: str, total: int, step: int = 0) -> None:
        pass

    def update(self, done: int, total: int, **_: Any) -> None:
        self.done = done
        if done >= self.limit:
            raise StopAfter

    def finish(self) -> None:
        pass


def child(phase: str, src: Path, work: Path, screen_rows: int) -> dict[str, Any]:
    import numpy as np  # noqa: F401  (imports counted in the base, not the growth)
    import pandas  # noqa: F401
    import pyarrow.parquet as pq

    from bedside.screening.inputs import stage_input

    classes = ["neoplasms", "digestive system diseases", "nervous system diseases"]
    if phase == "stage":
        base = current_mb()
        t0 = time.perf_counter()
        staged = stage_input(src, work / "run", classes=classes)
        secs = time.perf_counter() - t0
        rows, chunks = staged.n_rows, staged.chunks
    else:
        import torch

        sys.path.insert(0, str(BENCH))
        from screen_speed import job_context, tiny_model

        from bedside.engine import screen

        torch.set_num_threads(os.cpu_count() or 1)
        job = work / "job"
        (job / "inputs").mkdir(parents=True, exist_ok=True)
        target = job / "inputs" / "screen.parquet"
        target.unlink(missing_ok=True)
        target.symlink_to(work / "run" / "screen.parquet")
        model, bundle, kind = tiny_model(work, ["liver tumour nerve study"] * 50, 32)
        ctx = job_context(job, model, bundle, kind, "torch", screen.DEFAULT_CHUNK, 2)
        ctx.progress = CutoffProgress(screen_rows)
        base = current_mb()
        t0 = time.perf_counter()
        with contextlib.suppress(StopAfter):
            screen.run(ctx)
        secs = time.perf_counter() - t0
        rows = ctx.progress.done
        chunks = pq.ParquetFile(target).metadata.num_row_groups
    peak = rss_mb()
    return {
        "phase": phase,
        "rows": rows,
        "chunks": chunks,
        "s": round(secs, 2),
        "rows_per_s": round(rows / secs) if secs else None,
        "base_mb": round(base, 1),
        "peak_mb": round(peak, 1),
        "growth_mb": round(peak - base, 1),
    }


def run_child(phase: str, src: Path, work: Path, screen_rows: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", phase, str(src), str(work), str(screen_rows)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--child":
        phase, src, work, rows = sys.argv[2:6]
        print(json.dumps(child(phase, Path(src), Path(work), int(rows))))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="20,000 and 200,000 rows")
    ap.add_argument("--rows", type=int, default=None, help="the large file (default 2,000,000)")
    ap.add_argument("--small", type=int, default=20_000)
    ap.add_argument("--screen-rows", type=int, default=2_048, help="screen cut-off (rows)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    big = args.rows or (200_000 if args.quick else 2_000_000)
    results = []
    with tempfile.TemporaryDirectory(prefix="bedside-screen-mem-") as tmp:
        for n in (args.small, big):
            work = Path(tmp) / str(n)
            work.mkdir()
            src = work / "screen.csv"
            t0 = time.perf_counter()
            size = write_csv(src, n)
            print(f"{n:,} rows: {size / 2**20:.0f} MB CSV in {time.perf_counter() - t0:.0f} s")
            for phase in ("stage", "screen"):
                r = run_child(phase, src, work, min(args.screen_rows, n))
                r["file_rows"], r["csv_mb"] = n, round(size / 2**20, 1)
                results.append(r)
                print(
                    f"  {phase:>6}: {r['rows']:>9,} rows in {r['s']:>6} s ({r['rows_per_s']:,}/s), "
                    f"{r['chunks']} chunks, peak RSS {r['peak_mb']} MB "
                    f"(+{r['growth_mb']} MB over {r['base_mb']} MB after imports)",
                    flush=True,
                )
            src.unlink()
    for phase in ("stage", "screen"):
        small, large = [r for r in results if r["phase"] == phase]
        ratio = large["peak_mb"] / small["peak_mb"]
        grow = large["growth_mb"] / max(small["growth_mb"], 1.0)
        print(
            f"{phase}: peak RSS {large['file_rows']:,} / {small['file_rows']:,} rows = "
            f"{ratio:.2f}x; growth ratio {grow:.2f}x"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
