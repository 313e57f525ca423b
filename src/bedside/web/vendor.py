"""The vendor's flow in the browser: stage an upload, see `bedside check`'s static rules on it,
then queue it (the same ``submit_bundle`` as ``bedside submit``) or discard it; withdraw a
submission whose jobs have not started.

A staged upload is a file under ``WORKSPACE/uploads/`` with a small JSON beside it (who staged
it, when, its check report); it is no row in the store and expires after ``STAGE_TTL_S``. Only
the principal who staged it can see, queue or discard it (anyone else gets the same 404 as for a
missing one).

Example::

    staged = stage_upload(ws, viewer, upload)       # after upload.receive_bundle
    staged["check"]["ok"], staged["id"]
    sub = submit_staged(ws, viewer, staged["id"])   # queues phase 1 and phase 2
"""

from __future__ import annotations

import json
import re
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bedside.errors import BedsideError, ConfigError, NotFoundError

if TYPE_CHECKING:
    from bedside.auth import Principal
    from bedside.web.upload import Upload
    from bedside.workspace import Workspace

STAGE_TTL_S = 3600.0
_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def uploads_dir(ws: Workspace) -> Path:
    return Path(ws.root) / "uploads"


def _meta_path(ws: Workspace, stage_id: str) -> Path:
    if not _ID.match(stage_id):
        raise _missing(stage_id)
    return uploads_dir(ws) / f"staged-{stage_id}.json"


def _missing(stage_id: str) -> NotFoundError:
    return NotFoundError(
        f"no staged upload {stage_id[:64]!r} (it was queued, discarded, or expired after "
        f"{STAGE_TTL_S / 60:.0f} min).",
        hint="Upload the bundle again.",
    )


def _sweep(ws: Workspace, now: float) -> None:
    """Remove staged uploads older than the TTL (each staging call sweeps)."""
    for meta in uploads_dir(ws).glob("staged-*.json"):
        try:
            created = float(json.loads(meta.read_text()).get("created", 0))
        except (OSError, ValueError):
            created = 0.0
        if now - created > STAGE_TTL_S:
            _remove(meta)


def _remove(meta: Path) -> None:
    try:
        data = json.loads(meta.read_text())
        (meta.parent / str(data.get("file", ""))).unlink(missing_ok=True)
    except (OSError, ValueError):
        pass
    meta.unlink(missing_ok=True)


def check_upload(ws: Workspace, path: Path, vendor: str) -> dict[str, Any]:
    """`bedside check`'s static rules on an archive, against this workspace's classes, limits and
    corpus, with the compute estimate beside what the vendor has left. Raises nothing for a
    refused bundle: ``ok`` is False and ``error`` says why, exactly as intake would."""
    from bedside.data.corpus import load_corpus
    from bedside.submissions.bundle import BundleLimits
    from bedside.submissions.contributors import get_contributor
    from bedside.submissions.flops import estimate_pflops, token_counts
    from bedside.submissions.validate import checked_bundle
    from bedside.submissions.window import check_window, utc_now

    policy = ws.policy()
    out: dict[str, Any] = {"ok": False, "error": None, "bundle": None, "estimate": None}
    try:
        check_window(policy, utc_now())
        corpus = load_corpus(ws)
        with checked_bundle(
            path, classes=corpus.class_names, limits=BundleLimits.from_mb(policy.max_bundle_mb)
        ) as report:
            manifest = report.manifest.to_dict()
            estimate = estimate_pflops(
                report.n_params,
                manifest,
                token_counts(corpus.train["text"]),
                token_counts(corpus.holdout["text"]),
            )
            bundle = report.to_dict()
    except BedsideError as e:
        out["error"] = e.to_dict()
        return out
    me = get_contributor(ws, vendor)
    left = me.get("budget_left_pflops")
    total = float(estimate.get("total") or 0.0)
    out.update(
        ok=True,
        bundle={k: bundle[k] for k in bundle if k != "files"} | {"n_files": len(bundle["files"])},
        estimate=estimate,
        budget_left_pflops=left,
        fits_budget=left is None or total <= float(left),
        submissions_left=me.get("submissions_left"),
    )
    return out


def stage_upload(
    ws: Workspace, viewer: Principal, upload: Upload, vendor: str | None = None
) -> dict[str, Any]:
    """Keep an upload for ``viewer`` and check it; returns ``{"id", "filename", "size", "check",
    "vendor", "expires_in_s"}``. The owner stages for a named ``vendor``."""
    now = time.time()
    uploads_dir(ws).mkdir(parents=True, exist_ok=True, mode=0o700)
    _sweep(ws, now)
    who = vendor_for(viewer, vendor)
    stage_id = secrets.token_urlsafe(18)
    target = uploads_dir(ws) / f"staged-{stage_id}{_suffix(upload.path.name)}"
    upload.path.rename(target)
    check = check_upload(ws, target, who)
    meta = {
        "id": stage_id,
        "principal": viewer.name,
        "vendor": who,
        "file": target.name,
        "filename": upload.filename,
        "size": upload.size,
        "created": now,
        "check": check,
    }
    _meta_path(ws, stage_id).write_text(json.dumps(meta))
    return _public(meta, now)


def _suffix(name: str) -> str:
    from bedside.web.upload import SUFFIXES

    low = name.lower()
    return next((s for s in SUFFIXES if low.endswith(s)), ".bin")


def vendor_for(viewer: Principal, vendor: str | None) -> str:
    """Whom an upload is for: the caller, or the vendor the owner names (the owner must)."""
    if viewer.is_owner:
        if not vendor:
            raise ConfigError(
                "the owner must name the vendor to submit for.", hint="Add ?contributor=NAME."
            )
        return vendor
    return viewer.name


def _public(meta: dict[str, Any], now: float) -> dict[str, Any]:
    return {
        "id": meta["id"],
        "vendor": meta["vendor"],
        "filename": meta["filename"],
        "size": meta["size"],
        "check": meta["check"],
        "expires_in_s": max(0, int(float(meta["created"]) + STAGE_TTL_S - now)),
    }


def _load(ws: Workspace, viewer: Principal, stage_id: str) -> tuple[Path, dict[str, Any]]:
    meta_path = _meta_path(ws, stage_id)
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        raise _missing(stage_id) from None
    expired = time.time() - float(meta.get("created", 0)) > STAGE_TTL_S
    if meta.get("principal") != viewer.name or expired:
        if expired:
            _remove(meta_path)
        raise _missing(stage_id)
    return meta_path, meta


def get_staged(ws: Workspace, viewer: Principal, stage_id: str) -> dict[str, Any]:
    return _public(_load(ws, viewer, stage_id)[1], time.time())


def discard_staged(ws: Workspace, viewer: Principal, stage_id: str) -> None:
    meta_path, _meta = _load(ws, viewer, stage_id)
    _remove(meta_path)


def submit_staged(ws: Workspace, viewer: Principal, stage_id: str) -> dict[str, Any]:
    """Queue a staged upload through ``submissions.intake.submit_bundle`` (every intake rule
    again, the limits in one transaction); the staged file is removed either way."""
    from bedside.submissions.intake import submit_bundle

    meta_path, meta = _load(ws, viewer, stage_id)
    try:
        return dict(submit_bundle(ws, meta_path.parent / meta["file"], meta["vendor"], viewer.name))
    finally:
        _remove(meta_path)


class NotWithdrawable(BedsideError):
    """The submission has a job that has started or finished; it can no longer be withdrawn."""

    code = "not_withdrawable"
    http_status = 409


def withdraw(ws: Workspace, viewer: Principal, submission_id: int) -> dict[str, Any]:
    """Withdraw a submission none of whose jobs has started: its queued jobs are cancelled through
    the queue's own cancel transition (a cancelled submission does not count against the limit).
    Raises ``NotWithdrawable`` once a job has started."""
    from bedside.jobs.queue import SqlQueue
    from bedside.store import audit
    from bedside.web import queries

    sub = queries.get_submission(ws, viewer, submission_id)
    states = [j["state"] for j in sub["jobs"]]
    if not states or any(s != "queued" for s in states):
        raise NotWithdrawable(
            f"only a submission whose jobs are all still queued can be withdrawn; submission "
            f"{submission_id}'s jobs are {', '.join(states) or 'none'}.",
            hint="A running evaluation finishes (or the owner cancels it with `bedside jobs cancel`).",
        )
    queue = SqlQueue(ws.store)
    for job in sub["jobs"]:
        queue.cancel(int(job["id"]))
    with ws.store.write() as conn:
        audit.append(
            conn,
            viewer.name,
            "submission.withdraw",
            {"submission_id": submission_id, "jobs": [j["id"] for j in sub["jobs"]]},
        )
    return queries.get_submission(ws, viewer, submission_id)
