"""Screening runs: new abstracts through the deployed model, in the sandbox, in chunks.

A run is a ``screening_runs`` row and one ``screen`` job in the queue (it belongs to no
submission). ``create_run`` checks and stages the file (``screening.inputs``) under
``artefacts/screening/runs/RUN_ID/`` and queues the job; the worker (or ``bedside screen`` in
the foreground, through the same ``JobExecutor``: lease, heartbeat, sandbox tier, output checks)
runs it. ``stage_screen_job`` builds the job directory: the texts, a copy of the saved model
(``inputs/model/``; nothing of the workspace is reachable from the job), the bundle.
``collect_screen_job`` reads ``out/probs.f32`` through ``bedside.jobs.outputs`` chunk by chunk
and writes, per abstract, the predicted class, the probabilities and the needs-review flag
(``results.csv``; owner-only), plus the shadow comparison when one was asked for. The run's
state is its job's state: one owner for every transition (``jobs.queue``).

Example::

    run = create_run(ws, Path("new.csv"), shadow="baseline")
    outcome = run_now(ws, run.id)            # foreground; or leave it to `bedside worker`
    get_run(ws, run.id).summary["needs_review"]
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select

from bedside.errors import ConfigError, JobError, NotFoundError
from bedside.jobs.spec import JobSpec
from bedside.screening.inputs import CHUNK_ROWS, SCREEN_FILE, SHADOW_FILE, stage_input
from bedside.screening.models import ScreeningModel, get_model
from bedside.screening.operating import flag_matrix
from bedside.screening.shadow import ShadowReport, compare
from bedside.store import audit, schema
from bedside.store.store import utcnow

if TYPE_CHECKING:
    from bedside.jobs.executor import JobOutcome
    from bedside.sandbox.launch import Launcher, LaunchResult
    from bedside.workspace import Workspace

RUNS_DIR = "runs"
RESULTS_FILE = "results.csv"
FLAGS_FILE = "flags.npz"  # predicted class and flags in input order, for realised recall later
MISSED_FILE = "shadow_missed.json"  # owner-only row ids
PROBS_FILE = "probs.f32"
JOB_CHUNK = 2048  # texts the job predicts at a time
SHADOW_BASELINE = "baseline"


@dataclass
class ScreeningRun:
    """A run as the owner sees it (its state is its job's)."""

    id: int
    model_id: int
    job_id: int | None
    state: str
    input: dict[str, Any]
    summary: dict[str, Any] = field(default_factory=dict)
    error_class: str | None = None
    error: str | None = None
    progress: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    finished_at: str | None = None

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model_id": self.model_id,
            "job_id": self.job_id,
            "state": self.state,
            "input": {k: v for k, v in self.input.items() if k != "paths"},
            "summary": self.summary,
            "error_class": self.error_class,
            "progress": self.progress,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
        }


def run_dir(ws: Workspace, run_id: int) -> Path:
    return ws.artefacts_dir / "screening" / RUNS_DIR / str(int(run_id))


def results_path(ws: Workspace, run_id: int) -> Path:
    return run_dir(ws, run_id) / RESULTS_FILE


def _mkdir(p: Path, mode: int) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    os.chmod(p, mode)
    return p


def create_run(
    ws: Workspace,
    src: Path,
    *,
    model_id: int | None = None,
    text_column: str = "text",
    id_column: str = "row_id",
    shadow_column: str | None = None,
    shadow: str | None = None,
    runtime: str = "torch",
    chunk_rows: int = CHUNK_ROWS,
    file_name: str | None = None,
    actor: str = "owner",
) -> ScreeningRun:
    """Check and stage ``src`` for the (active) screening model and queue its job.

    ``shadow_column`` names the input column with the current classifier's labels; ``shadow=
    "baseline"`` compares with the internal TF-IDF baseline instead."""
    from bedside.data.corpus import load_corpus
    from bedside.jobs.queue import enqueue_job

    model = get_model(ws, model_id)
    if not model.thresholds():
        raise ConfigError(
            f"screening model {model.id} has no recall targets, so nothing could be flagged for "
            "review.",
            hint="Set them first: bedside screening targets --target 'CLASS=0.9'.",
        )
    if runtime not in ("torch", "onnx"):
        raise ConfigError(f"runtime must be torch or onnx, got {runtime!r}.")
    if runtime == "onnx" and not (model.onnx_dir(ws) / "model.onnx").is_file():
        raise ConfigError(
            f"screening model {model.id} has no ONNX export.",
            hint=f"Export it first: bedside export {model.submission_id} --onnx.",
        )
    if shadow is not None and shadow != SHADOW_BASELINE:
        raise ConfigError(f"--shadow takes {SHADOW_BASELINE!r}, got {shadow!r}.")
    if shadow is not None and shadow_column is not None:
        raise ConfigError("compare with a shadow column or with the baseline, not both.")
    corpus = load_corpus(ws, model.corpus_version_id)
    r = schema.screening_runs
    with ws.store.write() as conn:
        pk = conn.execute(
            r.insert().values(
                model_id=model.id, state="staging", input={}, summary={}, created_at=utcnow()
            )
        ).inserted_primary_key
        assert pk is not None
        run_id = int(pk[0])
    dest = run_dir(ws, run_id)
    _mkdir(dest.parent, 0o700)
    try:
        staged = stage_input(
            Path(src),
            _mkdir(dest, 0o700),
            classes=corpus.class_names,
            text_column=text_column,
            id_column=id_column,
            shadow_column=shadow_column,
            chunk_rows=chunk_rows,
        )
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        with ws.store.write() as conn:
            conn.execute(r.delete().where(r.c.id == run_id))
        raise
    info = staged.to_dict()
    if file_name:
        info["file_name"] = file_name
    info.update(runtime=runtime, shadow="baseline" if shadow else shadow_column)
    with ws.store.write() as conn:
        job_id = enqueue_job(
            conn,
            "screen",
            model.corpus_version_id,
            spec={"extra": {"screening_run": run_id}},
        )
        conn.execute(
            r.update().where(r.c.id == run_id).values(job_id=job_id, input=info, state="queued")
        )
        audit.append(
            conn,
            actor,
            "screening.run",
            {
                "run_id": run_id,
                "model_id": model.id,
                "job_id": job_id,
                "file": info["file_name"],
                "sha256": staged.sha256,
                "rows": staged.n_rows,
                "shadow": info["shadow"],
            },
        )
    return get_run(ws, run_id)


def get_run(ws: Workspace, run_id: int) -> ScreeningRun:
    r, j = schema.screening_runs, schema.jobs
    with ws.store.read() as conn:
        row = conn.execute(select(r).where(r.c.id == run_id)).mappings().first()
        job = (
            conn.execute(select(j).where(j.c.id == row["job_id"])).mappings().first()
            if row is not None and row["job_id"] is not None
            else None
        )
    if row is None:
        raise NotFoundError(
            f"no screening run {run_id}.", hint="List runs with `bedside screening runs`."
        )
    return ScreeningRun(
        id=int(row["id"]),
        model_id=int(row["model_id"]),
        job_id=row["job_id"],
        state=str(job["state"]) if job is not None else str(row["state"]),
        input=dict(row["input"] or {}),
        summary=dict(row["summary"] or {}),
        error_class=job["error_class"] if job is not None else None,
        error=job["error_message"] if job is not None else row["error"],
        progress=dict(job["progress"] or {}) if job is not None else {},
        created_at=str(row["created_at"]),
        finished_at=job["finished_at"] if job is not None else row["finished_at"],
    )


def list_runs(ws: Workspace) -> list[ScreeningRun]:
    r = schema.screening_runs
    with ws.store.read() as conn:
        ids = conn.execute(select(r.c.id).order_by(r.c.id)).scalars().all()
    return [get_run(ws, int(i)) for i in ids]


def _run_of_job(ws: Workspace, job_row: dict[str, Any]) -> tuple[ScreeningRun, ScreeningModel]:
    run_id = ((job_row.get("spec") or {}).get("extra") or {}).get("screening_run")
    if not isinstance(run_id, int):
        raise JobError(f"screen job {job_row['id']} names no screening run.")
    run = get_run(ws, run_id)
    return run, get_model(ws, run.model_id)


def _copy_tree(src: Path, dest: Path) -> None:
    """Copy our own saved model into the job's inputs: dirs 0755, files 0644 (the sandbox uid
    reads them; the workspace root stays 0700)."""
    _mkdir(dest, 0o755)
    for entry in sorted(src.iterdir()):
        if entry.is_symlink():
            continue
        target = dest / entry.name
        if entry.is_dir():
            _copy_tree(entry, target)
        elif entry.is_file():
            shutil.copyfile(entry, target)
            os.chmod(target, 0o644)


def stage_screen_job(ws: Workspace, job_row: dict[str, Any]) -> Path:
    """Build ``WS/jobs/ID`` for a screen job. Idempotent: a retried job gets fresh inputs and an
    empty ``out/``."""
    from bedside.data.corpus import load_corpus
    from bedside.jobs.staging import link_bundle_and_reset_outputs

    run, model = _run_of_job(ws, job_row)
    s = schema.submissions
    with ws.store.read() as conn:
        sub = conn.execute(select(s).where(s.c.id == model.submission_id)).mappings().one()
    corpus = load_corpus(ws, model.corpus_version_id)
    policy = ws.policy()
    _mkdir(ws.jobs_dir, 0o700)
    job_dir = _mkdir(ws.jobs_dir / str(job_row["id"]), 0o755)
    inputs = job_dir / "inputs"
    if inputs.exists():
        shutil.rmtree(inputs)
    _mkdir(inputs, 0o755)
    shutil.copyfile(run_dir(ws, run.id) / SCREEN_FILE, inputs / SCREEN_FILE)
    os.chmod(inputs / SCREEN_FILE, 0o644)
    _copy_tree(model.model_dir(ws), inputs / "model")
    runtime = str(run.input.get("runtime", "torch"))
    if runtime == "onnx":
        for f in model.onnx_dir(ws).iterdir():
            if f.is_file() and not f.is_symlink() and (f.suffix in (".onnx", ".data", ".json")):
                if f.name == "decision.json" or f.name == "README.md":
                    continue
                shutil.copyfile(f, inputs / "model" / f.name)
                os.chmod(inputs / "model" / f.name, 0o644)
    link_bundle_and_reset_outputs(
        job_dir,
        ws.bundles_dir / model.bundle_hash,
        f"the bundle of screening model {model.id}",
        "Restore the workspace's bundles/ folder.",
    )
    spec = JobSpec(
        job_id=int(job_row["id"]),
        kind="screen",
        model_kind=str(sub["kind"]),
        manifest=dict(sub["manifest"]),
        classes=[c.to_dict() for c in corpus.classes],
        threads=policy.limits.cpus,
        device="auto" if policy.limits.gpu else "cpu",
        extra={
            "screen": {
                "input": f"inputs/{SCREEN_FILE}",
                "model": "inputs/model",
                "chunk_rows": JOB_CHUNK,
                "runtime": runtime,
            }
        },
    )
    spec.write(job_dir)
    os.chmod(job_dir / "spec.json", 0o644)
    return job_dir


class ProbsReader:
    """Reads ``out/probs.f32`` (n x k little-endian float32) in blocks, through
    ``bedside.jobs.outputs``; the file must hold exactly n*k finite values in [0, 1]."""

    def __init__(self, out: Path, n: int, k: int) -> None:
        self.out, self.n, self.k, self.rows = out, n, k, 0

    def read(self, rows: int) -> np.ndarray:
        from bedside.jobs import outputs

        width = 4 * self.k
        size = rows * width
        data = outputs.read_bytes(self.out, PROBS_FILE, size, offset=self.rows * width, whole=False)
        if len(data) != size:
            raise JobError(
                f"the screen job wrote probabilities for {self.rows + len(data) // width:,} "
                f"rows; expected {self.n:,} rows x {self.k} classes.",
                error_class="invalid_output",
            )
        block = np.frombuffer(data, dtype="<f4").reshape(rows, self.k).astype(np.float64)
        if not np.isfinite(block).all() or (block < -1e-6).any() or (block > 1 + 1e-6).any():
            raise JobError(
                "the screen job wrote probabilities outside [0, 1] (or NaN).",
                error_class="invalid_output",
            )
        self.rows += rows
        return block

    def finish(self) -> None:
        from bedside.jobs import outputs

        extra = outputs.read_bytes(
            self.out, PROBS_FILE, 1, offset=self.rows * 4 * self.k, whole=False
        )
        if self.rows != self.n or extra:
            raise JobError(
                f"the screen job wrote more (or fewer) than the {self.n:,} rows of "
                "probabilities expected.",
                error_class="invalid_output",
            )


def _baseline_fitter(ws: Workspace, model: ScreeningModel) -> Any:
    """A function texts -> current labels (class indices) from the internal TF-IDF baseline,
    fitted once on the model's training split."""
    from bedside.data.corpus import load_corpus
    from bedside.engine.lexical import fit_tfidf

    corpus = load_corpus(ws, model.corpus_version_id)
    names = corpus.class_names
    y = [names.index(str(c)) for c in corpus.train["label"]]
    lex = fit_tfidf(list(corpus.train["text"]), y, len(names))

    def predict(texts: list[str]) -> np.ndarray:
        return np.asarray(lex.logits(texts)).argmax(axis=1)

    return predict


def collect_screen_job(ws: Workspace, job_row: dict[str, Any], launch_result: LaunchResult) -> None:
    """Read the job's probabilities and write the run's results (see the module docstring)."""
    import pandas as pd
    import pyarrow.parquet as pq

    from bedside.data.corpus import load_corpus

    if launch_result.error_class is not None:
        raise JobError(
            launch_result.message or launch_result.error_class,
            error_class=launch_result.error_class,
        )
    run, model = _run_of_job(ws, job_row)
    corpus = load_corpus(ws, model.corpus_version_id)
    classes = corpus.class_names
    k = len(classes)
    thresholds = model.thresholds()
    watched = list(thresholds)
    n = int(run.input["n_rows"])
    out = ws.jobs_dir / str(job_row["id"]) / "out"
    d = run_dir(ws, run.id)
    texts_pf = pq.ParquetFile(d / SCREEN_FILE)
    shadow_pf = pq.ParquetFile(d / SHADOW_FILE) if (d / SHADOW_FILE).is_file() else None
    use_baseline = run.input.get("shadow") == "baseline"
    baseline = _baseline_fitter(ws, model) if use_baseline else None
    source = "internal baseline" if use_baseline else f"column {run.input.get('shadow')}"
    report: ShadowReport | None = None
    predicted = np.zeros(k, dtype=np.int64)
    flagged = np.zeros(k, dtype=np.int64)
    review = 0
    # Predictions and flags for realised recall later: n int8 + n x k bools, filled in place
    # (the row ids stay in the run's input file, so nothing here grows with Python objects).
    all_pred = np.zeros(n, dtype=np.int8)
    all_flags = np.zeros((n, k), dtype=bool)
    at = 0
    tmp = d / (RESULTS_FILE + ".partial")
    cols = ["text"] if baseline is not None else []
    batches = texts_pf.iter_batches(batch_size=JOB_CHUNK, columns=["row_id", *cols])
    shadow_batches = (
        shadow_pf.iter_batches(batch_size=JOB_CHUNK, columns=["label"]) if shadow_pf else None
    )
    try:
        with tmp.open("w", newline="") as fh:
            os.chmod(tmp, 0o600)
            w = csv.writer(fh)
            names = np.asarray(classes, dtype=object)
            header = ["row_id", "predicted_class", *[f"p_{c}" for c in classes], "needs_review"]
            header.append("flagged_for")
            if shadow_pf is not None or baseline is not None:
                header += ["current_label", "agrees"]
            w.writerow(header)
            reader = ProbsReader(out, n, k)
            for batch in batches:
                ids = [str(x) for x in batch.column("row_id").to_pylist()]
                probs = reader.read(len(ids))
                pred = probs.argmax(axis=1)
                fl = flag_matrix(probs, classes, thresholds)
                need = fl.any(axis=1)
                predicted += np.bincount(pred, minlength=k)
                flagged += fl.sum(axis=0)
                review += int(need.sum())
                cur: np.ndarray | None = None
                if baseline is not None:
                    cur = baseline([str(t) for t in batch.column("text").to_pylist()])
                elif shadow_batches is not None:
                    labels = next(shadow_batches).column("label").to_pylist()
                    cur = np.asarray([classes.index(str(x)) for x in labels], dtype=np.int64)
                if cur is not None:
                    report = compare(ids, pred, fl, cur, classes, watched, source, report)
                table: dict[str, Any] = {"row_id": ids, "predicted_class": names[pred]}
                for j, c in enumerate(classes):
                    table[f"p_{c}"] = probs[:, j]
                table["needs_review"] = need.astype(int)
                table["flagged_for"] = [
                    ";".join(classes[j] for j in np.flatnonzero(row)) for row in fl
                ]
                if cur is not None:
                    table["current_label"] = names[cur]
                    table["agrees"] = (cur == pred).astype(int)
                pd.DataFrame(table).to_csv(fh, header=False, index=False, float_format="%.6f")
                all_pred[at : at + len(ids)] = pred
                all_flags[at : at + len(ids)] = fl
                at += len(ids)
            reader.finish()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, d / RESULTS_FILE)
    np.savez_compressed(
        d / FLAGS_FILE,
        predicted=all_pred[:at],
        flags=all_flags[:at],
        classes=np.asarray(classes, dtype=np.str_),
    )
    os.chmod(d / FLAGS_FILE, 0o600)
    summary: dict[str, Any] = {
        "n": n,
        "predicted": {c: int(predicted[i]) for i, c in enumerate(classes)},
        "flagged": {c: int(flagged[i]) for i, c in enumerate(classes) if c in thresholds},
        "needs_review": review,
        "review_per_1000": round(review * 1000.0 / n, 1) if n else None,
        "expected_per_1000": {
            p.class_name: p.workload_per_1000 for p in (model.points.points if model.points else [])
        },
        "thresholds": thresholds,
        "runtime": run.input.get("runtime", "torch"),
        "tier": launch_result.tier,
        "wall_s": launch_result.wall_s,
    }
    if report is not None:
        summary["shadow"] = report.counts()
        (d / MISSED_FILE).write_text(json.dumps(report.missed_ids))
        os.chmod(d / MISSED_FILE, 0o600)
    r = schema.screening_runs
    with ws.store.write() as conn:
        conn.execute(
            r.update().where(r.c.id == run.id).values(summary=summary, finished_at=utcnow())
        )


def run_now(
    ws: Workspace,
    run_id: int,
    *,
    launcher: Launcher | None = None,
    progress: bool = True,
    lease_s: float = 60.0,
) -> JobOutcome:
    """Run a queued screening run in this process (``bedside screen``), through the same queue
    lease, sandbox and output checks as the worker."""
    from bedside.jobs.executor import JobExecutor
    from bedside.jobs.progressbar import progress_bar
    from bedside.jobs.queue import SqlQueue
    from bedside.jobs.worker import worker_id

    run = get_run(ws, run_id)
    if run.job_id is None:
        raise NotFoundError(f"screening run {run_id} has no job.")
    if launcher is None:
        from bedside.sandbox.probe import launcher_for_policy

        launcher = launcher_for_policy(ws.policy())
    queue = SqlQueue(ws.store)
    owner = worker_id()
    job = queue.claim_job(int(run.job_id), owner, lease_s)
    if job is None:
        raise JobError(
            f"the job of screening run {run_id} cannot run here: it is {queue.state(run.job_id)}.",
            hint="A worker may have taken it: follow it with `bedside screening show RUN_ID`.",
        )
    with progress_bar(progress) as hook:
        return JobExecutor(ws, queue, launcher, lease_s=lease_s, on_progress=hook).run(job, owner)


def write_copy(ws: Workspace, run_id: int, dest: Path) -> Path:
    """Copy a finished run's results CSV to ``dest``."""
    src = results_path(ws, run_id)
    if not src.is_file():
        raise NotFoundError(
            f"screening run {run_id} has no results yet (state {get_run(ws, run_id).state})."
        )
    shutil.copyfile(src, dest)
    return dest


def realised_for_run(ws: Workspace, run_id: int) -> dict[str, Any]:
    """Recall the run's flags achieved on the screened abstracts that reviewers have labelled
    since (``bedside data add --append``: their rows are joined by row id with the active corpus
    version), beside the recall each operating point promised."""
    from bedside.data.corpus import load_corpus
    from bedside.screening.shadow import realised_recall

    run = get_run(ws, run_id)
    path = run_dir(ws, run_id) / FLAGS_FILE
    if not path.is_file():
        raise NotFoundError(f"screening run {run_id} has no results yet (state {run.state}).")
    import pyarrow.parquet as pq

    with np.load(path, allow_pickle=False) as z:
        flags = np.asarray(z["flags"], dtype=bool)
        classes = [str(c) for c in z["classes"]]
    ids = [str(r) for r in pq.read_table(path.parent / SCREEN_FILE, columns=["row_id"])["row_id"]]
    if len(ids) != len(flags):
        raise JobError(
            f"screening run {run_id}: {len(flags)} flagged rows but {len(ids)} input rows; "
            "the run's files do not belong together.",
            hint="Screen the file again.",
        )
    corpus = load_corpus(ws)
    labelled = {
        str(r): str(lab)
        for df in (corpus.train, corpus.holdout)
        for r, lab in zip(df["row_id"], df["label"], strict=True)
    }
    keep = [i for i, r in enumerate(ids) if r in labelled and labelled[r] in classes]
    y = [classes.index(labelled[ids[i]]) for i in keep]
    model = get_model(ws, run.model_id)
    points = {p.class_name: p.to_dict() for p in (model.points.points if model.points else [])}
    rows = realised_recall(flags[keep], y, classes, points)
    return {
        "run_id": run_id,
        "screened": len(ids),
        "labelled": len(keep),
        "corpus_version": corpus.hash,
        "classes": [r.to_dict() for r in rows],
    }
