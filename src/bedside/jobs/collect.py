"""Collect a finished job's output and score it: the predictions through ``jobs.outputs`` (the
one reader of what a job wrote), the metrics by the trusted scorer with the holdout labels that
never entered the sandbox, the result recorded once per job with a typed ``Provenance``.

Example::

    result_id = collect_and_score(ws, job_row, launch_result)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from bedside.contracts import ComputeSummary, Provenance
from bedside.errors import JobError
from bedside.jobs import outputs
from bedside.jobs.spec import JobSpec
from bedside.jobs.staging import PHASES, job_context
from bedside.store import schema

if TYPE_CHECKING:
    from bedside.sandbox.launch import LaunchResult
    from bedside.workspace import Workspace


def _phase1_result_id(ws: Workspace, submission_id: int, corpus_version_id: int) -> int | None:
    # the phase-1 result on the same corpus version: a re-evaluation on a newer version must
    # never pair its phase 2 with another version's phase 1 (nor the reverse)
    r = schema.results
    with ws.store.read() as conn:
        v = conn.execute(
            select(r.c.id)
            .where(
                r.c.submission_id == submission_id,
                r.c.phase == 1,
                r.c.corpus_version_id == corpus_version_id,
            )
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
    cap = predictions_cap(row_ids, classes)
    try:
        raw = outputs.read_bytes(out, "predictions.json", cap)
    except FileNotFoundError as e:
        raise JobError(
            "invalid predictions: expected out/predictions.json; found no such file.",
            error_class="invalid_output",
        ) from e
    probs = load_predictions(raw, row_ids, classes, max_bytes=cap)
    phase = PHASES[str(job_row["kind"])]
    phase1 = None
    if phase == 2 and (p1 := _phase1_result_id(ws, int(sub["id"]), corpus.version_id)) is not None:
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
    compute = outputs.read_compute(out)
    estimate = (sub.get("estimate") or {}).get(f"phase{phase}")
    manifest = sub["manifest"] or {}
    provenance = Provenance(
        bundle_hash=sub["bundle_hash"],
        recipe=manifest.get("train") if phase == 2 else manifest.get("phase1"),
        compute=ComputeSummary(
            estimate_pflops=estimate,
            actual_pflops=compute.pflops,
            stopped_by_budget=compute.stopped_by_budget,
            job_wall_s=compute.wall_s,
        ),
        wall_s=launch_result.wall_s,
        peak_memory_mb=launch_result.peak_rss_mb,
        tier=launch_result.tier,
        attempts=job_row.get("attempts"),
        validation=compute.validation,
        corpus_version=corpus.hash,
    )
    return record_result(
        ws,
        corpus=corpus,
        phase=phase,
        model_label=str(sub["name"]),
        metrics=metrics,
        provenance=provenance.to_dict(),
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
