"""Server-rendered pages (jinja2). Same library calls and the same visibility rules as the API.

Logging in stores the API token in an HttpOnly, SameSite=Strict cookie (see ``deps``); the
owner's forms are plain POSTs answered with a redirect. Every form carries the session's CSRF
token (``csrf_field`` in ``_macros.html``, checked by ``guard.check_form`` on this router) and
the login form is rate-limited per client address, each failure audited (``guard``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from bedside import __version__, leaderboard
from bedside.auth import Principal, authenticate
from bedside.errors import AuthError, BedsideError, ConfigError
from bedside.web import charts, guard, queries
from bedside.web.deps import COOKIE, WS, MaybeViewer, Owner, Viewer
from bedside.web.eda_view import eda_view

router = APIRouter(include_in_schema=False, dependencies=[Depends(guard.check_form)])
templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")


def _f3(v: Any) -> str:
    return "–" if v is None else f"{float(v):.3f}"


def _signed(v: Any) -> str:
    return "–" if v is None else f"{float(v):+.3f}"


def _money(v: Any) -> str:
    return "–" if v is None else f"{float(v):,.0f}"


def _signed_money(v: Any) -> str:
    return "–" if v is None else f"{float(v):+,.0f}".replace("-", "−")


def _plain(v: Any) -> str:
    """A number for an input field: 90000.0 -> 90000, 1.5 -> 1.5."""
    return "" if v is None else f"{float(v):g}" if abs(float(v)) < 1e15 else str(v)


def _num(v: Any, digits: int = 1) -> str:
    return "–" if v is None else f"{float(v):,.{digits}f}"


def _pflops(v: Any) -> str:
    """Compute in PFLOPs with 3 significant digits (small jobs are far below 0.1)."""
    return "–" if v is None else f"{float(v):.3g}"


def _pct(v: Any) -> str:
    return "–" if v is None else f"{float(v):.1%}"


def _short_class(name: Any) -> str:
    """Column header for a class: its first word, clipped ("cardiovascular diseases" -> "cardio.")."""
    word = str(name).split(" ")[0]
    return word if len(word) <= 10 else word[:6] + "."


def _by_name(per_class: Any) -> dict[str, Any]:
    return {str(pc.get("name")): pc for pc in per_class or []}


templates.env.filters.update(
    f3=_f3,
    signed=_signed,
    signed_money=_signed_money,
    plain=_plain,
    money=_money,
    num=_num,
    pflops=_pflops,
    pct=_pct,
    short_class=_short_class,
    by_name=_by_name,
)
templates.env.globals["version"] = __version__


def page(
    request: Request, name: str, viewer: Principal | None, status: int = 200, **ctx: Any
) -> HTMLResponse:
    from bedside.submissions.header import workspace_header
    from bedside.submissions.window import utc_now

    ws = request.app.state.ws
    csrf, presession = guard.form_token(request)
    ctx.update(
        request=request,
        viewer=viewer,
        header=workspace_header(ws, viewer, utc_now()) if viewer is not None else None,
        published=leaderboard.is_published(ws),
        active=ctx.get("active", ""),
        csrf=csrf,
    )
    resp = templates.TemplateResponse(request, name, ctx, status_code=status)
    if presession is not None:
        guard.set_presession(resp, request, presession)
    return resp


def render_error(request: Request, status: int, err: dict[str, Any]) -> HTMLResponse:
    viewer = None
    try:
        token = request.cookies.get(COOKIE)
        viewer = authenticate(request.app.state.ws, token) if token else None
    except BedsideError:
        viewer = None
    return page(request, "error.html", viewer, status=status, error=err, status_code=status)


def _safe_next(target: str | None) -> str:
    # only same-site paths: never redirect to another host after login
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/leaderboard"


# -- login ---------------------------------------------------------------------------------
@router.get("/", response_class=RedirectResponse)
def home() -> RedirectResponse:
    return RedirectResponse("/leaderboard", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> Response:
    # no principal here: a stale cookie (revoked token) must not bounce back to this page
    return page(request, "login.html", None, next=_safe_next(next), active="login")


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request, ws: WS, token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = ""
) -> Response:
    limiter: guard.LoginLimiter = request.app.state.login_limiter
    client = guard.client_address(request)

    def refuse(err: BedsideError, status: int) -> HTMLResponse:
        return page(
            request,
            "login.html",
            None,
            status=status,
            error=err.to_dict(),
            next=_safe_next(next),
            active="login",
        )

    try:
        limiter.check(client)
    except guard.LoginRateLimited as e:
        resp = refuse(e, 429)
        resp.headers["Retry-After"] = str(e.retry_after)
        return resp
    try:
        authenticate(ws, token.strip())
    except AuthError as e:
        failures = limiter.failed(client)
        _audit_login_failure(ws, client, e, failures)
        return refuse(e, 401)
    done = RedirectResponse(_safe_next(next), status_code=303)
    done.set_cookie(
        COOKIE,
        token.strip(),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
        max_age=12 * 3600,
    )
    return done


def _audit_login_failure(ws: Any, client: str, err: AuthError, failures: int) -> None:
    """One audit row per failed login: the address and why, never the token sent."""
    from bedside.store import audit

    payload = {
        "client": client,
        "reason": err.message,
        "failures_in_window": failures,
        "limited": failures >= guard.MAX_FAILURES,
    }
    with ws.store.write() as conn:
        audit.append(conn, f"web:{client}", "login.failed", payload)


@router.post("/logout")
def logout() -> RedirectResponse:
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(COOKIE, path="/")
    return resp


# -- leaderboard and impact -------------------------------------------------------------------
@router.get("/leaderboard", response_class=HTMLResponse)
def leaderboard_page(request: Request, ws: WS, viewer: MaybeViewer) -> Response:
    board = leaderboard.build_leaderboard(ws, viewer)
    return page(
        request,
        "leaderboard.html",
        viewer,
        board=board,
        chart=charts.leaderboard_svg(board["rows"]),
        active="leaderboard",
    )


IMPACT_FORM = (
    "abstracts_per_year",
    "cost_per_missed_paper",
    "reviewer_cost_per_fte",
    "reviewer_fte",
    "ai_cost_per_year",
    "currency",
)


@router.get("/impact", response_class=HTMLResponse)
def impact_page(request: Request, ws: WS, viewer: MaybeViewer) -> Response:
    q = request.query_params
    values = {k: q.get(k) for k in IMPACT_FORM}
    ai_costs: dict[str, float] = {}
    error = None
    baseline_cost = 0.0
    try:
        for key, raw in q.items():
            if key.startswith("ai_cost.") and raw.strip():
                ai_costs[key.removeprefix("ai_cost.")] = _non_negative(key, raw)
        if q.get("baseline_cost_per_year", "").strip():
            baseline_cost = _non_negative("baseline_cost_per_year", q["baseline_cost_per_year"])
        impact = leaderboard.impact_rows(ws, viewer, values, ai_costs, baseline_cost)
    except ConfigError as e:
        error = e.to_dict()
        impact = leaderboard.impact_rows(ws, viewer, {}, {}, 0.0)
    vendors = [r["vendor"] for r in impact["rows"] if r["kind"] == "submission"]
    return page(
        request,
        "impact.html",
        viewer,
        impact=impact,
        vendors=list(dict.fromkeys(vendors)),
        error=error,
        chart=charts.impact_svg(impact["rows"], impact["currency"]),
        active="impact",
    )


def _non_negative(key: str, raw: str) -> float:
    try:
        v = float(raw)
    except ValueError:
        raise ConfigError(f"{key} must be a number, got {raw!r}.") from None
    if not v >= 0:
        raise ConfigError(f"{key} must be >= 0, got {raw!r}.")
    return v


# -- data ------------------------------------------------------------------------------------
@router.get("/data", response_class=HTMLResponse)
def data_page(request: Request, ws: WS, viewer: Viewer) -> Response:
    corpus = leaderboard.active_corpus(ws)
    eda = leaderboard.corpus_eda(ws) if corpus else None
    return page(
        request,
        "data.html",
        viewer,
        corpus=corpus,
        view=eda_view(eda),
        has_eda=bool(eda),
        active="data",
    )


# -- submissions -----------------------------------------------------------------------------
@router.get("/submissions", response_class=HTMLResponse)
def submissions_page(request: Request, ws: WS, viewer: Viewer) -> Response:
    subs = queries.list_submissions(ws, viewer)
    me = None if viewer.is_owner else queries.get_contributor(ws, viewer.name)
    return page(request, "submissions.html", viewer, submissions=subs, me=me, active="submissions")


@router.get("/submissions/{submission_id}", response_class=HTMLResponse)
def submission_page(request: Request, ws: WS, viewer: Viewer, submission_id: int) -> Response:
    sub = queries.get_submission(ws, viewer, submission_id)
    small = set(leaderboard.small_classes(leaderboard.class_shares(ws, sub["corpus_version_id"])))
    results = []
    for res in sub["results"]:
        m = res["metrics"]
        conf = m.get("confusion") or {}
        rob = m.get("robustness") or {}
        results.append(
            {
                **res,
                "per_class_chart": charts.per_class_svg(m.get("per_class") or [], highlight=small),
                "confusion_chart": charts.confusion_svg(
                    conf.get("labels") or [], conf.get("matrix") or []
                ),
                "robustness_chart": charts.robustness_svg(
                    rob.get("bins") or [], rob.get("edges") or []
                ),
            }
        )
    curves = []
    for job in sub["jobs"]:
        if job["kind"] == "phase2":
            svg = charts.curve_svg(queries.job_events(ws, viewer, job["id"]))
            if svg:
                curves.append({"job": job, "svg": svg})
    logs = {}
    if viewer.is_owner:
        logs = {j["id"]: queries.job_log_tail(ws, j["id"]) for j in sub["jobs"]}
    return page(
        request,
        "submission.html",
        viewer,
        sub=sub,
        results=results,
        curves=curves,
        logs=logs,
        small=small,
        active="submissions",
    )


# -- owner admin -----------------------------------------------------------------------------
@router.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request, ws: WS, viewer: Owner) -> Response:
    return _admin(request, ws, viewer)


def _admin(
    request: Request, ws: Any, viewer: Principal, status: int = 200, **extra: Any
) -> HTMLResponse:
    jobs = queries.list_jobs(ws, limit=100)
    return page(
        request,
        "admin.html",
        viewer,
        status=status,
        contributors=queries.list_contributors(ws),
        jobs=jobs,
        policy=ws.policy(),
        corpora=queries.list_corpus_versions(ws),
        active="admin",
        **extra,
    )


def _opt_int(key: str, raw: str) -> int | None:
    if not raw.strip():
        return None
    try:
        v = int(raw)
    except ValueError:
        raise ConfigError(f"{key} must be a whole number, got {raw!r}.") from None
    if v < 0:
        raise ConfigError(f"{key} must be >= 0, got {v}.")
    return v


def _opt_float(key: str, raw: str) -> float | None:
    return _non_negative(key, raw) if raw.strip() else None


@router.post("/admin/contributors", response_class=HTMLResponse)
def admin_create_contributor(
    request: Request,
    ws: WS,
    viewer: Owner,
    name: Annotated[str, Form()] = "",
    max_submissions: Annotated[str, Form()] = "",
    budget_pflops: Annotated[str, Form()] = "",
) -> Response:
    from bedside.web.api import _contributors_module

    try:
        if not name.strip():
            raise ConfigError("a contributor needs a name.")
        rec, token = _contributors_module().add_contributor(
            ws,
            name.strip(),
            max_submissions=_opt_int("max_submissions", max_submissions),
            budget_pflops=_opt_float("budget_pflops", budget_pflops),
            actor=viewer.name,
        )
    except BedsideError as e:
        return _admin(request, ws, viewer, status=e.http_status, error=e.to_dict())
    return _admin(request, ws, viewer, new_token={"name": rec["name"], "token": token})


@router.post("/admin/contributors/{name}", response_class=HTMLResponse)
def admin_update_contributor(
    request: Request,
    ws: WS,
    viewer: Owner,
    name: str,
    max_submissions: Annotated[str, Form()] = "",
    budget_pflops: Annotated[str, Form()] = "",
    action: Annotated[str, Form()] = "update",
) -> Response:
    from bedside.web.api import _contributors_module

    queries.get_contributor(ws, name)
    try:
        _contributors_module().update_contributor(
            ws,
            name,
            max_submissions=_opt_int("max_submissions", max_submissions),
            budget_pflops=_opt_float("budget_pflops", budget_pflops),
            revoked={"revoke": True, "restore": False}.get(action),
            actor=viewer.name,
        )
    except BedsideError as e:
        return _admin(request, ws, viewer, status=e.http_status, error=e.to_dict())
    return RedirectResponse("/admin#contributors", status_code=303)


@router.post("/admin/publish")
def admin_publish(ws: WS, viewer: Owner, publish: Annotated[str, Form()] = "1") -> RedirectResponse:
    leaderboard.set_published(ws, publish == "1", actor=viewer.name)
    return RedirectResponse("/admin", status_code=303)


@router.post("/admin/submissions/{submission_id}/rerun")
def admin_rerun(ws: WS, viewer: Owner, submission_id: int) -> RedirectResponse:
    queries.rerun_submission(ws, submission_id, actor=viewer.name)
    return RedirectResponse(f"/submissions/{submission_id}", status_code=303)
