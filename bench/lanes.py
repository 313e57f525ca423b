"""Jobs side by side vs one job with every core: the throughput behind the demo's two lanes.

One process with ``--cores`` torch threads runs ``--reps`` forward passes of a batch (32 x 128
tokens by default) through an encoder; then ``--cores`` processes with one thread each run the
same passes at the same time. Printed: seconds per batch for each, and the aggregate throughput
of the side-by-side processes as a multiple of the single one (above 1: lanes pay).

    python bench/lanes.py                  # all-mpnet-base-v2 if installed, else MiniLM
    python bench/lanes.py --model minilm --reps 5
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time


def one(model: str, threads: int, reps: int, batch: int, length: int) -> float:
    """Seconds per batch in this process with ``threads`` torch threads."""
    import torch
    from transformers import AutoModel

    from bedside.demo.pretrained import minilm_dir, mpnet_dir

    torch.set_num_threads(threads)
    path = mpnet_dir() if model == "mpnet" else minilm_dir()
    if path is None:
        raise SystemExit(f"{model} is not installed: run scripts/setup.sh")
    m = AutoModel.from_pretrained(str(path)).eval()
    x = torch.randint(1000, 5000, (batch, length))
    with torch.inference_mode():
        m(input_ids=x)  # warm-up
        t = time.perf_counter()
        for _ in range(reps):
            m(input_ids=x)
    return (time.perf_counter() - t) / reps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=("mpnet", "minilm"), default=None)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--length", type=int, default=128)
    ap.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.model is None:
        from bedside.demo.pretrained import mpnet_parts

        a.model = "mpnet" if mpnet_parts() is not None else "minilm"
    if a.child:
        print(one(a.model, a.child, a.reps, a.batch, a.length))
        return
    args = [sys.executable, __file__, "--model", a.model, "--reps", str(a.reps)]
    args += ["--batch", str(a.batch), "--length", str(a.length)]

    def child(threads: int) -> subprocess.Popen[str]:
        cmd = [*args, "--child", str(threads)]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    single = float(child(a.cores).communicate()[0].split()[-1])
    procs = [child(1) for _ in range(a.cores)]
    lanes = [float(p.communicate()[0].split()[-1]) for p in procs]
    ratio = sum(1.0 / s for s in lanes) / (1.0 / single)
    print(f"{a.model}, {a.batch} x {a.length} tokens, {a.reps} reps")
    print(f"one process, {a.cores} threads: {single:.2f} s a batch")
    print(f"{a.cores} processes, 1 thread each: " + ", ".join(f"{s:.2f}" for s in lanes) + " s")
    print(f"side by side / one process: {ratio:.2f}x the batches per second")
    print(json.dumps({"single_s": single, "lanes_s": lanes, "ratio": round(ratio, 3)}))


if __name__ == "__main__":
    main()
