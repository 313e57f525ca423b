"""A workspace whose submission finished phase 2 (a tiny random classifier, its holdout
predictions constructed so that thresholds have known effects), ready to deploy."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from bedside.workspace import Workspace
from tests.jobs.support import CLASSES, make_workspace


@dataclass
class Finished:
    ws: Workspace
    submission_id: int
    phase2_job: int
    token: str | None = None


def finish_phase2(ws: Workspace, sub: int, jobs: list[int]) -> None:
    """Mark both phases done through the queue, leave a saved model in phase 2's out/model and
    record a phase-2 result whose probabilities favour the true class."""
    from bedside.data.corpus import load_corpus
    from bedside.evaluation.baseline import score_on_holdout
    from bedside.evaluation.results import record_result
    from bedside.jobs.queue import SqlQueue

    q = SqlQueue(ws.store)
    for j in jobs:
        assert q.claim_job(j, "test", 60) is not None
        assert q.complete(j, "test")
    bundle = next(ws.bundles_dir.iterdir())
    model = ws.jobs_dir / str(jobs[1]) / "out" / "model"
    model.mkdir(parents=True)
    for f in bundle.iterdir():
        if f.name != "bedside.toml":
            shutil.copyfile(f, model / f.name)
    windows = {"max_length": 32, "windows": 1, "stride": None, "pooling": "mean"}
    (model / "decision.json").write_text(
        json.dumps(
            {"rule": "argmax", "offsets": [0.0] * 3, "classes": list(CLASSES), "windows": windows}
        )
    )
    corpus = load_corpus(ws)
    rng = np.random.default_rng(0)
    y = np.array([CLASSES.index(c) for c in corpus.holdout["label"]])
    probs = rng.dirichlet(np.ones(3), size=len(y)) * 0.5
    probs[np.arange(len(y)), y] += 0.5
    record_result(
        ws,
        corpus=corpus,
        phase=2,
        model_label="model-classifier",
        metrics=score_on_holdout(corpus, probs, resamples=100),
        provenance={"bundle_hash": "classifier-bundle-hash", "recipe": {"method": "full"}},
        probs=probs,
        row_ids=[str(r) for r in corpus.holdout["row_id"]],
        submission_id=sub,
        job_id=jobs[1],
    )


@pytest.fixture
def finished(tmp_path: Path) -> Finished:
    ws, sub, jobs = make_workspace(tmp_path / "ws", bundle="classifier", n_train=48, n_holdout=60)
    finish_phase2(ws, sub, jobs)
    return Finished(ws, sub, jobs[1])


def write_csv(
    path: Path, texts: list[str], ids: list[str] | None = None, **cols: list[str]
) -> Path:
    import pandas as pd

    df = pd.DataFrame({"text": texts, **({"row_id": ids} if ids is not None else {}), **cols})
    df.to_csv(path, index=False)
    return path
