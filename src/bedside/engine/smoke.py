"""``bedside check``: a vendor's self-check of a bundle, with no workspace and no real data.

Builds a tiny synthetic 5-class corpus, then runs phase 1 and a few phase-2 steps through the
real entrypoint in a plain subprocess (not sandboxed: the vendor runs their own bundle).

Example::

    smoke_check(Path("my-bundle"), manifest, Path("/tmp/check"))
    # {"phase1": {"ok": True, "seconds": 4.1, "error": None}, "phase2": {...}}
"""

from __future__ import annotations

import copy
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

CLASSES = {
    "neoplasms": "tumour carcinoma chemotherapy metastasis lymphoma malignant",
    "digestive system diseases": "colon liver gastric bowel hepatic pancreatitis",
    "nervous system diseases": "seizure stroke neuropathy brain epilepsy dementia",
    "cardiovascular diseases": "cardiac heart artery hypertension coronary infarction",
    "general pathological conditions": "infection inflammation fever sepsis syndrome shock",
}
_FILLER = [
    "patients",
    "study",
    "results",
    "conclusion",
    "methods",
    "background",
    "randomized",
    "trial",
    "cohort",
    "outcome",
]


def synthetic_corpus(n: int = 60, seed: int = 0) -> pd.DataFrame:
    """``n`` short abstracts (row_id, text, label): filler words plus keywords of the class."""
    rng = random.Random(seed)
    names = list(CLASSES)
    rows = []
    for i in range(n):
        label = names[i % len(names)]
        words = rng.sample(_FILLER, 6) + rng.sample(CLASSES[label].split(), 3)
        rng.shuffle(words)
        rows.append({"row_id": f"s{i}", "text": " ".join(words).capitalize() + ".", "label": label})
    return pd.DataFrame(rows)


def _job(
    work: Path, name: str, bundle: Path, kind: str, manifest: dict[str, Any], corpus: pd.DataFrame
) -> Path:
    from bedside.jobs.spec import JobSpec

    job = work / name
    if job.exists():  # stale checkpoints from an earlier check would be resumed from
        shutil.rmtree(job)
    (job / "inputs").mkdir(parents=True)
    (job / "bundle").symlink_to(Path(bundle).resolve())
    train, hold = corpus.iloc[:40], corpus.iloc[40:]
    if kind == "phase2":
        train.to_parquet(job / "inputs" / "train.parquet", index=False)
    hold[["row_id", "text"]].to_parquet(job / "inputs" / "holdout_texts.parquet", index=False)
    classes = [{"id": str(i + 1), "name": c, "description": c} for i, c in enumerate(CLASSES)]
    model_kind = str(manifest.get("kind", "encoder"))
    JobSpec(
        job_id=0,
        kind=kind,
        model_kind=model_kind,
        manifest=manifest,
        classes=classes,
        threads=2,
        checkpoint_every=2,
    ).write(job)
    return job


def _run(job: Path, timeout: float) -> dict[str, Any]:
    t0 = time.monotonic()
    try:
        res = subprocess.run(
            [sys.executable, "-m", "bedside.engine.entrypoint", str(job)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {
            "ok": False,
            "seconds": round(time.monotonic() - t0, 2),
            "error": f"timed out after {timeout:.0f} s",
        }
    secs = round(time.monotonic() - t0, 2)
    if res.returncode == 0 and (job / "out" / "predictions.json").is_file():
        return {"ok": True, "seconds": secs, "error": None}
    err = job / "out" / "error.json"
    if err.is_file():
        e = json.loads(err.read_text())
        msg = f"{e.get('error_class')}: {e.get('message')}"
    else:
        tail = (res.stderr or "").strip().splitlines()[-1:]
        msg = tail[0] if tail else f"exit code {res.returncode}"
    return {"ok": False, "seconds": secs, "error": msg}


def smoke_check(
    bundle_dir: Path, manifest: dict[str, Any], work_dir: Path, timeout: float = 600
) -> dict[str, Any]:
    """Run phase 1 and ~3 phase-2 steps on a synthetic corpus; say what worked."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    corpus = synthetic_corpus()
    m1 = copy.deepcopy(manifest)
    m1.setdefault("train", {})["max_length"] = min(int(m1["train"].get("max_length", 64) or 64), 64)
    m2 = copy.deepcopy(m1)
    # 40 train rows, 10% validation, batch 12 -> 3 optimiser steps in one epoch
    m2["train"].update({"epochs": 1, "batch_size": 12, "validation_fraction": 0.1})
    out: dict[str, Any] = {}
    out["phase1"] = _run(_job(work_dir, "phase1", bundle_dir, "phase1", m1, corpus), timeout)
    out["phase2"] = _run(_job(work_dir, "phase2", bundle_dir, "phase2", m2, corpus), timeout)
    return out
