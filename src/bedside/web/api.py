"""The JSON API under ``/api``. Thin: every route calls a library function.

Roles: the owner sees everything; a contributor sees their own submissions, jobs and results
(someone else's is a 404, exactly like a missing one), the aggregate EDA and the leaderboard as
``bedside.leaderboard`` allows; anonymous callers see only the published leaderboard and the
health check. No route returns per-record predictions or corpus text.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from bedside import __version__, leaderboard
from bedside.errors import BedsideError, ConfigError
from bedside.store import audit
from bedside.web import queries
from bedside.web.deps import WS, MaybeViewer, Owner, Viewer
from bedside.web.upload import receive_bundle
from bedside.web.vendor import vendor_for


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. `not_found`.")
    message: str = Field(description="What was expected and what was found.")
    hint: str | None = Field(default=None, description="What to do about it.")


class ErrorResponse(BaseModel):
    error: ErrorBody


class ContributorCreate(BaseModel):
    name: str = Field(
        min_length=1, max_length=200, description="Vendor name, unique in the workspace."
    )
    max_submissions: int | None = Field(
        default=None, ge=0, description="Default: the policy's default_submissions."
    )
    budget_pflops: float | None = Field(
        default=None, ge=0, description="Default: the policy's default_budget_pflops."
    )


class ContributorUpdate(BaseModel):
    max_submissions: int | None = Field(default=None, ge=0)
    budget_pflops: float | None = Field(default=None, ge=0)
    revoked: bool | None = None


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": desc}
    for code, desc in (
        (401, "No token, or a token that is not valid (or revoked)."),
        (404, "Not found, or not yours (the API does not say which)."),
        (422, "A value the API cannot take."),
    )
}

router = APIRouter(prefix="/api", responses=ERRORS)

Json = dict[str, Any]


class UnavailableError(BedsideError):
    """A part of bedside this route needs is not installed in this build."""

    code = "unavailable"
    http_status = 501


def _contributors_module() -> Any:
    try:
        from bedside.submissions import contributors
    except ImportError as e:  # pragma: no cover - only in a partial build
        raise UnavailableError("contributor management is not available in this build.") from e
    return contributors


# -- everyone -----------------------------------------------------------------------------
@router.get("/health", tags=["meta"], summary="Liveness check (no token needed).")
def health() -> Json:
    return {"ok": True, "version": __version__}


@router.get(
    "/me", tags=["meta"], summary="Who am I; a contributor's remaining submissions and budget."
)
def me(ws: WS, p: Viewer) -> Json:
    out: Json = {"role": p.role, "name": p.name, "published": leaderboard.is_published(ws)}
    if p.is_owner:
        return out
    info = queries.get_contributor(ws, p.name)
    keep = (
        "max_submissions",
        "submissions_used",
        "submissions_left",
        "budget_pflops",
        "used_pflops",
        "reserved_pflops",
        "budget_left_pflops",
    )
    out.update({k: info[k] for k in keep if k in info})
    return out


@router.get(
    "/status",
    tags=["meta"],
    summary="The workspace header: evaluation window, participants, your submissions and PFLOPs.",
)
def status(ws: WS, p: Viewer) -> Json:
    """The end date and state of the evaluation window, the number of participants and, for a
    contributor, submissions used / allowed and PFLOPs used / budget."""
    from bedside.submissions.header import workspace_header
    from bedside.submissions.window import utc_now

    return workspace_header(ws, p, utc_now()).to_dict()


@router.get(
    "/leaderboard", tags=["leaderboard"], summary="The leaderboard rows this caller may see."
)
def get_leaderboard(ws: WS, p: MaybeViewer) -> Json:
    """Owner: every row. Contributor: own rows and the baseline until published (without
    ranks: a rank among one's own rows is no rank), then all. Anonymous: only once published.
    ``decision`` says in words whether any visible model is significantly above the internal
    baseline; each submission row's ``vs_baseline`` has the difference, its CI and the method."""
    from bedside.web.decisions import decide, hide_ranks

    board = hide_ranks(leaderboard.build_leaderboard(ws, p), p)
    board["decision"] = decide(ws, board, p)
    return board


@router.get(
    "/impact", tags=["leaderboard"], summary="Business impact of the visible leaderboard rows."
)
def get_impact(
    ws: WS,
    p: MaybeViewer,
    abstracts_per_year: Annotated[int | None, Query(ge=0)] = None,
    cost_per_missed_paper: Annotated[float | None, Query(ge=0)] = None,
    reviewer_cost_per_fte: Annotated[float | None, Query(ge=0)] = None,
    reviewer_fte: Annotated[float | None, Query(ge=0)] = None,
    ai_cost_per_year: Annotated[
        float | None, Query(ge=0, description="Default AI cost per vendor.")
    ] = None,
    baseline_cost_per_year: Annotated[float, Query(ge=0)] = 0.0,
    currency: Annotated[str | None, Query(max_length=8)] = None,
    ai_cost: Annotated[
        list[str] | None,
        Query(description="Per-vendor AI cost as `VENDOR=AMOUNT`; repeat for several."),
    ] = None,
) -> Json:
    assumptions = {
        "abstracts_per_year": abstracts_per_year,
        "cost_per_missed_paper": cost_per_missed_paper,
        "reviewer_cost_per_fte": reviewer_cost_per_fte,
        "reviewer_fte": reviewer_fte,
        "ai_cost_per_year": ai_cost_per_year,
        "currency": currency,
    }
    from bedside.web.decisions import hide_ranks

    return hide_ranks(
        leaderboard.impact_rows(
            ws, p, assumptions, parse_ai_costs(ai_cost or []), baseline_cost_per_year
        ),
        p,
    )


def parse_ai_costs(items: list[str]) -> dict[str, float]:
    """``["vendor A=12000", ...]`` -> ``{"vendor A": 12000.0}``; raises ConfigError."""
    out: dict[str, float] = {}
    for item in items:
        name, sep, raw = item.rpartition("=")
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if not sep or not name.strip() or value < 0:
            raise ConfigError(
                f"expected VENDOR=AMOUNT with AMOUNT >= 0, got {item!r}.",
                hint="e.g. ai_cost=acme=12000",
            )
        out[name.strip()] = value
    return out


@router.get(
    "/eda", tags=["data"], summary="The aggregate, k-suppressed EDA report of the active corpus."
)
def get_eda(ws: WS, p: Viewer) -> Json:
    corpus = leaderboard.active_corpus(ws)
    return {
        "corpus_version": {"id": corpus["id"], "hash": corpus["hash"]} if corpus else None,
        "eda": leaderboard.corpus_eda(ws) if corpus else None,
    }


# -- submissions, jobs, results -----------------------------------------------------------
@router.get(
    "/submissions", tags=["submissions"], summary="Submissions: the caller's own (owner: all)."
)
def list_submissions(
    ws: WS,
    p: Viewer,
    contributor: Annotated[str | None, Query(description="Owner only: filter by vendor.")] = None,
) -> Json:
    return {"submissions": queries.list_submissions(ws, p, contributor)}


def _upload_limit(request: Request, ws: Any) -> int:
    return int(request.app.state.max_upload_bytes or ws.policy().max_bundle_mb * 2**20)


UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["bundle"],
                    "properties": {
                        "bundle": {
                            "type": "string",
                            "format": "binary",
                            "description": "The bundle archive (.tar.gz, .tgz, .tar or .zip).",
                        }
                    },
                }
            }
        },
    }
}


@router.post(
    "/submissions",
    tags=["submissions"],
    status_code=201,
    summary="Upload a model bundle (multipart field `bundle`); validates it and queues its jobs.",
    responses={
        413: {
            "model": ErrorResponse,
            "description": "The upload is larger than the workspace allows.",
        },
        429: {"model": ErrorResponse, "description": "Submission limit or compute budget reached."},
    },
    openapi_extra=UPLOAD_BODY,
)
async def create_submission(
    request: Request,
    ws: WS,
    p: Viewer,
    contributor: Annotated[
        str | None, Query(description="Owner only: submit on behalf of this vendor.")
    ] = None,
) -> Json:
    from starlette.concurrency import run_in_threadpool

    vendor = vendor_for(p, contributor)
    try:
        from bedside.submissions.intake import submit_bundle
    except ImportError as e:  # pragma: no cover - only in a partial build
        raise UnavailableError("bundle intake is not available in this build.") from e
    limit = _upload_limit(request, ws)
    tmp = ws.root / "uploads"
    upload = await receive_bundle(request, tmp, limit)
    try:
        sub = await run_in_threadpool(submit_bundle, ws, upload.path, vendor, p.name)
    finally:
        upload.path.unlink(missing_ok=True)
    return dict(sub)


@router.post(
    "/uploads",
    tags=["submissions"],
    status_code=201,
    summary="Stage a bundle (multipart field `bundle`) and run `bedside check`'s static rules on "
    "it; nothing is queued until `POST /api/uploads/{id}/submit`.",
    responses={413: {"model": ErrorResponse, "description": "The upload is too large."}},
    openapi_extra=UPLOAD_BODY,
)
async def stage_upload(
    request: Request,
    ws: WS,
    p: Viewer,
    contributor: Annotated[
        str | None, Query(description="Owner only: stage on behalf of this vendor.")
    ] = None,
) -> Json:
    """The check report is ``check``: ``ok``, the intake ``error`` (code, message, hint) when the
    bundle is refused, else the bundle summary, the compute estimate on this corpus and whether
    it fits the caller's remaining budget. Staged uploads expire after an hour."""
    from starlette.concurrency import run_in_threadpool

    from bedside.web import vendor

    vendor_for(p, contributor)  # refused before the body is read
    if p.is_owner:
        queries.get_contributor(ws, str(contributor))  # 404 for an unknown vendor
    limit = _upload_limit(request, ws)
    upload = await receive_bundle(request, vendor.uploads_dir(ws), limit)
    try:
        return await run_in_threadpool(vendor.stage_upload, ws, p, upload, contributor)
    finally:
        upload.path.unlink(missing_ok=True)


@router.get("/uploads/{stage_id}", tags=["submissions"], summary="A staged upload's check report.")
def get_staged(ws: WS, p: Viewer, stage_id: str) -> Json:
    from bedside.web import vendor

    return vendor.get_staged(ws, p, stage_id)


@router.post(
    "/uploads/{stage_id}/submit",
    tags=["submissions"],
    status_code=201,
    summary="Queue a staged upload: every intake rule again, then phase 1 and phase 2 are queued.",
    responses={429: {"model": ErrorResponse, "description": "Submission limit or budget reached."}},
)
async def submit_staged(ws: WS, p: Viewer, stage_id: str) -> Json:
    from starlette.concurrency import run_in_threadpool

    from bedside.web import vendor

    return await run_in_threadpool(vendor.submit_staged, ws, p, stage_id)


@router.delete("/uploads/{stage_id}", tags=["submissions"], summary="Discard a staged upload.")
def discard_staged(ws: WS, p: Viewer, stage_id: str) -> Json:
    from bedside.web import vendor

    vendor.discard_staged(ws, p, stage_id)
    return {"id": stage_id, "discarded": True}


@router.post(
    "/submissions/{submission_id}/withdraw",
    tags=["submissions"],
    summary="Withdraw your own submission while all its jobs are still queued (it then does not "
    "count against your limit).",
    responses={409: {"model": ErrorResponse, "description": "A job has already started."}},
)
def withdraw_submission(ws: WS, p: Viewer, submission_id: int) -> Json:
    from bedside.web import vendor

    return vendor.withdraw(ws, p, submission_id)


@router.get(
    "/submissions/{submission_id}/stream",
    tags=["submissions"],
    summary="Server-sent events: the submission's jobs (state, progress, queue position, ETA) "
    "each time they change; ends when every job has finished.",
    responses={200: {"content": {"text/event-stream": {}}, "description": "An event stream."}},
)
async def stream_submission(request: Request, ws: WS, p: Viewer, submission_id: int) -> Any:
    from fastapi.responses import StreamingResponse

    from bedside.web.runs import event_stream

    queries.get_submission(ws, p, submission_id)  # 404 before the stream starts
    return StreamingResponse(
        event_stream(request, ws, p, submission_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/compare",
    tags=["submissions"],
    summary="Two results side by side: per-class recall and a paired test of macro-F1.",
)
def compare(
    ws: WS,
    p: Viewer,
    a: Annotated[int, Query(description="Result id (yours, or the baseline).")],
    b: Annotated[int, Query(description="Result id; once published, any vendor's.")],
) -> Json:
    from bedside.web.compare import compare_view

    return compare_view(ws, p, a, b)


@router.get(
    "/submissions/{submission_id}",
    tags=["submissions"],
    summary="One submission, its jobs and results.",
)
def get_submission(ws: WS, p: Viewer, submission_id: int) -> Json:
    return queries.get_submission(ws, p, submission_id)


@router.get(
    "/submissions/{submission_id}/results",
    tags=["submissions"],
    summary="A submission's results (aggregate only).",
)
def get_submission_results(ws: WS, p: Viewer, submission_id: int) -> Json:
    return {"results": queries.submission_results(ws, p, submission_id)}


@router.post(
    "/submissions/{submission_id}/rerun", tags=["owner"], summary="Queue a submission's jobs again."
)
def rerun_submission(ws: WS, p: Owner, submission_id: int) -> Json:
    return queries.rerun_submission(ws, submission_id, actor=p.name)


@router.get(
    "/results/{result_id}", tags=["submissions"], summary="One result (aggregate metrics only)."
)
def get_result(ws: WS, p: Viewer, result_id: int) -> Json:
    return queries.get_result(ws, p, result_id)


@router.get(
    "/jobs", tags=["owner"], summary="All jobs, newest first, with states, attempts and errors."
)
def list_jobs(ws: WS, p: Owner, limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> Json:
    return {"jobs": queries.list_jobs(ws, limit)}


@router.get(
    "/jobs/{job_id}", tags=["submissions"], summary="A job's state and latest progress record."
)
def get_job(ws: WS, p: Viewer, job_id: int) -> Json:
    return queries.get_job(ws, p, job_id)


@router.get(
    "/jobs/{job_id}/events",
    tags=["submissions"],
    summary="A job's progress records (training curve).",
)
def get_job_events(ws: WS, p: Viewer, job_id: int) -> Json:
    return {"events": queries.job_events(ws, p, job_id)}


@router.get("/jobs/{job_id}/log", tags=["owner"], summary="The end of a job's log (owner only).")
def get_job_log(ws: WS, p: Owner, job_id: int) -> Json:
    queries.get_job(ws, p, job_id)
    return {"job_id": job_id, "log_tail": queries.job_log_tail(ws, job_id)}


# -- owner: contributors, publishing, corpus, audit ------------------------------------
@router.get(
    "/contributors", tags=["owner"], summary="Contributors with their limits and what is left."
)
def list_contributors(ws: WS, p: Owner) -> Json:
    return {"contributors": queries.list_contributors(ws)}


@router.post(
    "/contributors",
    tags=["owner"],
    status_code=201,
    summary="Create a contributor; the response holds their API token, shown this once.",
)
def create_contributor(ws: WS, p: Owner, body: ContributorCreate) -> Json:
    rec, token = _contributors_module().add_contributor(
        ws,
        body.name,
        max_submissions=body.max_submissions,
        budget_pflops=body.budget_pflops,
        actor=p.name,
    )
    return {"contributor": queries.get_contributor(ws, rec["name"]), "token": token}


@router.post(
    "/contributors/{name}/token",
    tags=["owner"],
    summary="Rotate a contributor's token: the old one stops working at once; the response holds "
    "the new one, shown this once.",
)
def rotate_contributor_token(ws: WS, p: Owner, name: str) -> Json:
    queries.get_contributor(ws, name)  # 404 first
    token = _contributors_module().rotate_token(ws, name, actor=p.name)
    return {"contributor": queries.get_contributor(ws, name), "token": token}


@router.get("/contributors/{name}", tags=["owner"], summary="One contributor.")
def get_contributor(ws: WS, p: Owner, name: str) -> Json:
    return queries.get_contributor(ws, name)


@router.patch(
    "/contributors/{name}",
    tags=["owner"],
    summary="Change a contributor's limits, budget, or revoke.",
)
def update_contributor(ws: WS, p: Owner, name: str, body: ContributorUpdate) -> Json:
    queries.get_contributor(ws, name)  # 404 first
    _contributors_module().update_contributor(
        ws,
        name,
        max_submissions=body.max_submissions,
        budget_pflops=body.budget_pflops,
        revoked=body.revoked,
        actor=p.name,
    )
    return queries.get_contributor(ws, name)


@router.post("/publish", tags=["owner"], summary="Publish the leaderboard to every contributor.")
def publish(ws: WS, p: Owner) -> Json:
    return leaderboard.set_published(ws, True, actor=p.name)


@router.post("/unpublish", tags=["owner"], summary="Withdraw the published leaderboard.")
def unpublish(ws: WS, p: Owner) -> Json:
    return leaderboard.set_published(ws, False, actor=p.name)


@router.get(
    "/corpus-versions", tags=["owner"], summary="Corpus versions (metadata only, never text)."
)
def list_corpus_versions(ws: WS, p: Owner) -> Json:
    return {"corpus_versions": queries.list_corpus_versions(ws)}


@router.get(
    "/corpus-versions/{version_id}", tags=["owner"], summary="One corpus version's metadata."
)
def get_corpus_version(ws: WS, p: Owner, version_id: int) -> Json:
    return queries.get_corpus_version(ws, version_id)


@router.get("/audit", tags=["owner"], summary="The latest audit-log entries.")
def list_audit(ws: WS, p: Owner, limit: Annotated[int, Query(ge=1, le=10000)] = 100) -> Json:
    return {"entries": audit.entries(ws.store, limit=limit)}


@router.get("/audit/verify", tags=["owner"], summary="Check the audit log's hash chain.")
def verify_audit(ws: WS, p: Owner) -> Json:
    ok, message = audit.verify(ws.store)
    return {"ok": ok, "message": message}
