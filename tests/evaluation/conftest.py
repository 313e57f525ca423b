"""Fixtures for the evaluation tests: a workspace with a small, separable, imbalanced corpus."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bedside.data.corpus import ClassInfo, group_key, write_version_files
from bedside.store import schema
from bedside.store.store import utcnow
from bedside.workspace import Workspace
from tests.store.seed import insert_contributor

CLASSES = [
    ClassInfo("1", "neoplasms", "tumours and cancers"),
    ClassInfo("2", "digestive system diseases", "gut, liver, pancreas"),
    ClassInfo("3", "nervous system diseases", "brain, nerves"),
    ClassInfo("4", "cardiovascular diseases", "heart and vessels"),
    ClassInfo("5", "general pathological conditions", "everything else"),
]
KEYWORDS = [
    ["tumor", "carcinoma", "metastasis", "chemotherapy", "oncology", "lymphoma"],
    ["liver", "colon", "gastric", "hepatic", "pancreatitis", "bowel"],
    ["brain", "neuron", "seizure", "cerebral", "epilepsy", "spinal"],
    ["heart", "cardiac", "artery", "hypertension", "coronary", "aortic"],
    ["infection", "inflammation", "fever", "sepsis", "syndrome", "chronic"],
]
SHARES = [0.3, 0.1, 0.15, 0.2, 0.25]
NOISE = [
    "patient",
    "study",
    "results",
    "clinical",
    "treatment",
    "group",
    "analysis",
    "method",
    "year",
    "age",
]


def synthetic_frame(n: int, seed: int, prefix: str) -> pd.DataFrame:
    """Texts of 8-60 words: mostly shared noise words plus a few class keywords (separable)."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(len(CLASSES), size=n, p=SHARES)
    rows = []
    for i, y in enumerate(labels):
        n_words = int(rng.integers(8, 60))
        words = list(rng.choice(NOISE, size=n_words))
        for _ in range(max(2, n_words // 8)):
            words[int(rng.integers(0, n_words))] = str(rng.choice(KEYWORDS[y]))
        text = f"{prefix} {i} " + " ".join(words)
        rows.append(
            {
                "row_id": f"{prefix}{i}",
                "text": text,
                "label": CLASSES[y].name,
                "group": group_key(text),
            }
        )
    return pd.DataFrame(rows)


def add_corpus(
    ws: Workspace,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    report: dict[str, Any] | None = None,
    digest: str = "a" * 64,
) -> int:
    """Store a corpus version and make it the active one; returns its id."""
    rel = f"corpora/{digest}"
    write_version_files(ws.root / rel, train, holdout, CLASSES)
    with ws.store.write() as conn:
        conn.execute(schema.corpus_versions.update().values(active=False))
        return int(
            conn.execute(
                schema.corpus_versions.insert().values(
                    hash=digest,
                    created_at=utcnow(),
                    path=rel,
                    n_train=len(train),
                    n_holdout=len(holdout),
                    classes=[c.to_dict() for c in CLASSES],
                    split={"method": "test"},
                    source={"file": "synthetic"},
                    report=report if report is not None else {"eda": {"length_terciles": [20, 40]}},
                    active=True,
                )
            ).inserted_primary_key[0]
        )


@pytest.fixture
def corpus_ws(ws: Workspace) -> Workspace:
    """A workspace with an active synthetic corpus (300 train rows, 150 holdout rows)."""
    add_corpus(ws, synthetic_frame(300, 1, "t"), synthetic_frame(150, 2, "h"))
    return ws


@pytest.fixture
def make_submission(ws: Workspace) -> Callable[[int], tuple[int, int]]:
    """Insert a contributor, a submission and a phase-1 job on a corpus version; returns
    (submission_id, job_id)."""

    made = []

    def make(corpus_version_id: int) -> tuple[int, int]:
        now = utcnow()
        made.append(corpus_version_id)
        with ws.store.write() as conn:
            cid = insert_contributor(
                conn, f"vendor-{len(made)}", budget_pflops=1.0, token_prefix="bsc_x", created_at=now
            )
            sid = conn.execute(
                schema.submissions.insert().values(
                    contributor_id=cid,
                    bundle_hash="b" * 64,
                    name="tiny model",
                    kind="encoder",
                    status="done",
                    counted=True,
                    corpus_version_id=corpus_version_id,
                    created_at=now,
                    manifest={},
                    estimate={},
                    meta={},
                )
            ).inserted_primary_key[0]
            jid = conn.execute(
                schema.jobs.insert().values(
                    submission_id=sid,
                    corpus_version_id=corpus_version_id,
                    kind="phase1",
                    state="done",
                    attempts=1,
                    max_attempts=3,
                    spec={},
                    progress={},
                    created_at=now,
                )
            ).inserted_primary_key[0]
        return int(sid), int(jid)

    return make
