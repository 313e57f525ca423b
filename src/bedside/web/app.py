"""The web application: ``create_app(ws)`` returns a FastAPI app serving the JSON API under
``/api``, server-rendered pages, ``/static`` and the OpenAPI spec at ``/openapi.json``.

Errors have one JSON shape on every API path, ``{"error": {"code", "message", "hint"}}``, whether
they come from the library (``BedsideError.to_dict()``), from routing (404/405) or from request
validation (422). Pages render the same three fields as an HTML error page, and send an
unauthenticated visitor to the login form instead.

Every unsafe request passes ``guard.same_origin`` (one app-wide dependency) and every page form
``guard.check_form`` (its CSRF token); ``serve`` runs uvicorn with the limits and timeouts of
``web.server``.

Example::

    import uvicorn
    uvicorn.run(create_app(Workspace.find()), host="127.0.0.1", port=8000)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from bedside import __version__
from bedside.errors import AuthError, BedsideError
from bedside.web import guard
from bedside.web.deps import COOKIE
from bedside.workspace import Workspace

HERE = Path(__file__).resolve().parent

# No inline scripts, nothing from another origin; inline SVG needs inline style attributes.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # same-origin, not no-referrer: under no-referrer browsers send `Origin: null` on form posts,
    # which the same-origin check (guard.py) must refuse; other origins still get no referrer
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

DESCRIPTION = """\
bedside brings language models to a hospital's private corpus. This API lets vendors upload model
bundles and follow their evaluation, and lets the data owner manage contributors and publish the
leaderboard. Authenticate with `Authorization: Bearer TOKEN`.

Every error has the shape `{"error": {"code": "...", "message": "...", "hint": "..."}}`.
No endpoint returns per-record predictions or corpus text.
"""


def _is_api(request: Request) -> bool:
    path = request.url.path
    return path.startswith("/api/") or path == "/api" or path == "/openapi.json"


def _error_json(status: int, code: str, message: str, hint: str | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "hint": hint}}, status_code=status
    )


def _error_page(request: Request, status: int, err: dict[str, Any]) -> Response:
    from bedside.web.pages import render_error

    return render_error(request, status, err)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(BedsideError)
    async def _bedside(request: Request, exc: BedsideError) -> Response:
        if _is_api(request):
            resp = _error_json(exc.http_status, exc.code, exc.message, exc.hint)
            if isinstance(exc, AuthError):
                resp.headers["WWW-Authenticate"] = "Bearer"
            if isinstance(exc, guard.LoginRateLimited):
                resp.headers["Retry-After"] = str(exc.retry_after)
            return resp
        if isinstance(exc, AuthError):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            redirect = RedirectResponse(f"/login?next={quote(target)}", status_code=303)
            redirect.delete_cookie(COOKIE, path="/")  # a revoked or stale token
            return redirect
        return _error_page(request, exc.http_status, exc.to_dict())

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = "no such page or endpoint." if exc.status_code == 404 else str(exc.detail)
        hint = "See /openapi.json for the endpoints." if exc.status_code == 404 else None
        if _is_api(request):
            return _error_json(exc.status_code, code, message, hint)
        return _error_page(
            request, exc.status_code, {"code": code, "message": message, "hint": None}
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        parts = []
        for e in exc.errors()[:5]:
            where = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
            parts.append(f"{where}: {e.get('msg')}")
        message = "the request is not valid: " + "; ".join(parts) + "."
        if _is_api(request):
            return _error_json(
                422, "invalid_request", message, "See /openapi.json for the expected fields."
            )
        return _error_page(
            request, 422, {"code": "invalid_request", "message": message, "hint": None}
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        return _error_json(
            500,
            "internal_error",
            "unexpected server error.",
            "The owner can find the details in the server log.",
        )


def create_app(
    ws: Workspace, *, max_upload_bytes: int | None = None, origins: tuple[str, ...] = ()
) -> FastAPI:
    """The bedside web app for ``ws``. ``max_upload_bytes`` overrides the policy's
    ``max_bundle_mb`` (tests use a tiny limit); ``origins`` are further origins trusted by the
    same-origin check (e.g. ``https://bedside.example`` behind a TLS proxy)."""
    from bedside.web import api, flow, pages, screening

    app = FastAPI(
        title="bedside",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,  # the Swagger UI loads from a CDN; flow.api_docs renders /docs locally
        redoc_url=None,
        openapi_url="/openapi.json",
        dependencies=[Depends(guard.same_origin)],
    )
    guard.install(app, origins=origins)
    app.state.ws = ws
    app.state.max_upload_bytes = max_upload_bytes

    @app.middleware("http")
    async def _headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        return response

    _install_error_handlers(app)
    app.include_router(api.router)
    # before pages.router: /submissions/new must not reach /submissions/{submission_id}
    app.include_router(flow.uploads)
    app.include_router(flow.router)
    app.include_router(pages.router)
    app.include_router(screening.api, responses=api.ERRORS)
    app.include_router(screening.pages)
    from bedside.web import history  # the board over corpus versions, drift

    app.include_router(history.api, responses=api.ERRORS)
    app.include_router(history.pages)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    return app


def serve(
    ws: Workspace, host: str = "127.0.0.1", port: int = 8000, origins: tuple[str, ...] = ()
) -> None:
    """Run the app with uvicorn until interrupted: request heads capped at 16 KiB and due within
    10 s, a body that stalls 30 s answered 408, keep-alive 5 s, at most 64 connections."""
    import uvicorn

    from bedside.web.server import server_config

    uvicorn.Server(server_config(create_app(ws, origins=origins), host, port)).run()
