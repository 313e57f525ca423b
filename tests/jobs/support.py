"""Builders for job tests: a workspace with a tiny corpus, a contributor and a submission,
written straight into the store (no intake), so that the queue, worker and sandbox are tested
on their own."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pandas as pd

from bedside.config import JobLimits, Policy
from bedside.data.corpus import ClassInfo, group_key, write_version_files
from bedside.jobs.queue import enqueue_for_submission
from bedside.store import schema
from bedside.store.store import utcnow
from bedside.workspace import Workspace
from tests.store.seed import insert_contributor

CLASSES = ("neoplasms", "digestive system diseases", "cardiovascular diseases")
VOCAB = {
    "neoplasms": [
        "tumour",
        "carcinoma",
        "chemotherapy",
        "metastasis",
        "oncology",
        "lymphoma",
        "biopsy",
    ],
    "digestive system diseases": [
        "colon",
        "liver",
        "gastric",
        "bowel",
        "hepatic",
        "pancreas",
        "colitis",
    ],
    "cardiovascular diseases": [
        "cardiac",
        "heart",
        "artery",
        "hypertension",
        "coronary",
        "infarction",
        "stroke",
    ],
}
COMMON = [
    "patients",
    "study",
    "results",
    "conclusion",
    "methods",
    "background",
    "randomized",
    "trial",
]


def corpus_frames(
    n_train: int, n_holdout: int, canary: str | None = None, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = random.Random(seed)
    rows = []
    for i in range(n_train + n_holdout):
        label = CLASSES[i % len(CLASSES)]
        words = [rng.choice(VOCAB[label]) for _ in range(6)] + [
            rng.choice(COMMON) for _ in range(6)
        ]
        rng.shuffle(words)
        text = " ".join(words) + f" case {i}"
        if canary and i == n_train:  # the first holdout row
            text += f" {canary}"
        rows.append({"row_id": f"r{i:05d}", "text": text, "label": label, "group": group_key(text)})
    df = pd.DataFrame(rows)
    return df.iloc[:n_train].reset_index(drop=True), df.iloc[n_train:].reset_index(drop=True)


def test_policy(**limits: Any) -> Policy:
    lim = {
        "cpus": 1,
        "memory_gb": 3.0,
        "wall_time_s": 120,
        "output_quota_mb": 256,
        "pids": 256,
        **limits,
    }
    return Policy(limits=JobLimits(**lim), bootstrap_resamples=100)


def make_workspace(
    root: Path,
    *,
    n_train: int = 48,
    n_holdout: int = 24,
    canary: str | None = None,
    bundle: str = "fake",
    budget_pflops: float = 300.0,
    spec: dict[str, Any] | None = None,
    train: dict[str, Any] | None = None,
    policy: Policy | None = None,
) -> tuple[Workspace, int, list[int]]:
    """A workspace with one corpus version, one contributor and one submission whose phase 1 and
    phase 2 jobs are queued. ``bundle``: "fake" (a dummy dir, for FakeLauncher) or "encoder" (a
    tiny random BERT the real engine can run)."""
    ws, _token = Workspace.init(root)
    ws.set_policy(policy or test_policy())
    train_df, hold_df = corpus_frames(n_train, n_holdout, canary)
    classes = [ClassInfo(str(i), c, f"about {c}") for i, c in enumerate(CLASSES)]
    rel = "corpora/v1"
    write_version_files(ws.root / rel, train_df, hold_df, classes)
    bundle_hash = f"{bundle}-bundle-hash"
    bdir = ws.bundles_dir / bundle_hash
    manifest: dict[str, Any]
    if bundle == "fake":
        bdir.mkdir(parents=True)
        (bdir / "bedside.toml").write_text('name = "fake"\n')
        (bdir / "bedside.toml").chmod(0o600)
        manifest = {
            "name": "fake",
            "kind": "encoder",
            "phase1": {"method": "similarity"},
            "train": {"method": "full"},
        }
    else:
        from bedside.testing.tinymodels import default_manifest, make_tiny_bundle

        tr = {"epochs": 2, "batch_size": 8, "max_length": 32, **(train or {})}
        make_tiny_bundle(
            bdir,
            kind=bundle,
            texts=list(train_df["text"]),
            classes=CLASSES,
            manifest_overrides={"train": tr},
            hidden=16,
            layers=1,
        )
        manifest = default_manifest(bundle, f"tiny-{bundle}", CLASSES)
        manifest["train"].update(tr)
    with ws.store.write() as conn:
        cv = conn.execute(
            schema.corpus_versions.insert().values(
                hash="c0ffee" * 10 + "abcd",
                created_at=utcnow(),
                path=rel,
                n_train=n_train,
                n_holdout=n_holdout,
                classes=[c.to_dict() for c in classes],
                split={},
                source={},
                report={},
                active=True,
            )
        ).inserted_primary_key[0]
        con = insert_contributor(
            conn, "vendor", budget_pflops=budget_pflops, token_prefix="bsc_test"
        )
        sub = conn.execute(
            schema.submissions.insert().values(
                contributor_id=con,
                bundle_hash=bundle_hash,
                name=f"model-{bundle}",
                kind=manifest["kind"],
                status="accepted",
                counted=True,
                corpus_version_id=cv,
                created_at=utcnow(),
                manifest=manifest,
                estimate={"phase1": 0.001, "phase2": 0.01, "total": 0.011},
                meta={},
            )
        ).inserted_primary_key[0]
        jobs = enqueue_for_submission(conn, int(sub), int(cv))
        if spec:
            conn.execute(schema.jobs.update().where(schema.jobs.c.id.in_(jobs)).values(spec=spec))
    return ws, int(sub), jobs


def job_row(ws: Workspace, job_id: int) -> dict[str, Any]:
    from sqlalchemy import select

    with ws.store.read() as conn:
        return dict(
            conn.execute(select(schema.jobs).where(schema.jobs.c.id == job_id)).mappings().one()
        )


def submission_row(ws: Workspace, sub_id: int) -> dict[str, Any]:
    from sqlalchemy import select

    with ws.store.read() as conn:
        return dict(
            conn.execute(select(schema.submissions).where(schema.submissions.c.id == sub_id))
            .mappings()
            .one()
        )


def contributor_used(ws: Workspace) -> float:
    from sqlalchemy import select

    with ws.store.read() as conn:
        return float(conn.execute(select(schema.contributors.c.used_pflops)).scalar() or 0.0)
