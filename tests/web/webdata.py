"""A workspace populated with realistic fabricated results, shared by the web tests.

``populate`` is called once per session (scoring takes a moment) and copied for every test:
a small synthetic corpus with a canary phrase in some abstracts and distinctive row ids, its EDA,
three vendors (acme, globex, initech) with scored phase-1/phase-2 results, stored predictions
(so ties use the paired bootstrap), training curves, one job still running, and the internal
baseline.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import select

from bedside.data.corpus import ClassInfo, group_key, write_version_files
from bedside.store import schema
from bedside.store.store import utcnow
from bedside.workspace import Workspace

CANARY = "zqx-canary-phrase-4411"
ROW_PREFIX = "rowid7c1e"
CLASSES = [
    "neoplasms",
    "digestive system diseases",
    "nervous system diseases",
    "cardiovascular diseases",
    "general pathological conditions",
]
# Per-class recall a fabricated model reaches (roughly), phase 1 -> phase 2.
MODELS = {
    "acme": [
        ("ClinBERT-small", [0.62, 0.35, 0.55, 0.66, 0.45], [0.90, 0.72, 0.86, 0.90, 0.70]),
        ("ClinBERT-small v2", [0.64, 0.40, 0.58, 0.68, 0.46], None),  # phase 2 still running
    ],
    "globex": [("MedMiniLM-LoRA", [0.55, 0.30, 0.50, 0.60, 0.40], [0.89, 0.70, 0.85, 0.90, 0.69])],
    "initech": [
        ("MiniLM head-only", [0.50, 0.25, 0.45, 0.55, 0.35], [0.74, 0.45, 0.66, 0.76, 0.52])
    ],
}
BASELINE = ("internal baseline (TF-IDF + LR)", [0.78, 0.52, 0.70, 0.80, 0.58])


@dataclass
class Populated:
    ws: Workspace
    owner: str
    tokens: dict[str, str]  # vendor -> token
    submissions: dict[str, list[int]]  # vendor -> submission ids
    jobs: dict[int, list[int]]  # submission id -> job ids
    results: dict[int, list[int]]  # submission id -> result ids

    def headers(self, who: str | None) -> dict[str, str]:
        if who is None:
            return {}
        token = self.owner if who == "owner" else self.tokens[who]
        return {"Authorization": f"Bearer {token}"}


def _corpus(n: int = 500, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    from bedside.data.synthetic import synthesize

    df = synthesize(n=n, seed=seed).reset_index(drop=True)
    df["row_id"] = [f"{ROW_PREFIX}-{i:05d}" for i in range(len(df))]
    canary_rows = df.index % 37 == 0
    df.loc[canary_rows, "text"] = df.loc[canary_rows, "text"] + f" {CANARY}."
    df["group"] = df["text"].map(group_key)
    holdout = df.index % 3 == 0
    return df[~holdout].reset_index(drop=True), df[holdout].reset_index(drop=True)


def _probs(labels: list[str], recall: list[float], rng: np.random.Generator) -> np.ndarray:
    k = len(CLASSES)
    out = np.zeros((len(labels), k))
    for i, lab in enumerate(labels):
        c = CLASSES.index(lab)
        p = rng.dirichlet(np.ones(k))
        if rng.random() < recall[c]:
            p[c] += 1.5
        else:
            p[(c + 1 + rng.integers(0, k - 1)) % k] += 1.5
        out[i] = p / p.sum()
    return out


def _insert_job(
    conn, submission_id: int | None, cv: int, kind: str, state: str, depends_on=None, **extra
) -> int:
    now = utcnow()
    values = dict(
        submission_id=submission_id,
        corpus_version_id=cv,
        kind=kind,
        state=state,
        depends_on=depends_on,
        attempts=1 if state != "queued" else 0,
        max_attempts=3,
        spec={},
        progress={},
        created_at=now,
        started_at=now if state != "queued" else None,
        finished_at=now if state in ("done", "failed") else None,
    )
    values.update(extra)
    return int(conn.execute(schema.jobs.insert().values(**values)).inserted_primary_key[0])


def populate(root: Path) -> Populated:
    from bedside.data.corpus import load_corpus
    from bedside.data.eda import eda_from_frames
    from bedside.evaluation.results import record_result
    from bedside.evaluation.scorer import score
    from bedside.submissions.contributors import add_contributor

    ws, owner = Workspace.init(root)
    train, holdout = _corpus()
    classes = [ClassInfo(id=str(i + 1), name=c, description=c) for i, c in enumerate(CLASSES)]
    version_hash = "c0ffee" + "0" * 58
    write_version_files(ws.corpora_dir / version_hash, train, holdout, classes)
    eda = eda_from_frames(train, holdout, CLASSES, k=10)
    with ws.store.write() as conn:
        cv = int(
            conn.execute(
                schema.corpus_versions.insert().values(
                    hash=version_hash,
                    created_at=utcnow(),
                    path=f"corpora/{version_hash}",
                    n_train=len(train),
                    n_holdout=len(holdout),
                    classes=[c.to_dict() for c in classes],
                    split={"method": "fabricated", "seed": 3},
                    source={"files": ["fabricated.csv"]},
                    report={"eda": eda},
                    active=True,
                )
            ).inserted_primary_key[0]
        )
    corpus = load_corpus(ws)
    labels = list(corpus.holdout["label"])
    row_ids = list(corpus.holdout["row_id"])
    words = corpus.holdout["text"].map(lambda t: len(t.split())).to_numpy()
    edges = eda["length_terciles"]
    rng = np.random.default_rng(11)

    def scored(recall: list[float], phase1: np.ndarray | None = None) -> tuple[dict, np.ndarray]:
        p = _probs(labels, recall, rng)
        m = score(labels, p, CLASSES, words, edges, resamples=200, seed=0, phase1_probs=phase1)
        return m, p

    with ws.store.write() as conn:
        base_job = _insert_job(conn, None, cv, "baseline", "done")
    m, p = scored(BASELINE[1])
    record_result(
        ws,
        corpus=corpus,
        phase=0,
        model_label=BASELINE[0],
        metrics=m,
        provenance={"compute": {"actual_pflops": 0.0004}, "tier": "trusted", "wall_s": 3.2},
        probs=p,
        row_ids=row_ids,
        job_id=base_job,
    )

    tokens: dict[str, str] = {}
    subs: dict[str, list[int]] = {}
    jobs: dict[int, list[int]] = {}
    results: dict[int, list[int]] = {}
    for vendor, models in MODELS.items():
        _rec, tokens[vendor] = add_contributor(ws, vendor, max_submissions=5, budget_pflops=300.0)
        contributor_id = _rec["id"]
        for name, r1, r2 in models:
            with ws.store.write() as conn:
                sid = int(
                    conn.execute(
                        schema.submissions.insert().values(
                            contributor_id=contributor_id,
                            bundle_hash=hashlib.sha256(name.encode()).hexdigest(),
                            name=name,
                            kind="encoder",
                            status="done" if r2 else "running",
                            counted=True,
                            corpus_version_id=cv,
                            created_at=utcnow(),
                            manifest={"name": name, "kind": "encoder"},
                            estimate={"phase1": 0.4, "phase2": 38.0, "total": 38.4},
                            meta={},
                        )
                    ).inserted_primary_key[0]
                )
                j1 = _insert_job(
                    conn,
                    sid,
                    cv,
                    "phase1",
                    "done",
                    progress={"stage": "predict", "step": 1, "total": 1},
                )
                running = {"stage": "train", "step": 120, "total": 300, "loss": 0.84, "eta_s": 420}
                j2 = _insert_job(
                    conn,
                    sid,
                    cv,
                    "phase2",
                    "done" if r2 else "running",
                    depends_on=j1,
                    progress={"stage": "done", "step": 300, "total": 300} if r2 else running,
                )
                steps = range(0, 301 if r2 else 121, 20)
                for step in steps:
                    data = {
                        "stage": "train",
                        "step": step,
                        "total": 300,
                        "loss": 1.6 * np.exp(-step / 110) + 0.25,
                    }
                    if step % 60 == 0 and step:
                        data["val_macro_f1"] = round(0.45 + 0.35 * (1 - np.exp(-step / 90)), 3)
                    conn.execute(
                        schema.job_events.insert().values(job_id=j2, ts=1.7e9 + step, data=data)
                    )
            subs.setdefault(vendor, []).append(sid)
            jobs[sid] = [j1, j2]
            m1, p1 = scored(r1)
            prov = {
                "compute": {"actual_pflops": 0.42, "estimated_pflops": 0.4},
                "tier": "A",
                "wall_s": 41.0,
            }
            rid1 = record_result(
                ws,
                corpus=corpus,
                phase=1,
                model_label=name,
                metrics=m1,
                provenance=prov,
                probs=p1,
                row_ids=row_ids,
                submission_id=sid,
                job_id=j1,
            )
            results[sid] = [rid1]
            if r2:
                m2, p2 = scored(r2, phase1=p1)
                prov2 = {
                    "compute": {"actual_pflops": 35.5, "estimated_pflops": 38.0},
                    "tier": "A",
                    "wall_s": 903.0,
                }
                rid2 = record_result(
                    ws,
                    corpus=corpus,
                    phase=2,
                    model_label=name,
                    metrics=m2,
                    provenance=prov2,
                    probs=p2,
                    row_ids=row_ids,
                    submission_id=sid,
                    job_id=j2,
                )
                results[sid].append(rid2)
    with ws.store.write() as conn:  # what the worker books after each job
        for vendor, used in (("acme", 36.3), ("globex", 35.9), ("initech", 35.9)):
            conn.execute(
                schema.contributors.update()
                .where(schema.contributors.c.name == vendor)
                .values(used_pflops=used)
            )
    # An owner-only error message and log on initech's phase-1 job (contributors see only the class).
    sid = subs["initech"][0]
    with ws.store.write() as conn:
        conn.execute(
            schema.jobs.update()
            .where(schema.jobs.c.id == jobs[sid][0])
            .values(
                attempts=2,
                error_class="out_of_memory",
                error_message="OOM-SECRET worker node gpu-3 at 14.2 GiB",
            )
        )
    log = ws.jobs_dir / str(jobs[sid][0]) / "out"
    log.mkdir(parents=True)
    (log / "log.txt").write_text("loading bundle\nretrying with batch size 8\nOOM-SECRET done\n")
    return Populated(ws, owner, tokens, subs, jobs, results)


def other_vendor_ids(pop: Populated, me: str) -> list[int]:
    return [sid for v, ids in pop.submissions.items() if v != me for sid in ids]


def count_audit(ws: Workspace, action: str) -> int:
    t = schema.audit_log
    with ws.store.read() as conn:
        return len(conn.execute(select(t.c.id).where(t.c.action == action)).all())
