"""Taking in a submission: validate the bundle, store it, and — in one write transaction —
check the contributor's limit and budget, insert the submission and queue its jobs.

Validation and storing happen outside the transaction (they read the whole bundle); the limit
and budget are checked again inside it, after ``BEGIN IMMEDIATE``, so concurrent submissions can
never exceed them.

Example::

    sub = submit_bundle(ws, Path("bundle.tar.gz"), contributor="acme")
    sub["id"], sub["estimate"]["total"], sub["jobs"]
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from bedside.auth import Principal
from bedside.errors import AuthError, LimitError, NotFoundError
from bedside.jobs.queue import enqueue_for_submission
from bedside.store import audit, schema
from bedside.store.store import utcnow
from bedside.submissions.bundle import BundleLimits, store_bundle
from bedside.submissions.contributors import (
    UNCOUNTED_STATUSES,
    contributor_row,
    counted_submissions,
    reserved_pflops,
)
from bedside.submissions.flops import estimate_pflops, token_counts, what_fits
from bedside.submissions.validate import BundleReport, checked_bundle
from bedside.submissions.window import Clock, check_window, utc_now
from bedside.workspace import Workspace


def _limits(ws: Workspace) -> BundleLimits:
    return BundleLimits.from_mb(ws.policy().max_bundle_mb)


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _check_revoked(row: Any) -> None:
    if row["revoked"]:
        raise AuthError(
            f"contributor {row['name']!r} has been revoked and cannot submit.",
            hint="Ask the data owner to restore access (`bedside contributor set NAME --no-revoked`).",
        )


def _check_count(conn: Connection, row: Any) -> int:
    used = counted_submissions(conn, row["id"])
    if used >= row["max_submissions"]:
        raise LimitError(
            f"contributor {row['name']!r} has used {used} of {row['max_submissions']} submissions; none left.",
            hint=(
                "Rejected bundles and jobs that failed for platform reasons do not count. Ask the data owner "
                f"for more (`bedside contributor set {row['name']} --max-submissions N`)."
            ),
        )
    return used


def _check_budget(
    conn: Connection,
    row: Any,
    estimate: dict[str, Any],
    report: BundleReport,
    train_counts: Sequence[int],
    holdout_counts: Sequence[int],
) -> float:
    reserved = reserved_pflops(conn, row["id"])
    left = float(row["budget_pflops"]) - float(row["used_pflops"]) - reserved
    need = float(estimate["total"])
    if need > left:
        fits = what_fits(
            report.n_params, report.manifest, train_counts, holdout_counts, max(left, 0.0)
        )
        options = (
            ("; ".join(fits) + ".")
            if fits
            else f"nothing with this model (phase 1 alone needs {_fmt(estimate['phase1'])} PFLOPs)."
        )
        raise LimitError(
            f"this submission needs about {_fmt(need)} PFLOPs but contributor {row['name']!r} has "
            f"{_fmt(max(left, 0.0))} PFLOPs left (budget {_fmt(row['budget_pflops'])}, used "
            f"{_fmt(row['used_pflops'])}, reserved by queued submissions {_fmt(reserved)}): "
            f"over by {_fmt(need - max(left, 0.0))} PFLOPs. What would fit: {options}",
            hint=f"Change the [train] recipe in bedside.toml, or ask the data owner to raise the budget "
            f"(`bedside contributor set {row['name']} --budget-pflops X`).",
        )
    return left


def _duplicate(
    conn: Connection, contributor_id: int, bundle_hash: str, corpus_version_id: int
) -> Any:
    s = schema.submissions
    return (
        conn.execute(
            select(s)
            .where(
                s.c.contributor_id == contributor_id,
                s.c.bundle_hash == bundle_hash,
                s.c.corpus_version_id == corpus_version_id,
                s.c.counted.is_(True),
                s.c.status.not_in(UNCOUNTED_STATUSES),
            )
            .order_by(s.c.id)
        )
        .mappings()
        .first()
    )


def _active_corpus_id(conn: Connection) -> int:
    t = schema.corpus_versions
    cid = conn.execute(select(t.c.id).where(t.c.active.is_(True)).order_by(t.c.id.desc())).scalar()
    if cid is None:
        raise NotFoundError(
            "the workspace has no active corpus.", hint="Add one with `bedside data add FILE`."
        )
    return int(cid)


def submit_bundle(
    ws: Workspace,
    bundle_path: Path,
    contributor: str,
    actor: str | None = None,
    clock: Clock = utc_now,
) -> dict[str, Any]:
    """Validate, store and queue a bundle for ``contributor``. Returns the submission record
    (plus ``jobs``, ``warnings`` and ``duplicate``: True when the same bundle was already
    submitted by this contributor on this corpus — it is then not counted again).

    Outside the policy's evaluation window (read from ``clock``) it is refused with the dates.

    Example: ``submit_bundle(ws, Path("b.zip"), "acme")["id"]``
    """
    from bedside.data.corpus import load_corpus

    actor = actor or contributor
    check_window(ws.policy(), clock())  # fail early, before reading the bundle
    with ws.store.read() as conn:
        _check_revoked(contributor_row(conn, contributor))
    corpus = load_corpus(ws)
    train_counts = token_counts(corpus.train["text"])
    holdout_counts = token_counts(corpus.holdout["text"])
    with checked_bundle(
        Path(bundle_path), classes=corpus.class_names, limits=_limits(ws)
    ) as report:
        manifest = report.manifest.to_dict()
        estimate = estimate_pflops(report.n_params, manifest, train_counts, holdout_counts)
        estimate["corpus_version_id"] = corpus.version_id
        with ws.store.read() as conn:  # fail early, before copying the bundle
            row = contributor_row(conn, contributor)
            if _duplicate(conn, row["id"], report.content_hash, corpus.version_id) is None:
                _check_count(conn, row)
                _check_budget(conn, row, estimate, report, train_counts, holdout_counts)
        created = not (ws.bundles_dir / report.content_hash).is_dir()
        store_bundle(ws.bundles_dir, report.root, report.files, report.content_hash)
        try:
            return _record_submission(
                ws,
                report,
                contributor,
                actor,
                clock,
                manifest,
                estimate,
                train_counts,
                holdout_counts,
            )
        except BaseException:
            if created:
                _drop_unreferenced_bundle(ws, report.content_hash)
            raise


def _drop_unreferenced_bundle(ws: Workspace, digest: str) -> None:
    """Remove a bundle this (refused) submission stored, unless a submission now refers to it.

    Runs inside a write transaction: writers are serialised, and an accepted submission stores
    its bundle again inside its own write transaction, so none is left pointing at nothing.
    """
    s = schema.submissions
    with ws.store.write() as conn:
        if conn.execute(select(s.c.id).where(s.c.bundle_hash == digest).limit(1)).first() is None:
            shutil.rmtree(ws.bundles_dir / digest, ignore_errors=True)


def _record_submission(
    ws: Workspace,
    report: BundleReport,
    contributor: str,
    actor: str,
    clock: Clock,
    manifest: dict[str, Any],
    estimate: dict[str, Any],
    train_counts: Sequence[int],
    holdout_counts: Sequence[int],
) -> dict[str, Any]:
    """The write transaction of ``submit_bundle``: checks again, inserts, queues, audits."""
    meta = {
        "warnings": report.warnings,
        "n_params": report.n_params,
        "model_type": report.model_type,
        "architectures": report.architectures,
        "total_bytes": report.total_bytes,
        "files": [f.path for f in report.files],
    }
    s = schema.submissions
    with ws.store.write() as conn:
        row = contributor_row(conn, contributor)
        _check_revoked(row)
        check_window(ws.policy(), clock())  # again: validation may have outlasted the close
        corpus_id = _active_corpus_id(conn)
        dup = _duplicate(conn, row["id"], report.content_hash, corpus_id)
        if dup is not None:
            out = _record(dup, row["name"])
            out.update(duplicate=True, jobs=_job_ids(conn, dup["id"]), warnings=report.warnings)
            return out
        _check_count(conn, row)
        _check_budget(conn, row, estimate, report, train_counts, holdout_counts)
        # Stored again (a no-op when present) inside the write transaction: a refused racing
        # submission of the same bundle may have removed it meanwhile.
        store_bundle(ws.bundles_dir, report.root, report.files, report.content_hash)
        res = conn.execute(
            s.insert().values(
                contributor_id=row["id"],
                bundle_hash=report.content_hash,
                name=report.manifest.name,
                kind=report.manifest.kind,
                status="accepted",
                counted=True,
                corpus_version_id=corpus_id,
                created_at=utcnow(),
                manifest=manifest,
                estimate=estimate,
                meta=meta,
            )
        )
        pk = res.inserted_primary_key
        assert pk is not None
        sub_id = int(pk[0])
        jobs = enqueue_for_submission(conn, sub_id, corpus_id)
        audit.append(
            conn,
            actor,
            "submission.accept",
            {
                "submission_id": sub_id,
                "contributor": row["name"],
                "bundle_hash": report.content_hash,
                "name": report.manifest.name,
                "kind": report.manifest.kind,
                "estimate_pflops": estimate["total"],
                "corpus_version_id": corpus_id,
                "jobs": jobs,
            },
        )
        new = conn.execute(select(s).where(s.c.id == sub_id)).mappings().one()
        out = _record(new, row["name"])
        out.update(duplicate=False, jobs=jobs, warnings=report.warnings)
        return out


def _job_ids(conn: Connection, submission_id: int) -> list[int]:
    j = schema.jobs
    return [
        int(x)
        for x in conn.execute(
            select(j.c.id).where(j.c.submission_id == submission_id).order_by(j.c.id)
        ).scalars()
    ]


def _record(row: Any, contributor_name: str) -> dict[str, Any]:
    d = dict(row)
    d["counted"] = bool(d["counted"])
    d["contributor"] = contributor_name
    return d


def list_submissions(ws: Workspace, contributor_id: int | None = None) -> list[dict[str, Any]]:
    """All submissions (newest first), or one contributor's."""
    s, c = schema.submissions, schema.contributors
    q = (
        select(s, c.c.name.label("contributor"))
        .join(c, c.c.id == s.c.contributor_id)
        .order_by(s.c.id.desc())
    )
    if contributor_id is not None:
        q = q.where(s.c.contributor_id == contributor_id)
    with ws.store.read() as conn:
        rows = conn.execute(q).mappings().all()
    return [_record(r, r["contributor"]) for r in rows]


def get_submission(ws: Workspace, submission_id: int, principal: Principal) -> dict[str, Any]:
    """One submission; a contributor sees only their own (others are 'not found')."""
    s, c = schema.submissions, schema.contributors
    q = (
        select(s, c.c.name.label("contributor"))
        .join(c, c.c.id == s.c.contributor_id)
        .where(s.c.id == submission_id)
    )
    with ws.store.read() as conn:
        row = conn.execute(q).mappings().first()
        jobs = _job_ids(conn, submission_id) if row is not None else []
    if row is None or (
        not principal.is_owner and row["contributor_id"] != principal.contributor_id
    ):
        raise NotFoundError(
            f"no submission #{submission_id} that you can see.",
            hint="List yours with `bedside submissions`.",
        )
    out = _record(row, row["contributor"])
    out["jobs"] = jobs
    return out
