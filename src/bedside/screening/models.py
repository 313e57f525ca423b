"""Screening models: a submission's phase-2 model promoted for use on new abstracts.

``deploy`` copies what phase 2 left in ``jobs/ID/out/model/`` (read through
``bedside.jobs.outputs``: regular files only, no links, a size bound) to
``artefacts/screening/JOB_ID/model/`` and records a ``screening_models`` row pinned to the
bundle hash, the corpus version the result was scored on, and the decision rule in
``decision.json``. Refused, with the reason: an unknown submission, a phase 2 that did not finish
(its state and error class), a phase 2 that left no model. Deploying is audited.

``set_targets`` picks the operating points for the owner's recall targets on the deployed
result's own holdout predictions (see ``screening.operating``) and stores them with the model.

Example::

    m = deploy(ws, submission_id=3)
    m = set_targets(ws, m.id, {"digestive system diseases": 0.9})
    m.points.thresholds()
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from bedside.errors import ConfigError, DataError, NotFoundError
from bedside.screening.operating import OperatingPoints, operating_points
from bedside.store import audit, schema
from bedside.store.store import utcnow

if TYPE_CHECKING:
    from bedside.workspace import Workspace

SCREENING_DIR = "screening"
MAX_MODEL_BYTES = 8 * 2**30  # all files of one saved model together
RULES = ("argmax", "fitted-offsets")


@dataclass
class ScreeningModel:
    """A deployed model (a ``screening_models`` row)."""

    id: int
    submission_id: int
    result_id: int
    job_id: int | None
    name: str
    phase: int
    bundle_hash: str
    corpus_version_id: int
    corpus_hash: str
    decision: dict[str, Any]
    path: str
    targets: dict[str, float] = field(default_factory=dict)
    points: OperatingPoints | None = None
    active: bool = True
    created_at: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, r: Any) -> ScreeningModel:
        ops = r["operating_points"] or {}
        return cls(
            id=int(r["id"]),
            submission_id=int(r["submission_id"]),
            result_id=int(r["result_id"]),
            job_id=r["job_id"],
            name=str(r["name"]),
            phase=int(r["phase"]),
            bundle_hash=str(r["bundle_hash"]),
            corpus_version_id=int(r["corpus_version_id"]),
            corpus_hash=str(r["corpus_hash"]),
            decision=dict(r["decision"] or {}),
            path=str(r["path"]),
            targets=dict(r["targets"] or {}),
            points=OperatingPoints.from_dict(ops) if ops else None,
            active=bool(r["active"]),
            created_at=str(r["created_at"]),
            meta=dict(r["meta"] or {}),
        )

    def root(self, ws: Workspace) -> Path:
        return ws.root / self.path

    def model_dir(self, ws: Workspace) -> Path:
        return self.root(ws) / "model"

    def onnx_dir(self, ws: Workspace) -> Path:
        return self.root(ws) / "onnx"

    def thresholds(self) -> dict[str, float]:
        return self.points.thresholds() if self.points else {}

    def view(self) -> dict[str, Any]:
        """What the owner sees (CLI JSON, API)."""
        return {
            "id": self.id,
            "name": self.name,
            "submission_id": self.submission_id,
            "result_id": self.result_id,
            "phase": self.phase,
            "bundle_hash": self.bundle_hash,
            "corpus_version_id": self.corpus_version_id,
            "corpus_hash": self.corpus_hash,
            "decision_rule": self.decision.get("rule"),
            "targets": self.targets,
            "operating_points": self.points.to_dict() if self.points else None,
            "active": self.active,
            "created_at": self.created_at,
            "onnx": self.meta.get("onnx"),
        }


def _submission(ws: Workspace, submission_id: int) -> dict[str, Any]:
    s = schema.submissions
    with ws.store.read() as conn:
        row = conn.execute(select(s).where(s.c.id == submission_id)).mappings().first()
    if row is None:
        raise NotFoundError(
            f"no submission {submission_id}.", hint="List submissions with `bedside submissions`."
        )
    return dict(row)


def _phase2(ws: Workspace, submission_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(phase-2 job row, its result row); ``ConfigError`` saying why when there is none."""
    j, r = schema.jobs, schema.results
    with ws.store.read() as conn:
        job = (
            conn.execute(
                select(j)
                .where(j.c.submission_id == submission_id, j.c.kind == "phase2")
                .order_by(j.c.id.desc())
            )
            .mappings()
            .first()
        )
        result = (
            conn.execute(
                select(r)
                .where(r.c.submission_id == submission_id, r.c.phase == 2)
                .order_by(r.c.id.desc())
            )
            .mappings()
            .first()
        )
    if job is None:
        raise ConfigError(
            f"submission {submission_id} has no phase-2 job, so it has no fine-tuned model to deploy."
        )
    if job["state"] != "done" or result is None:
        why = f" ({job['error_class']})" if job.get("error_class") else ""
        raise ConfigError(
            f"phase 2 of submission {submission_id} is {job['state']}{why}; only a submission "
            "whose phase 2 finished and was scored can be deployed.",
            hint="See `bedside jobs show "
            + str(job["id"])
            + "`; deploy another submission, or wait for it.",
        )
    return dict(job), dict(result)


def _copy_model(src: Path, dest: Path) -> list[str]:
    """Copy the job's ``out/model`` to ``dest`` through ``jobs.outputs`` (regular files only,
    bounded); returns the relative file names."""
    from bedside.jobs import outputs

    if not src.is_dir() or src.is_symlink():
        raise ConfigError(
            f"phase 2 left no model directory (expected {src}).",
            hint="Only models saved by phase 2 can be deployed; rerun phase 2 if its job "
            "directory was cleaned.",
        )
    tree = outputs.inspect(src)
    if tree.refused:
        rel, what = tree.refused[0]
        raise ConfigError(f"the saved model's {rel!r} is {what}; only regular files are copied.")
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    names: list[str] = []
    total = 0
    stack = [""]
    try:
        while stack:
            prefix = stack.pop()
            with os.scandir(src / prefix if prefix else src) as it:
                entries = sorted(it, key=lambda e: e.name)
            for e in entries:
                rel = f"{prefix}{e.name}"
                if e.is_dir(follow_symlinks=False):
                    stack.append(rel + "/")
                    continue
                data = outputs.read_bytes(src, rel, MAX_MODEL_BYTES - total)
                total += len(data)
                out = tmp / rel
                out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                out.write_bytes(data)
                names.append(rel)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return names


def read_decision(model_dir: Path, classes: list[str]) -> dict[str, Any]:
    """The decision rule in ``decision.json`` (argmax when there is none), checked."""
    p = model_dir / "decision.json"
    if not p.is_file():
        return {"rule": "argmax", "offsets": [0.0] * len(classes), "classes": classes}
    try:
        d = json.loads(p.read_text())
        rule, offsets, names = str(d["rule"]), [float(x) for x in d["offsets"]], list(d["classes"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"the saved model's decision.json is malformed ({e}).") from e
    if rule not in RULES or len(offsets) != len(names) or names != classes:
        raise ConfigError(
            f"the saved model's decision rule {rule!r} with {len(offsets)} offsets over classes "
            f"{names} does not fit the workspace classes {classes}."
        )
    return {"rule": rule, "offsets": offsets, "classes": names, "windows": d.get("windows") or {}}


def deploy(ws: Workspace, submission_id: int, actor: str = "owner") -> ScreeningModel:
    """Promote the phase-2 model of ``submission_id`` to a screening model (see the module doc)."""
    from bedside.data.corpus import load_corpus

    sub = _submission(ws, submission_id)
    job, result = _phase2(ws, submission_id)
    corpus = load_corpus(ws, int(result["corpus_version_id"]))
    rel = f"artefacts/{SCREENING_DIR}/{int(job['id'])}"
    root = ws.root / rel
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    files = _copy_model(ws.jobs_dir / str(job["id"]) / "out" / "model", root / "model")
    decision = read_decision(root / "model", corpus.class_names)
    t = schema.screening_models
    with ws.store.write() as conn:
        conn.execute(t.update().where(t.c.active.is_(True)).values(active=False))
        pk = conn.execute(
            t.insert().values(
                submission_id=submission_id,
                result_id=int(result["id"]),
                job_id=int(job["id"]),
                name=str(sub["name"]),
                phase=2,
                bundle_hash=str(sub["bundle_hash"]),
                corpus_version_id=corpus.version_id,
                corpus_hash=corpus.hash,
                decision=decision,
                path=rel,
                targets={},
                operating_points={},
                active=True,
                created_at=utcnow(),
                meta={"files": files, "method": (sub["manifest"].get("train") or {}).get("method")},
            )
        ).inserted_primary_key
        assert pk is not None
        model_id = int(pk[0])
        audit.append(
            conn,
            actor,
            "screening.deploy",
            {
                "model_id": model_id,
                "submission_id": submission_id,
                "result_id": int(result["id"]),
                "bundle_hash": sub["bundle_hash"],
                "corpus_hash": corpus.hash,
                "decision_rule": decision["rule"],
            },
        )
    return get_model(ws, model_id)


def get_model(ws: Workspace, model_id: int | None = None) -> ScreeningModel:
    """One screening model; without an id the active one."""
    t = schema.screening_models
    q = select(t).where(t.c.id == model_id) if model_id is not None else None
    if q is None:
        q = select(t).where(t.c.active.is_(True)).order_by(t.c.id.desc())
    with ws.store.read() as conn:
        row = conn.execute(q).mappings().first()
    if row is None:
        raise NotFoundError(
            "no screening model deployed."
            if model_id is None
            else f"no screening model {model_id}.",
            hint="Deploy one with `bedside deploy SUBMISSION` (see `bedside screening models`).",
        )
    return ScreeningModel.from_row(row)


def list_models(ws: Workspace) -> list[ScreeningModel]:
    t = schema.screening_models
    with ws.store.read() as conn:
        rows = conn.execute(select(t).order_by(t.c.id)).mappings().all()
    return [ScreeningModel.from_row(r) for r in rows]


def holdout_predictions(ws: Workspace, model: ScreeningModel) -> tuple[list[str], Any, Any]:
    """(row ids, label indices, probabilities) of the deployed result on its holdout."""
    import numpy as np

    from bedside.data.corpus import load_corpus
    from bedside.evaluation.results import load_result_predictions
    from bedside.evaluation.scorer import label_indices

    corpus = load_corpus(ws, model.corpus_version_id)
    ids = [str(r) for r in corpus.holdout["row_id"]]
    _, probs = load_result_predictions(ws, model.result_id, ids)
    y = np.asarray(label_indices(list(corpus.holdout["label"]), corpus.class_names))
    return ids, y, probs


def set_targets(
    ws: Workspace,
    model_id: int | None,
    targets: dict[str, float],
    *,
    max_workload: float | None = None,
    actor: str = "owner",
) -> ScreeningModel:
    """Pick and store the operating points for ``targets`` (class name -> recall)."""
    from bedside.data.corpus import load_corpus

    model = get_model(ws, model_id)
    corpus = load_corpus(ws, model.corpus_version_id)
    ids, y, probs = holdout_predictions(ws, model)
    if len(ids) < 4:
        raise DataError(
            f"the holdout has {len(ids)} rows; operating points need a tuning and a reporting half."
        )
    ops = operating_points(
        y,
        probs,
        corpus.class_names,
        ids,
        targets,
        max_workload=max_workload,
        resamples=ws.policy().bootstrap_resamples,
    )
    t = schema.screening_models
    with ws.store.write() as conn:
        conn.execute(
            t.update()
            .where(t.c.id == model.id)
            .values(
                targets={p.class_name: p.target for p in ops.points}, operating_points=ops.to_dict()
            )
        )
        audit.append(
            conn,
            actor,
            "screening.targets",
            {
                "model_id": model.id,
                "targets": {p.class_name: p.target for p in ops.points},
                "thresholds": ops.thresholds(),
                "max_workload": max_workload,
            },
        )
    return get_model(ws, model.id)


def set_meta(ws: Workspace, model_id: int, key: str, value: Any) -> None:
    t = schema.screening_models
    with ws.store.write() as conn:
        meta = conn.execute(select(t.c.meta).where(t.c.id == model_id)).scalar() or {}
        conn.execute(t.update().where(t.c.id == model_id).values(meta={**meta, key: value}))
