"""Stage a job directory from a job row (worker and ``bedside run``).

Layout (see docs/threat-model.md, "Staging")::

    WS/jobs/ID/              0755, owner-written
      spec.json              0644  JobSpec (paths relative to the job dir)
      bundle -> WS/bundles/HASH   (files 0644, dirs 0755; bind-mounted read-only in the sandbox)
      inputs/                0755
        train.parquet        0644  row_id, text, label          (phase 2 only)
        holdout_texts.parquet 0644 row_id, text                 (never labels)
      out/                   owned by the sandbox uid while it runs; emptied before every attempt
      checkpoints/           owned by the sandbox uid while it runs; kept across attempts (resume)

The workspace root and ``WS/jobs`` stay 0700: nobody but their owner (and, through bind mounts of
one job's own directories, that job's sandbox) can reach any of it. Checkpoints kept for a resume
are checked like any output (``jobs.outputs``): a tree with a link, FIFO, device or hard link in
it is discarded and the job starts over.

Example::

    job_dir = prepare_job_dir(ws, job_row)
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from bedside.errors import JobError, NotFoundError
from bedside.jobs import outputs
from bedside.jobs.spec import JobSpec
from bedside.store import schema
from bedside.submissions.contributors import remaining_budget_flops

if TYPE_CHECKING:
    import pandas as pd

    from bedside.data.corpus import Corpus
    from bedside.workspace import Workspace

PHASES = {"phase1": 1, "phase2": 2}


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


def link_bundle_and_reset_outputs(job_dir: Path, bundle: Path, what: str, hint: str) -> None:
    """Point ``job_dir/bundle`` at a stored bundle (checked to be one), give the job an empty
    ``out/`` (a previous attempt's output must never be scored) and a ``checkpoints/`` that is a
    safe tree to resume from (else it starts over). Every job kind is staged through here.
    """
    if not bundle.is_dir():
        raise JobError(f"{what} is missing (expected {bundle}).", hint=hint)
    _open_bundle(bundle)
    link = job_dir / "bundle"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(bundle)

    out = job_dir / "out"
    if out.is_symlink() or out.is_file():
        out.unlink()
    elif out.exists():
        shutil.rmtree(out)
    out.mkdir()
    ckpt = job_dir / "checkpoints"
    if outputs.inspect(ckpt).refused:
        if ckpt.is_dir() and not ckpt.is_symlink():
            shutil.rmtree(ckpt)
        else:
            ckpt.unlink()
    ckpt.mkdir(exist_ok=True)


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
    ws.jobs_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(ws.jobs_dir, 0o700)  # no job reaches another job's directory by path
    job_dir = ws.jobs_dir / str(job_row["id"])
    job_dir.mkdir(exist_ok=True)
    os.chmod(job_dir, 0o755)
    inputs = job_dir / "inputs"
    inputs.mkdir(exist_ok=True)
    os.chmod(inputs, 0o755)
    _write_parquet(corpus.holdout[["row_id", "text"]], inputs / "holdout_texts.parquet")
    if kind == "phase2":
        _write_parquet(corpus.train[["row_id", "text", "label"]], inputs / "train.parquet")
    else:
        (inputs / "train.parquet").unlink(missing_ok=True)

    link_bundle_and_reset_outputs(
        job_dir,
        ws.bundles_dir / str(sub["bundle_hash"]),
        f"the bundle of submission {sub['id']}",
        "Restore the workspace's bundles/ folder, or resubmit the bundle.",
    )

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
