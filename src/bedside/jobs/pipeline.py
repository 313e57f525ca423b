"""From a job row to a scored result: stage the job directory, then collect and score its output.

Used by the worker and by ``bedside run``. Staging (see docs/threat-model.md, "Staging")::

    WS/jobs/ID/              0755, owner-written
      spec.json              0644  JobSpec (paths relative to the job dir)
      bundle -> WS/bundles/HASH   (files 0644, dirs 0755; bind-mounted read-only in the sandbox)
      inputs/                0755
        train.parquet        0644  row_id, text, label          (phase 2 only)
        holdout_texts.parquet 0644 row_id, text                 (never labels)
      out/                   owned by the sandbox uid; emptied before every attempt
      checkpoints/           owned by the sandbox uid; kept across attempts (resume)

The workspace root stays 0700: nobody but its owner (and, through bind mounts, the sandbox) can
reach any of it. What comes back out is whitelisted: ``predictions.json`` (schema-checked),
numeric fields of ``compute.json`` and of the progress records.

Example::

    job_dir = prepare_job_dir(ws, job_row)
    res = launcher.launch(job_dir, JobSpec.read(job_dir), ws.policy().limits)
    result_id = collect_and_score(ws, job_row, res)
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from bedside.errors import JobError, NotFoundError
from bedside.jobs.spec import JobSpec
from bedside.store import schema

if TYPE_CHECKING:
    import pandas as pd

    from bedside.data.corpus import Corpus
    from bedside.jobs.executor import JobOutcome, ProgressHook
    from bedside.jobs.queue import ClaimedJob
    from bedside.sandbox.launch import Launcher, LaunchResult
    from bedside.workspace import Workspace

PFLOP = 1e15
PHASES = {"phase1": 1, "phase2": 2}
PROGRESS_NUMBERS = ("ts", "step", "total", "loss", "throughput", "eta_s", "epoch", "val_macro_f1")
COMPUTE_NUMBERS = (
    "flops",
    "wall_s",
    "peak_rss_mb",
    "budget_flops",
    "n_params",
    "n_trainable",
    "tokens",
)
_STAGE = re.compile(r"^[a-z_-]{1,24}$")  # engine constants (train, predict, embed ...), no data
MAX_PROGRESS_LINE = 4096
MAX_COMPUTE_BYTES = 65536


# -- what may leave a job -------------------------------------------------------------------


def _number(v: Any) -> float | int | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return v if math.isfinite(v) else None


def clean_progress(rec: Any) -> dict[str, Any] | None:
    """A progress record reduced to known numeric fields and a constant stage name."""
    if not isinstance(rec, dict):
        return None
    out: dict[str, Any] = {k: n for k in PROGRESS_NUMBERS if (n := _number(rec.get(k))) is not None}
    stage = rec.get("stage")
    out["stage"] = stage if isinstance(stage, str) and _STAGE.match(stage) else "working"
    return out


def read_compute(out_dir: Path) -> dict[str, Any]:
    """``out/compute.json`` reduced to known numeric fields (and ``stopped_by_budget``)."""
    p = out_dir / "compute.json"
    try:
        if p.stat().st_size > MAX_COMPUTE_BYTES:
            return {}
        raw = json.loads(p.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict):
        return {}
    out: dict[str, Any] = {k: n for k in COMPUTE_NUMBERS if (n := _number(raw.get(k))) is not None}
    out["stopped_by_budget"] = raw.get("stopped_by_budget") is True
    return out


class ProgressTail:
    """Reads new complete lines of ``out/progress.jsonl`` since the last call, cleaned."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def read(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read(1 << 20)
        except OSError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        recs = []
        for line in data[: end + 1].splitlines():
            if len(line) > MAX_PROGRESS_LINE:
                continue
            try:
                rec = clean_progress(json.loads(line))
            except ValueError:
                continue
            if rec is not None:
                recs.append(rec)
        return recs


# -- staging --------------------------------------------------------------------------------


def _write_parquet(df: pd.DataFrame, dest: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".stage-", suffix=".parquet", dir=dest.parent)
    os.close(fd)
    try:
        df.to_parquet(tmp, index=False)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _open_bundle(bundle: Path) -> None:
    """Bundle files 0644, dirs 0755 (safetensors writes 0600; the sandbox uid must read them).
    The workspace root stays 0700, so this opens nothing to other host users."""
    for root, dirs, files in os.walk(bundle):
        os.chmod(root, 0o755)
        for f in files:
            p = os.path.join(root, f)
            if not os.path.islink(p):
                os.chmod(p, 0o644)
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]


def job_context(
    ws: Workspace, job_row: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], Corpus]:
    """(submission row, contributor row, corpus) of a job."""
    from bedside.data.corpus import load_corpus

    s, c = schema.submissions, schema.contributors
    with ws.store.read() as conn:
        sub = conn.execute(select(s).where(s.c.id == job_row["submission_id"])).mappings().first()
        if sub is None:
            raise NotFoundError(
                f"job {job_row['id']} has no submission {job_row['submission_id']}."
            )
        con = conn.execute(select(c).where(c.c.id == sub["contributor_id"])).mappings().one()
    return dict(sub), dict(con), load_corpus(ws, int(job_row["corpus_version_id"]))


def remaining_budget_flops(
    conn: Connection, contributor: dict[str, Any], submission_id: int
) -> float:
    """Budget minus what was used minus what other queued submissions reserved, in FLOPs."""
    s = schema.submissions
    others = conn.execute(
        select(s.c.estimate).where(
            s.c.contributor_id == contributor["id"],
            s.c.id != submission_id,
            s.c.status.in_(("accepted", "running")),
        )
    ).scalars()
    reserved = sum(float((e or {}).get("total", 0.0)) for e in others)
    left = float(contributor["budget_pflops"]) - float(contributor["used_pflops"]) - reserved
    return max(0.0, left) * PFLOP


def prepare_job_dir(ws: Workspace, job_row: dict[str, Any]) -> Path:
    """Build ``WS/jobs/ID`` for a phase 1 or phase 2 job (see the module docstring). Idempotent:
    a retried job gets fresh inputs and an empty ``out/``, and keeps its checkpoints."""
    sub, con, corpus = job_context(ws, job_row)
    policy = ws.policy()
    kind = str(job_row["kind"])
    if kind not in PHASES:
        raise JobError(
            f"job {job_row['id']} is a {kind!r} job; only phase1 and phase2 run in the sandbox."
        )
    job_dir = ws.jobs_dir / str(job_row["id"])
    job_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(job_dir, 0o755)
    inputs = job_dir / "inputs"
    inputs.mkdir(exist_ok=True)
    os.chmod(inputs, 0o755)
    _write_parquet(corpus.holdout[["row_id", "text"]], inputs / "holdout_texts.parquet")
    if kind == "phase2":
        _write_parquet(corpus.train[["row_id", "text", "label"]], inputs / "train.parquet")
    else:
        (inputs / "train.parquet").unlink(missing_ok=True)

    bundle = ws.bundles_dir / str(sub["bundle_hash"])
    if not bundle.is_dir():
        raise JobError(
            f"the bundle of submission {sub['id']} is missing (expected {bundle}).",
            hint="Restore the workspace's bundles/ folder, or resubmit the bundle.",
        )
    _open_bundle(bundle)
    link = job_dir / "bundle"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(bundle)

    out = job_dir / "out"
    if out.exists():  # a previous attempt's output must never be scored
        shutil.rmtree(out)
    out.mkdir()
    (job_dir / "checkpoints").mkdir(exist_ok=True)

    with ws.store.read() as conn:
        budget = remaining_budget_flops(conn, con, int(sub["id"]))
    overrides = {
        k: v
        for k, v in (job_row.get("spec") or {}).items()
        if k in {f.name for f in fields(JobSpec)}
    }
    spec_args: dict[str, Any] = {
        "job_id": int(job_row["id"]),
        "kind": kind,
        "model_kind": str(sub["kind"]),
        "manifest": dict(sub["manifest"]),
        "classes": [c.to_dict() for c in corpus.classes],
        "seed": int((sub["manifest"].get("train") or {}).get("seed", 0)),
        "budget_flops": budget,
        "threads": policy.limits.cpus,
        "device": "auto" if policy.limits.gpu else "cpu",
        **overrides,
    }
    spec = JobSpec(**spec_args)
    spec.write(job_dir)
    os.chmod(job_dir / "spec.json", 0o644)
    return job_dir


# -- collecting -----------------------------------------------------------------------------


def _phase1_result_id(ws: Workspace, submission_id: int) -> int | None:
    r = schema.results
    with ws.store.read() as conn:
        v = conn.execute(
            select(r.c.id)
            .where(r.c.submission_id == submission_id, r.c.phase == 1)
            .order_by(r.c.id.desc())
        ).scalar()
    return None if v is None else int(v)


def existing_result(ws: Workspace, job_id: int) -> int | None:
    r = schema.results
    with ws.store.read() as conn:
        v = conn.execute(select(r.c.id).where(r.c.job_id == job_id)).scalar()
    return None if v is None else int(v)


def collect_and_score(ws: Workspace, job_row: dict[str, Any], launch_result: LaunchResult) -> int:
    """Check the job's predictions, score them with the holdout labels (outside the sandbox)
    and record the result; returns the result id. Raises ``JobError`` with the error class when
    the launch failed or the output is not acceptable. Scoring a job twice returns the first id."""
    from bedside.evaluation.baseline import length_edges
    from bedside.evaluation.predictions import load_predictions
    from bedside.evaluation.results import load_result_predictions, record_result
    from bedside.evaluation.robustness import word_counts
    from bedside.evaluation.scorer import score

    if launch_result.error_class is not None:
        raise JobError(
            launch_result.message or launch_result.error_class,
            error_class=launch_result.error_class,
        )
    job_id = int(job_row["id"])
    if (done := existing_result(ws, job_id)) is not None:
        return done
    sub, _con, corpus = job_context(ws, job_row)
    policy = ws.policy()
    job_dir = ws.jobs_dir / str(job_id)
    spec = JobSpec.read(job_dir)
    out = spec.path(job_dir, "out")
    row_ids = [str(r) for r in corpus.holdout["row_id"]]
    classes = corpus.class_names
    probs = load_predictions(
        out / "predictions.json", row_ids, classes, max_bytes=predictions_cap(row_ids, classes)
    )
    phase = PHASES[str(job_row["kind"])]
    phase1 = None
    if phase == 2 and (p1 := _phase1_result_id(ws, int(sub["id"]))) is not None:
        _ids, phase1 = load_result_predictions(ws, p1, row_ids)
    metrics = score(
        list(corpus.holdout["label"]),
        probs,
        classes,
        word_counts(corpus.holdout["text"]),
        length_edges(corpus),
        resamples=policy.bootstrap_resamples,
        seed=0,
        phase1_probs=phase1,
        decimals=policy.score_decimals,
    )
    compute = read_compute(out)
    estimate = (sub.get("estimate") or {}).get(f"phase{phase}")
    provenance = {
        "bundle_hash": sub["bundle_hash"],
        "recipe": (sub["manifest"] or {}).get("train")
        if phase == 2
        else (sub["manifest"] or {}).get("phase1"),
        "compute": {
            "estimate_pflops": estimate,
            "actual_pflops": None if compute.get("flops") is None else compute["flops"] / PFLOP,
            "stopped_by_budget": compute.get("stopped_by_budget", False),
            "job_wall_s": compute.get("wall_s"),
        },
        "wall_s": launch_result.wall_s,
        "peak_memory_mb": launch_result.peak_rss_mb,
        "tier": launch_result.tier,
        "attempts": job_row.get("attempts"),
    }
    return record_result(
        ws,
        corpus=corpus,
        phase=phase,
        model_label=str(sub["name"]),
        metrics=metrics,
        provenance=provenance,
        probs=probs,
        row_ids=row_ids,
        submission_id=int(sub["id"]),
        job_id=job_id,
    )


def predictions_cap(row_ids: list[str], classes: list[str]) -> int:
    """Generous size limit for a predictions file of this shape (row ids and 17-digit floats);
    anything larger is padding or smuggling."""
    per_row = max((len(r) for r in row_ids), default=0) + 8 + 28 * len(classes)
    return 65536 + sum(len(c) + 4 for c in classes) + len(row_ids) * per_row


def actual_pflops(ws: Workspace, job_id: int) -> float:
    """What a finished job spent, from its ``out/compute.json`` (0 when it does not say)."""
    flops = read_compute(ws.jobs_dir / str(job_id) / "out").get("flops")
    return 0.0 if flops is None else max(0.0, float(flops)) / PFLOP


def charge(conn: Connection, submission_id: int | None, pflops: float) -> None:
    """Add ``pflops`` to the submission's contributor's ``used_pflops``, in ``conn``."""
    if submission_id is None or pflops <= 0:
        return
    s, c = schema.submissions, schema.contributors
    cid = conn.execute(select(s.c.contributor_id).where(s.c.id == submission_id)).scalar()
    if cid is None:
        return
    used = conn.execute(select(c.c.used_pflops).where(c.c.id == cid)).scalar() or 0.0
    conn.execute(c.update().where(c.c.id == cid).values(used_pflops=float(used) + pflops))


def public_job_view(row: dict[str, Any]) -> dict[str, Any]:
    """What a contributor may see of a job: state, attempts, progress, an error class. Never the
    error message or logs (they may quote data)."""
    return {
        "id": row["id"],
        "submission_id": row["submission_id"],
        "kind": row["kind"],
        "state": row["state"],
        "attempts": row["attempts"],
        "progress": clean_progress(row.get("progress") or {}) if row.get("progress") else {},
        "error_class": row["error_class"] if row["state"] in ("failed", "cancelled") else None,
        "created_at": row["created_at"],
        "started_at": row["started_at"],
        "finished_at": row["finished_at"],
    }


# -- running a submission in the foreground ------------------------------------------------


def run_submission(
    ws: Workspace,
    submission_id: int,
    phases: tuple[int, ...] = (1, 2),
    launcher: Launcher | None = None,
    progress: bool = True,
    lease_s: float = 60.0,
) -> list[JobOutcome]:
    """Run a submission's phase jobs now, in this process (``bedside run``), through the same
    queue leases, sandbox and scoring as the worker. Jobs already done are skipped.

    >>> [o.state for o in run_submission(ws, 3, phases=(1,))]  # doctest: +SKIP
    ['done']
    """
    from bedside.jobs.executor import JobExecutor
    from bedside.jobs.queue import SqlQueue
    from bedside.jobs.worker import worker_id

    t = schema.jobs
    with ws.store.read() as conn:
        rows = {
            r["kind"]: dict(r)
            for r in conn.execute(
                select(t).where(t.c.submission_id == submission_id).order_by(t.c.id)
            ).mappings()
        }
    if not rows:
        raise NotFoundError(
            f"submission {submission_id} has no jobs.",
            hint="List submissions with `bedside submissions`.",
        )
    if launcher is None:
        from bedside.sandbox.probe import launcher_for_policy

        launcher = launcher_for_policy(ws.policy())
    queue = SqlQueue(ws.store)
    owner = worker_id()
    outcomes: list[JobOutcome] = []
    with progress_bar(progress) as hook:
        ex = JobExecutor(ws, queue, launcher, lease_s=lease_s, on_progress=hook)
        for phase in sorted(phases):
            row = rows.get(f"phase{phase}")
            if row is None:
                raise NotFoundError(f"submission {submission_id} has no phase {phase} job.")
            if row["state"] == "done":
                continue
            job = queue.claim_job(int(row["id"]), owner, lease_s)
            if job is None:
                state = queue.state(int(row["id"]))
                raise JobError(
                    f"job {row['id']} (phase {phase}) cannot run now: it is {state}"
                    + (" and its dependency is not done" if state == "queued" else "")
                    + ".",
                    hint="A running job belongs to a worker; a failed one was final. See `bedside jobs show ID`.",
                )
            outcome = ex.run(job, owner)
            outcomes.append(outcome)
            if outcome.state != "done":
                break
    return outcomes


@contextlib.contextmanager
def progress_bar(enabled: bool) -> Iterator[ProgressHook | None]:
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    tasks: dict[int, Any] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        transient=False,
    ) as bar:

        def hook(job: ClaimedJob, rec: dict[str, Any]) -> None:
            desc = f"job {job.id} {job.kind}: {rec.get('stage', '')}"
            if job.id not in tasks:
                tasks[job.id] = bar.add_task(desc, total=rec.get("total") or 1)
            bar.update(
                tasks[job.id],
                description=desc,
                total=rec.get("total") or 1,
                completed=rec.get("step") or 0,
            )

        yield hook
