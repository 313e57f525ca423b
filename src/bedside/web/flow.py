"""Pages of the vendor's flow: upload and check a bundle, queue or discard it, withdraw a queued
submission, compare two results; and the API reference at ``/docs``.

The upload form posts multipart to ``/submissions/new``; it is streamed to disk by
``upload.receive_bundle`` (never parsed into memory), so its CSRF token travels in the query
string and is checked here before a byte of the body is read. With JavaScript the same form
goes to ``POST /api/uploads`` with a progress bar (``static/upload.js``).
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bedside.errors import BedsideError, ForbiddenError
from bedside.web import guard, queries, vendor
from bedside.web.deps import WS, Viewer
from bedside.web.pages import page
from bedside.web.upload import receive_bundle

router = APIRouter(include_in_schema=False, dependencies=[Depends(guard.check_form)])
uploads = APIRouter(include_in_schema=False)  # multipart: CSRF token in the query string


def curl_lines(request: Request) -> list[str]:
    """The vendor's commands against this very server (its own URL)."""
    base = str(request.base_url).rstrip("/")
    auth = '-H "Authorization: Bearer $BEDSIDE_TOKEN"'
    return [
        f"curl {auth} -F bundle=@bundle.tar.gz {base}/api/uploads      # check, nothing queued",
        f"curl {auth} -X POST {base}/api/uploads/ID/submit               # then queue it",
        f"curl {auth} -F bundle=@bundle.tar.gz {base}/api/submissions  # or both at once",
        f"curl {auth} {base}/api/submissions                             # state and progress",
    ]


@router.get("/submissions/new", response_class=HTMLResponse)
def upload_form(
    request: Request, ws: WS, viewer: Viewer, contributor: str | None = None
) -> Response:
    """The owner first picks the vendor (a GET form), so the upload form's action names it and
    works without JavaScript too."""
    me = None if viewer.is_owner else queries.get_contributor(ws, viewer.name)
    contributors = queries.list_contributors(ws) if viewer.is_owner else []
    chosen = None
    if viewer.is_owner and contributor:
        chosen = queries.get_contributor(ws, contributor)["name"]
    return page(
        request,
        "upload.html",
        viewer,
        me=me,
        contributors=contributors,
        chosen=chosen,
        curl=curl_lines(request),
        max_mb=request.app.state.max_upload_bytes / 2**20
        if request.app.state.max_upload_bytes
        else ws.policy().max_bundle_mb,
        active="submissions",
    )


@uploads.post("/submissions/new")
async def upload_post(
    request: Request, ws: WS, viewer: Viewer, csrf_token: str = "", contributor: str = ""
) -> Response:
    from starlette.concurrency import run_in_threadpool

    expected, _fresh = guard.form_token(request)
    if not csrf_token or not hmac.compare_digest(csrf_token.encode(), expected.encode()):
        raise ForbiddenError(
            "the upload form's CSRF token is missing or does not match this session.",
            hint="Reload the upload page and choose the file again.",
        )
    limit = request.app.state.max_upload_bytes or ws.policy().max_bundle_mb * 2**20
    upload = await receive_bundle(request, vendor.uploads_dir(ws), limit)
    try:
        staged = await run_in_threadpool(
            vendor.stage_upload, ws, viewer, upload, contributor or None
        )
    finally:
        upload.path.unlink(missing_ok=True)
    return RedirectResponse(f"/submissions/new/{staged['id']}", status_code=303)


@router.get("/submissions/new/{stage_id}", response_class=HTMLResponse)
def staged_page(request: Request, ws: WS, viewer: Viewer, stage_id: str) -> Response:
    staged = vendor.get_staged(ws, viewer, stage_id)
    return page(request, "staged.html", viewer, staged=staged, active="submissions")


@router.post("/submissions/new/{stage_id}/submit")
def staged_submit(request: Request, ws: WS, viewer: Viewer, stage_id: str) -> Response:
    try:
        sub = vendor.submit_staged(ws, viewer, stage_id)
    except BedsideError as e:
        if e.http_status == 404:
            raise
        return page(
            request,
            "staged.html",
            viewer,
            status=e.http_status,
            staged=None,
            error=e.to_dict(),
            active="submissions",
        )
    return RedirectResponse(f"/submissions/{sub['id']}", status_code=303)


@router.post("/submissions/new/{stage_id}/discard")
def staged_discard(ws: WS, viewer: Viewer, stage_id: str) -> RedirectResponse:
    vendor.discard_staged(ws, viewer, stage_id)
    return RedirectResponse("/submissions/new", status_code=303)


@router.post("/submissions/{submission_id}/withdraw")
def withdraw_post(ws: WS, viewer: Viewer, submission_id: int) -> RedirectResponse:
    vendor.withdraw(ws, viewer, submission_id)
    return RedirectResponse(f"/submissions/{submission_id}", status_code=303)


@router.get("/compare", response_class=HTMLResponse)
def compare_page(
    request: Request, ws: WS, viewer: Viewer, a: int | None = None, b: int | None = None
) -> Response:
    from bedside.web.compare import comparable, compare_view

    choices = comparable(ws, viewer)
    view = compare_view(ws, viewer, a, b) if a is not None and b is not None else None
    return page(
        request, "compare.html", viewer, view=view, choices=choices, a=a, b=b, active="submissions"
    )


@router.get("/docs", response_class=HTMLResponse)
def api_docs(request: Request) -> Response:
    """The API reference rendered from the app's own OpenAPI document (no CDN assets)."""
    from bedside.web.deps import COOKIE

    viewer = None
    token = request.cookies.get(COOKIE)
    if token:
        try:
            from bedside.auth import authenticate

            viewer = authenticate(request.app.state.ws, token)
        except BedsideError:
            viewer = None
    return page(
        request,
        "docs.html",
        viewer,
        ops=operations(request.app.openapi()),
        title=request.app.title,
        active="docs",
    )


def operations(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The spec's operations grouped by tag: method, path, summary, parameters, responses."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for path, item in (spec.get("paths") or {}).items():
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            params = [
                {
                    "name": p.get("name"),
                    "in": p.get("in"),
                    "required": bool(p.get("required")),
                    "description": p.get("description")
                    or (p.get("schema") or {}).get("description", ""),
                }
                for p in op.get("parameters") or []
            ]
            body = (op.get("requestBody") or {}).get("content") or {}
            groups.setdefault((op.get("tags") or ["other"])[0], []).append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary") or "",
                    "description": op.get("description") or "",
                    "params": params,
                    "body": ", ".join(body),
                    "responses": sorted((op.get("responses") or {}).keys()),
                    "anchor": (op.get("operationId") or f"{method}-{path}")
                    .replace("/", "-")
                    .replace("{", "")
                    .replace("}", ""),
                }
            )
    return [{"tag": t, "ops": ops} for t, ops in groups.items()]
