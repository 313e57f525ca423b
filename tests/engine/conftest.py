"""Tiny corpora, tiny random bundles and job directories for the engine tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bedside.jobs.spec import JobSpec
from bedside.testing.tinymodels import DEFAULT_CLASSES, default_manifest, make_tiny_bundle

KEYWORDS = {
    "neoplasms": "tumour carcinoma chemotherapy metastasis lymphoma",
    "digestive system diseases": "colon liver gastric bowel hepatic",
    "nervous system diseases": "seizure stroke neuropathy brain epilepsy",
    "cardiovascular diseases": "cardiac heart artery hypertension coronary",
    "general pathological conditions": "infection inflammation fever sepsis syndrome",
}
FILLER = [
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
CANARY = "zzcanarylabelzz"  # appears only in the hidden holdout labels, never in a job dir


def make_corpus(n_per_class: int, seed: int = 0, start: int = 0) -> pd.DataFrame:
    """Short texts: filler words plus two or three keywords of the text's class."""
    rng = np.random.default_rng(seed)
    rows = []
    for c, words in KEYWORDS.items():
        kw = words.split()
        for _ in range(n_per_class):
            toks = list(rng.choice(FILLER, size=int(rng.integers(4, 12))))
            toks += list(rng.choice(kw, size=int(rng.integers(2, 4))))
            rng.shuffle(toks)
            rows.append({"text": " ".join(toks), "label": c})
    df = pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    df.insert(0, "row_id", [f"r{start + i}" for i in range(len(df))])
    return df


def classes() -> list[dict[str, str]]:
    return [
        {"id": str(i + 1), "name": c, "description": f"{c}: {KEYWORDS[c]}"}
        for i, c in enumerate(DEFAULT_CLASSES)
    ]


@pytest.fixture(scope="session")
def corpora() -> tuple[pd.DataFrame, pd.DataFrame]:
    return make_corpus(30, seed=1), make_corpus(12, seed=2, start=10_000)


@pytest.fixture(scope="session")
def bundles(tmp_path_factory: pytest.TempPathFactory, corpora: Any) -> dict[str, Path]:
    """One tiny random bundle per kind, built once per session."""
    root = tmp_path_factory.mktemp("bundles")
    texts = pd.concat(corpora)["text"].tolist() + list(KEYWORDS) + list(KEYWORDS.values())
    # hidden=64: a 32-wide random BERT learns the keyword task too slowly for a quick test
    return {
        k: make_tiny_bundle(root / k, kind=k, texts=texts, hidden=64 if k != "causal-lm" else 32)
        for k in ("encoder", "classifier", "causal-lm")
    }


def build_job(
    root: Path,
    bundle: Path,
    model_kind: str,
    kind: str,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    train_overrides: dict[str, Any] | None = None,
    **spec_kw: Any,
) -> Path:
    """A job directory as the pipeline would prepare it (holdout TEXTS only)."""
    job = root
    (job / "inputs").mkdir(parents=True)
    (job / "bundle").symlink_to(bundle)
    if kind == "phase2":
        train.to_parquet(job / "inputs" / "train.parquet", index=False)
    holdout[["row_id", "text"]].to_parquet(job / "inputs" / "holdout_texts.parquet", index=False)
    manifest = default_manifest(model_kind, f"tiny-{model_kind}", list(DEFAULT_CLASSES))
    manifest["train"].update(train_overrides or {})
    JobSpec(
        job_id=1, kind=kind, model_kind=model_kind, manifest=manifest, classes=classes(), **spec_kw
    ).write(job)
    return job


@pytest.fixture
def clean_env() -> Iterator[None]:
    """The entrypoint rewrites os.environ (offline flags, caches): put it back after an in-process run."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def run_inprocess(job: Path) -> int:
    from bedside.engine.entrypoint import main

    return main([str(job)])


def run_subprocess(job: Path, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bedside.engine.entrypoint", str(job)],
        capture_output=True,
        text=True,
        timeout=300,
        **kw,
    )


def read_preds(job: Path) -> dict[str, Any]:
    return json.loads((job / "out" / "predictions.json").read_text())


def accuracy(job: Path, holdout: pd.DataFrame) -> float:
    p = read_preds(job)
    truth = dict(zip(holdout["row_id"], holdout["label"], strict=True))
    pred = [p["classes"][int(np.argmax(r))] for r in p["probs"]]
    return float(np.mean([truth[r] == c for r, c in zip(p["row_ids"], pred, strict=True)]))
