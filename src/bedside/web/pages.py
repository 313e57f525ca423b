"""Server-rendered pages (jinja2). Same library calls and the same visibility rules as the API.

Logging in stores the API token in an HttpOnly, SameSite=Strict cookie (see ``deps``); the
owner's forms are plain POSTs answered with a redirect. Every form carries the session's CSRF
token (``csrf_field`` in ``_macros.html``, checked by ``guard.check_form`` on this router) and
the login form is rate-limited per client address, each failure audited (``guard``).
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from bedside import __version__, leaderboard
from bedside.auth import Principal, authenticate
from bedside.errors import AuthError, BedsideError, ConfigError
from bedside.web import charts, guard, queries
from bedside.web.decisions import decide, excludes_zero, hide_ranks
from bedside.web.deps import COOKIE, WS, MaybeViewer, Owner, Viewer
from bedside.web.eda_view import eda_view


def _excludes_zero(ci: Any) -> bool:
    return excludes_zero(ci)


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


def _when(v: Any) -> Markup:
    """A stored ISO time as ``<time>``: UTC text here, the reader's local time after
    ``static/local.js`` ran."""
    from bedside.web.runs import parse_ts

    ts = parse_ts(v)
    if ts is None:
        return Markup("–") if not v else Markup(escape(str(v)))
    t = dt.datetime.fromtimestamp(ts, dt.UTC)
    return Markup(f'<time datetime="{escape(t.isoformat())}">{t:%Y-%m-%d %H:%M} UTC</time>')


def _duration(v: Any) -> str:
    from bedside.web.runs import duration

    return duration(v)


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
    when=_when,
    duration=_duration,
    excludes_zero=_excludes_zero,
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
    board = hide_ranks(leaderboard.build_leaderboard(ws, viewer), viewer)
    return page(
        request,
        "leaderboard.html",
        viewer,
        board=board,
        decision=decide(ws, board, viewer),
        chart=charts.leaderboard_svg(board["rows"]),
        chart_table=charts.leaderboard_table(board["rows"]),
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


IMPACT_LABELS = {
    "abstracts_per_year": "Abstracts per year",
    "cost_per_missed_paper": "Cost per missed paper",
    "reviewer_cost_per_fte": "Reviewer cost per FTE",
    "reviewer_fte": "Reviewer FTE still needed",
    "ai_cost_per_year": "AI cost per vendor",
    "baseline_cost_per_year": "Internal baseline cost",
}


@router.get("/impact", response_class=HTMLResponse)
def impact_page(request: Request, ws: WS, viewer: MaybeViewer) -> Response:
    """Every field is checked on its own: a bad one is named by its label and keeps what was
    typed, the others still count."""
    q = request.query_params
    values: dict[str, Any] = {k: q.get(k) for k in IMPACT_FORM}
    raw = {k: q.get(k, "") for k in (*IMPACT_FORM, "baseline_cost_per_year")}
    invalid: dict[str, str] = {}
    for key, label in IMPACT_LABELS.items():
        text = (q.get(key) or "").strip()
        if not text:
            continue
        try:
            _non_negative(label, text)
        except ConfigError as e:
            invalid[key] = e.message
            values.pop(key, None)
    ai_costs: dict[str, float] = {}
    for key, text in q.items():
        if key.startswith("ai_cost.") and text.strip():
            name = key.removeprefix("ai_cost.")
            try:
                ai_costs[name] = _non_negative(f"AI cost of {name}", text)
            except ConfigError as e:
                invalid[key] = e.message
            raw[key] = text
    baseline_cost = 0.0
    if "baseline_cost_per_year" not in invalid and q.get("baseline_cost_per_year", "").strip():
        baseline_cost = float(q["baseline_cost_per_year"])
    error = None
    try:
        impact = leaderboard.impact_rows(ws, viewer, values, ai_costs, baseline_cost)
    except ConfigError as e:
        error = e.to_dict()
        impact = leaderboard.impact_rows(ws, viewer, {}, {}, 0.0)
    impact = hide_ranks(impact, viewer)
    if invalid and error is None:
        error = {
            "code": "config_error",
            "message": " ".join(invalid.values()),
            "hint": "The other figures are computed with the remaining fields.",
        }
    vendors = [r["vendor"] for r in impact["rows"] if r["kind"] == "submission"]
    return page(
        request,
        "impact.html",
        viewer,
        impact=impact,
        vendors=list(dict.fromkeys(vendors)),
        error=error,
        invalid=invalid,
        raw=raw,
        chart=charts.impact_svg(impact["rows"], impact["currency"]),
        chart_table=charts.impact_table(impact["rows"], impact["currency"]),
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
def _worker_notice(ws: Any, viewer: Principal) -> str | None:
    """The owner's "no worker is running" banner (contributors are told their jobs wait)."""
    from bedside.web.runs import queue_info, worker_notice

    if not viewer.is_owner:
        return None
    return worker_notice(queue_info(ws))


@router.get("/submissions", response_class=HTMLResponse)
def submissions_page(request: Request, ws: WS, viewer: Viewer) -> Response:
    subs = queries.list_submissions(ws, viewer)
    me = None if viewer.is_owner else queries.get_contributor(ws, viewer.name)
    return page(
        request,
        "submissions.html",
        viewer,
        submissions=subs,
        me=me,
        worker_notice=_worker_notice(ws, viewer),
        active="submissions",
    )


def _run_rows(sub: dict[str, Any]) -> list[dict[str, Any]]:
    """Per phase: recipe, compute estimated vs used, wall time, the epoch early stopping chose."""
    from bedside.leaderboard.rows import compute_pflops

    est = sub.get("estimate") or {}
    out = []
    for res in sub["results"]:
        prov = res.get("provenance") or {}
        comp = prov.get("compute") or {}
        val = prov.get("validation") or {}
        used, estimated = compute_pflops(prov)
        out.append(
            {
                "phase": res["phase"],
                "estimate_pflops": comp.get("estimate_pflops")
                or est.get("phase1" if res["phase"] == 1 else "phase2"),
                "used_pflops": None if estimated else used,
                "stopped_by_budget": bool(comp.get("stopped_by_budget")),
                "wall_s": prov.get("wall_s") or comp.get("job_wall_s"),
                "best_epoch": val.get("best_epoch"),
                "epochs_run": val.get("epochs_run"),
                "decision_rule": val.get("decision_rule"),
                "val_curve": val.get("curve") or [],
            }
        )
    return out


def _recipe(manifest: Any) -> list[tuple[str, str]]:
    """The phase-2 recipe and phase-1 method as label/value pairs (from the validated manifest)."""
    m = manifest if isinstance(manifest, dict) else {}
    tr, p1 = m.get("train") or {}, m.get("phase1") or {}
    pairs = [("phase 1", str(p1.get("method", "–")))]
    for key in (
        "method",
        "objective",
        "epochs",
        "learning_rate",
        "batch_size",
        "max_length",
        "weight_decay",
        "warmup_ratio",
        "early_stopping_patience",
        "class_weighting",
        "decision_rule",
        "seed",
    ):
        if key in tr:
            pairs.append(
                (
                    key.replace("_", " "),
                    f"{tr[key]:g}" if isinstance(tr[key], float) else str(tr[key]),
                )
            )
    lora = tr.get("lora")
    if tr.get("method") == "lora" and isinstance(lora, dict):
        pairs.append(
            (
                "LoRA",
                ", ".join(f"{k}={v}" for k, v in lora.items() if not isinstance(v, list | dict)),
            )
        )
    return pairs


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
                "per_class_table": charts.per_class_table(
                    m.get("per_class") or [], highlight=small
                ),
                "confusion_table": charts.confusion_table(
                    conf.get("labels") or [], conf.get("matrix") or []
                ),
                "robustness_table": charts.robustness_table(rob.get("bins") or []),
            }
        )
    curves = []
    for job in sub["jobs"]:
        if job["kind"] == "phase2":
            events = queries.job_events(ws, viewer, job["id"])
            svg = charts.curve_svg(events)
            if svg:
                curves.append({"job": job, "svg": svg, "table": charts.curve_table(events)})
    logs = {}
    if viewer.is_owner:
        logs = {j["id"]: queries.job_log_tail(ws, j["id"]) for j in sub["jobs"]}
    board = leaderboard.build_leaderboard(ws, viewer)
    baseline = next(
        (
            r
            for r in board["rows"]
            if r["kind"] == "baseline" and r.get("baseline_kind") != "current"
        ),
        None,
    )
    others = [
        r for r in board["rows"] if r["kind"] == "submission" and r["submission_id"] != sub["id"]
    ]
    return page(
        request,
        "submission.html",
        viewer,
        sub=sub,
        results=results,
        curves=curves,
        logs=logs,
        small=small,
        runs=_run_rows(sub),
        recipe=_recipe(sub.get("manifest")),
        baseline=baseline,
        others=others,
        withdrawable=bool(sub["jobs"]) and all(j["state"] == "queued" for j in sub["jobs"]),
        worker_notice=_worker_notice(ws, viewer),
        active="submissions",
    )


# -- owner admin -----------------------------------------------------------------------------
# A new or rotated token survives a reload (post/redirect/get): it waits in this process's
# memory under a random id that an HttpOnly cookie scoped to /admin names, until the owner
# dismisses it or FLASH_TTL_S passes. Nothing is written to the store.
FLASH_COOKIE = "bedside_token_flash"
FLASH_TTL_S = 600.0
FLASH_MAX = 64


def _flash_store(request: Request) -> dict[str, dict[str, Any]]:
    store: dict[str, dict[str, Any]] | None = getattr(request.app.state, "token_flash", None)
    if store is None:
        store = request.app.state.token_flash = {}
    now = time.time()
    for key in [k for k, v in store.items() if v["expires"] < now]:
        del store[key]
    return store


def _flash_redirect(request: Request, name: str, token: str, what: str) -> RedirectResponse:
    store = _flash_store(request)
    while len(store) >= FLASH_MAX:
        store.pop(next(iter(store)))
    key = secrets.token_urlsafe(24)
    store[key] = {"name": name, "token": token, "what": what, "expires": time.time() + FLASH_TTL_S}
    resp = RedirectResponse("/admin#new-token", status_code=303)
    resp.set_cookie(
        FLASH_COOKIE,
        key,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/admin",
        max_age=int(FLASH_TTL_S),
    )
    return resp


def _flashed(request: Request) -> dict[str, Any] | None:
    key = request.cookies.get(FLASH_COOKIE)
    return _flash_store(request).get(key) if key else None


@router.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request, ws: WS, viewer: Owner) -> Response:
    return _admin(request, ws, viewer)


@router.post("/admin/token/dismiss")
def admin_dismiss_token(request: Request, viewer: Owner) -> RedirectResponse:
    key = request.cookies.get(FLASH_COOKIE)
    if key:
        _flash_store(request).pop(key, None)
    resp = RedirectResponse("/admin#contributors", status_code=303)
    resp.delete_cookie(FLASH_COOKIE, path="/admin")
    return resp


@router.get("/admin/report.html")
def admin_report(ws: WS, viewer: Owner) -> Response:
    """The self-contained HTML report (as `bedside report`), as a download."""
    from bedside.web.report import render_report

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M")
    return HTMLResponse(
        render_report(ws),
        headers={"Content-Disposition": f'attachment; filename="bedside-report-{stamp}.html"'},
    )


def _admin(
    request: Request, ws: Any, viewer: Principal, status: int = 200, **extra: Any
) -> HTMLResponse:
    jobs = queries.list_jobs(ws, limit=100)
    extra.setdefault("new_token", _flashed(request))
    return page(
        request,
        "admin.html",
        viewer,
        status=status,
        worker_notice=_worker_notice(ws, viewer),
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
    return _flash_redirect(request, rec["name"], token, "created")


@router.post("/admin/contributors/{name}/rotate")
def admin_rotate_token(request: Request, ws: WS, viewer: Owner, name: str) -> Response:
    from bedside.web.api import _contributors_module

    queries.get_contributor(ws, name)
    token = _contributors_module().rotate_token(ws, name, actor=viewer.name)
    return _flash_redirect(request, name, token, "rotated")


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
