"""Read models for the web layer: what one principal may see of submissions, jobs and results.

Every function takes the viewer; a contributor asking for something that is not theirs gets
``NotFoundError`` (the same answer as for something that does not exist), never a 403.
Nothing here returns per-record predictions or corpus text: results are reduced to their
aggregate metrics (an allow-list) and contributors see only an allow-list of provenance.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from bedside.errors import NotFoundError
from bedside.leaderboard import round_released
from bedside.leaderboard.claims import submission_claims
from bedside.leaderboard.holdout_rules import released_result_views
from bedside.store import audit, schema

if TYPE_CHECKING:
    from bedside.auth import Principal
    from bedside.workspace import Workspace

# Aggregate metric keys that may leave the workspace (see "Result metrics" in architecture.md).
METRIC_KEYS = (
    "n",
    "macro_f1",
    "macro_f1_ci",
    "accuracy",
    "per_class",
    "confusion",
    "robustness",
    "ece",
    "calibration",
    "resamples",
    "seed",
    "delta_vs_phase1",
    "weighted_f1",
    "micro_f1",
)
PER_CLASS_KEYS = (
    "name",
    "precision",
    "recall",
    "f1",
    "support",
    "recall_ci",
    "precision_ci",
    "f1_ci",
    "share",
)
PROVENANCE_KEYS = (
    "corpus_hash",
    "corpus_version",
    "bundle_hash",
    "recipe",
    "compute",
    "wall_s",
    "peak_rss_mb",
    "peak_memory_mb",
    "tier",
    "isolation_tier",
    "device",
    "seed",
    "validation",
    "attempts",
)
JOB_TERMINAL = ("done", "failed", "cancelled")
LOG_TAIL_CHARS = 4000


def _nf(what: str, ident: object) -> NotFoundError:
    return NotFoundError(
        f"no {what} {ident} in this workspace.", hint="Check the id; you can only see your own."
    )


def public_metrics(metrics: Mapping[str, Any], decimals: int) -> dict[str, Any]:
    """The aggregate part of a result's metrics, rounded to the released precision."""
    out: dict[str, Any] = {k: metrics[k] for k in METRIC_KEYS if k in metrics}
    if "per_class" in out:
        out["per_class"] = [
            {k: pc[k] for k in PER_CLASS_KEYS if k in pc} for pc in out["per_class"] or []
        ]
    conf = out.get("confusion")
    if isinstance(conf, Mapping):
        out["confusion"] = {"labels": conf.get("labels"), "matrix": conf.get("matrix")}
    return round_released(out, decimals)


def public_provenance(prov: Mapping[str, Any], owner: bool) -> dict[str, Any]:
    return dict(prov) if owner else {k: prov[k] for k in PROVENANCE_KEYS if k in prov}


# -- submissions ------------------------------------------------------------------------
def _submission_row(ws: Workspace, viewer: Principal, submission_id: int) -> dict[str, Any]:
    s, c = schema.submissions, schema.contributors
    q = (
        select(s, c.c.name.label("contributor"))
        .select_from(s.join(c, s.c.contributor_id == c.c.id))
        .where(s.c.id == submission_id)
    )
    with ws.store.read() as conn:
        row = conn.execute(q).mappings().first()
    if row is None or (not viewer.is_owner and row["contributor_id"] != viewer.contributor_id):
        raise _nf("submission", submission_id)
    return dict(row)


def submission_summary(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "contributor": row["contributor"],
        "kind": row["kind"],
        "status": row["status"],
        "counted": bool(row["counted"]),
        "created_at": row["created_at"],
        "corpus_version_id": row["corpus_version_id"],
        "bundle_hash": row["bundle_hash"],
        "estimate": row["estimate"],
    }


def list_submissions(
    ws: Workspace, viewer: Principal, contributor: str | None = None
) -> list[dict[str, Any]]:
    """Submissions the viewer may see (owner: all, or those of ``contributor``)."""
    s, c = schema.submissions, schema.contributors
    q = select(s, c.c.name.label("contributor")).select_from(
        s.join(c, s.c.contributor_id == c.c.id)
    )
    if not viewer.is_owner:
        q = q.where(s.c.contributor_id == viewer.contributor_id)
    elif contributor:
        q = q.where(c.c.name == contributor)
    with ws.store.read() as conn:
        rows = conn.execute(q.order_by(s.c.id.desc())).mappings().all()
    return [submission_summary(dict(r)) for r in rows]


def get_submission(
    ws: Workspace, viewer: Principal, submission_id: int, *, with_results: bool = True
) -> dict[str, Any]:
    """One submission with its jobs (queue position and ETA where queued or running) and
    released results."""
    from bedside.web.runs import follow, queue_info

    row = _submission_row(ws, viewer, submission_id)
    out = submission_summary(row)
    out["manifest"] = row["manifest"]
    info = queue_info(ws)
    out["jobs"] = [
        follow(job_view(j, viewer.is_owner), info) for j in _jobs(ws, submission_id=submission_id)
    ]
    if not with_results:
        return out
    out["results"] = submission_results(ws, viewer, submission_id, checked=True)
    policy = ws.policy()
    claims = submission_claims(row["manifest"], out["results"], policy.claim_gap_threshold)
    out["claims"] = round_released(claims, policy.score_decimals)
    return out


def submission_results(
    ws: Workspace, viewer: Principal, submission_id: int, *, checked: bool = False
) -> list[dict[str, Any]]:
    if not checked:
        _submission_row(ws, viewer, submission_id)
    r = schema.results
    with ws.store.read() as conn:
        rows = (
            conn.execute(select(r).where(r.c.submission_id == submission_id).order_by(r.c.id))
            .mappings()
            .all()
        )
    decimals = ws.policy().score_decimals
    views = [result_view(dict(x), viewer.is_owner, decimals) for x in rows]
    return released_result_views(ws, viewer, views)  # the Ladder / public split (holdout_rules)


def result_view(row: Mapping[str, Any], owner: bool, decimals: int) -> dict[str, Any]:
    return {
        "id": row["id"],
        "submission_id": row["submission_id"],
        "job_id": row["job_id"],
        "phase": row["phase"],
        "model_label": row["model_label"],
        "macro_f1": round(float(row["macro_f1"]), decimals),
        "metrics": public_metrics(row["metrics"] or {}, decimals),
        "provenance": public_provenance(row["provenance"] or {}, owner),
        "created_at": row["created_at"],
    }


def _visible_row(
    ws: Workspace, viewer: Principal, table: Any, row_id: int, what: str, shared_if_unowned: bool
) -> dict[str, Any]:
    """A results or jobs row joined with its submission's owner, or the same 404 whether it is
    missing or someone else's. Rows without a submission (the baseline) are visible to every
    viewer when ``shared_if_unowned``, else to the owner only."""
    s = schema.submissions
    q = (
        select(table, s.c.contributor_id)
        .select_from(table.outerjoin(s, table.c.submission_id == s.c.id))
        .where(table.c.id == row_id)
    )
    with ws.store.read() as conn:
        row = conn.execute(q).mappings().first()
    if row is None:
        raise _nf(what, row_id)
    if not viewer.is_owner:
        unowned = row["submission_id"] is None
        if (unowned and not shared_if_unowned) or (
            not unowned and row["contributor_id"] != viewer.contributor_id
        ):
            raise _nf(what, row_id)
    return dict(row)


def get_result(ws: Workspace, viewer: Principal, result_id: int) -> dict[str, Any]:
    row = _visible_row(ws, viewer, schema.results, result_id, "result", shared_if_unowned=True)
    view = result_view(row, viewer.is_owner, ws.policy().score_decimals)
    return released_result_views(ws, viewer, [view])[0]


# -- jobs ---------------------------------------------------------------------------------
def _jobs(
    ws: Workspace, submission_id: int | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    j, s, c = schema.jobs, schema.submissions, schema.contributors
    q = (
        select(
            j, s.c.name.label("submission_name"), s.c.contributor_id, c.c.name.label("contributor")
        )
        .select_from(
            j.outerjoin(s, j.c.submission_id == s.c.id).outerjoin(c, s.c.contributor_id == c.c.id)
        )
        .order_by(j.c.id.desc())
    )
    if submission_id is not None:
        q = q.where(j.c.submission_id == submission_id).order_by(None).order_by(j.c.id)
    if limit:
        q = q.limit(limit)
    with ws.store.read() as conn:
        return [dict(x) for x in conn.execute(q).mappings()]


def job_view(job: Mapping[str, Any], owner: bool) -> dict[str, Any]:
    progress = dict(job.get("progress") or {})
    step, total = progress.get("step"), progress.get("total")
    fraction = None
    if job["state"] == "done":
        fraction = 1.0
    elif isinstance(step, int | float) and isinstance(total, int | float) and total > 0:
        fraction = max(0.0, min(1.0, step / total))
    out = {
        "id": job["id"],
        "submission_id": job["submission_id"],
        "kind": job["kind"],
        "state": job["state"],
        "terminal": job["state"] in JOB_TERMINAL,
        "attempts": job["attempts"],
        "max_attempts": job["max_attempts"],
        "progress": progress,
        "fraction": fraction,
        "error_class": job["error_class"],
        "created_at": job["created_at"],
        "started_at": job["started_at"],
        "finished_at": job["finished_at"],
    }
    if owner:
        out["error_message"] = job["error_message"]
        out["contributor"] = job.get("contributor")
        out["submission_name"] = job.get("submission_name")
    return out


def get_job(ws: Workspace, viewer: Principal, job_id: int) -> dict[str, Any]:
    """A job's state and latest progress, with its queue position and ETA."""
    from bedside.web.runs import follow, queue_info

    row = _visible_row(ws, viewer, schema.jobs, job_id, "job", shared_if_unowned=False)
    return follow(job_view(row, viewer.is_owner), queue_info(ws))


def list_jobs(ws: Workspace, limit: int = 200) -> list[dict[str, Any]]:
    """All jobs, newest first (owner only: includes error messages)."""
    return [job_view(j, owner=True) for j in _jobs(ws, limit=limit)]


def job_events(
    ws: Workspace, viewer: Principal, job_id: int, limit: int = 2000
) -> list[dict[str, Any]]:
    """Progress records of a job (training-curve points)."""
    get_job(ws, viewer, job_id)
    e = schema.job_events
    with ws.store.read() as conn:
        rows = conn.execute(
            select(e.c.ts, e.c.data).where(e.c.job_id == job_id).order_by(e.c.id).limit(limit)
        ).all()
    keep = ("step", "total", "epoch", "loss", "val_macro_f1", "lr", "throughput", "eta_s", "stage")
    return [{"ts": ts, **{k: d[k] for k in keep if k in (d or {})}} for ts, d in rows]


def job_log_tail(ws: Workspace, job_id: int, chars: int = LOG_TAIL_CHARS) -> str | None:
    """The end of a job's free-text log (owner only)."""
    from bedside.jobs.outputs import read_tail

    # a job wrote it: read through jobs.outputs (no links, FIFOs or devices are followed)
    return read_tail(Path(ws.jobs_dir) / str(job_id) / "out", "log.txt", chars)


def rerun_submission(ws: Workspace, submission_id: int, actor: str = "owner") -> dict[str, Any]:
    """Queue a submission's jobs again (new job ids; unfinished old jobs are cancelled)."""
    from bedside.jobs.queue import rerun_submission_jobs

    s = schema.submissions
    with ws.store.write() as conn:
        row = conn.execute(select(s).where(s.c.id == submission_id)).mappings().first()
        if row is None:
            raise _nf("submission", submission_id)
        new, cancelled = rerun_submission_jobs(conn, submission_id, row["corpus_version_id"])
        audit.append(
            conn,
            actor,
            "submission.rerun",
            {"submission_id": submission_id, "cancelled_jobs": cancelled, "jobs": new},
        )
    return {"submission_id": submission_id, "jobs": new, "cancelled_jobs": cancelled}


# -- corpus versions and contributors ----------------------------------------------------
def corpus_version_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """Metadata of a corpus version (no text; the report is aggregate)."""
    return {
        "id": row["id"],
        "hash": row["hash"],
        "parent_id": row["parent_id"],
        "created_at": row["created_at"],
        "n_train": row["n_train"],
        "n_holdout": row["n_holdout"],
        "classes": row["classes"],
        "split": row["split"],
        "source": row["source"],
        "active": bool(row["active"]),
    }


def list_corpus_versions(ws: Workspace) -> list[dict[str, Any]]:
    t = schema.corpus_versions
    with ws.store.read() as conn:
        return [
            corpus_version_view(dict(r))
            for r in conn.execute(select(t).order_by(t.c.id)).mappings()
        ]


def get_corpus_version(ws: Workspace, version_id: int) -> dict[str, Any]:
    t = schema.corpus_versions
    with ws.store.read() as conn:
        row = conn.execute(select(t).where(t.c.id == version_id)).mappings().first()
    if row is None:
        raise _nf("corpus version", version_id)
    out = corpus_version_view(dict(row))
    report = dict(row["report"] or {})
    out["report_keys"] = sorted(report)
    return out


def get_contributor(ws: Workspace, name: str) -> dict[str, Any]:
    """A contributor's public record with what is left (never the token or its hash)."""
    from bedside.submissions.contributors import get_contributor as _get

    return _public_contributor(_get(ws, name))


def list_contributors(ws: Workspace) -> list[dict[str, Any]]:
    from bedside.submissions.contributors import list_contributors as _list

    return [_public_contributor(c) for c in _list(ws)]


def _public_contributor(d: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in d.items() if k not in ("token_hash", "token_salt", "token", "id")}
    for k in ("used_pflops", "reserved_pflops", "budget_left_pflops"):
        if isinstance(out.get(k), float):
            out[k] = round(out[k], 3)
    return out
