"""Screening in the web app: owner-only API under ``/api/screening`` and the ``/screening`` page.

Every route depends on ``Owner``: a contributor gets the same 404 as for a route that does not
exist. A screening file uploaded here is streamed to disk with a size cap, checked and staged
exactly as ``bedside screen`` does, and queued; ``bedside worker`` runs it in the sandbox. The
results CSV (per abstract: class, probabilities, needs-review flag) is downloadable by the
owner only.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from bedside.errors import BedsideError, DataError
from bedside.web import guard
from bedside.web.deps import WS, Owner

MAX_UPLOAD = 4 * 2**30  # a 2-million-row CSV of abstracts is ~3 GB at most
CHUNK = 1 << 20

api = APIRouter(prefix="/api/screening", tags=["screening"])
pages = APIRouter(include_in_schema=False, dependencies=[Depends(guard.check_form)])
Json = dict[str, Any]


class DeployBody(BaseModel):
    submission_id: int = Field(description="A submission whose phase 2 finished.")


class TargetsBody(BaseModel):
    targets: dict[str, float] = Field(description="Class name -> target recall in (0, 1].")
    max_workload: float | None = Field(
        default=None, gt=0, le=1000, description="Refuse thresholds flagging more per 1,000."
    )
    model_id: int | None = None


def _save_upload(ws: Any, upload: UploadFile) -> Path:
    """Stream the upload to a temp file under the workspace (0700), refusing it past the cap."""
    d = ws.artefacts_dir / "screening" / "uploads"
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, name = tempfile.mkstemp(prefix="upload-", suffix=".csv", dir=d)
    size = 0
    with open(fd, "wb") as out:
        while block := upload.file.read(CHUNK):
            size += len(block)
            if size > MAX_UPLOAD:
                out.close()
                Path(name).unlink(missing_ok=True)
                raise DataError(
                    f"the screening file is over {MAX_UPLOAD // 2**30} GB.",
                    hint="Split it, or screen it on the server with `bedside screen FILE`.",
                )
            out.write(block)
    return Path(name)


def _create(ws: Any, upload: UploadFile, **kw: Any) -> Any:
    from bedside.screening.runs import create_run

    path = _save_upload(ws, upload)
    try:
        return create_run(ws, path, file_name=Path(upload.filename or "upload.csv").name, **kw)
    finally:
        path.unlink(missing_ok=True)


# -- API -------------------------------------------------------------------------------------
@api.get("/models", summary="Deployed screening models with their operating points.")
def list_models(ws: WS, p: Owner) -> list[Json]:
    from bedside.screening.models import list_models as _list

    return [m.view() for m in _list(ws)]


@api.post("/deploy", summary="Promote a submission's phase-2 model (audited).")
def deploy(ws: WS, p: Owner, body: DeployBody) -> Json:
    from bedside.screening.models import deploy as _deploy

    return _deploy(ws, body.submission_id, actor="owner").view()


@api.post("/targets", summary="Set recall targets; returns the operating points.")
def targets(ws: WS, p: Owner, body: TargetsBody) -> Json:
    from bedside.screening.models import set_targets

    return set_targets(ws, body.model_id, dict(body.targets), max_workload=body.max_workload).view()


@api.post("/runs", summary="Upload a CSV of new abstracts; queues a screening run.")
def create_run(
    ws: WS,
    p: Owner,
    file: Annotated[UploadFile, File(description="CSV with a text column.")],
    text_column: Annotated[str, Form()] = "text",
    id_column: Annotated[str, Form()] = "row_id",
    shadow_column: Annotated[str | None, Form()] = None,
    shadow: Annotated[str | None, Form(description="'baseline' for the TF-IDF baseline")] = None,
    runtime: Annotated[str, Form()] = "torch",
) -> Json:
    run = _create(
        ws,
        file,
        text_column=text_column,
        id_column=id_column,
        shadow_column=shadow_column or None,
        shadow=shadow or None,
        runtime=runtime,
    )
    return dict(run.view())


@api.get("/runs", summary="Screening runs, oldest first.")
def runs(ws: WS, p: Owner) -> list[Json]:
    from bedside.screening.runs import list_runs

    return [r.view() for r in list_runs(ws)]


@api.get("/runs/{run_id}", summary="One run: state, progress, workload, shadow counts.")
def run(ws: WS, p: Owner, run_id: int) -> Json:
    from bedside.screening.runs import get_run

    return dict(get_run(ws, run_id).view())


@api.get("/runs/{run_id}/results", summary="The per-abstract results CSV (owner only).")
def results(ws: WS, p: Owner, run_id: int) -> FileResponse:
    from bedside.errors import NotFoundError
    from bedside.screening.runs import results_path

    path = results_path(ws, run_id)
    if not path.is_file():
        raise NotFoundError(f"screening run {run_id} has no results yet.")
    return FileResponse(path, media_type="text/csv", filename=f"screening-run-{run_id}.csv")


@api.get("/runs/{run_id}/realised", summary="Realised recall vs promised, once reviewers label.")
def realised(ws: WS, p: Owner, run_id: int) -> Json:
    from bedside.screening.runs import realised_for_run

    return realised_for_run(ws, run_id)


# -- page ------------------------------------------------------------------------------------
def _page(request: Request, ws: Any, viewer: Any, error: Any = None, status: int = 200) -> Response:
    from bedside.screening.models import list_models as _list
    from bedside.screening.runs import list_runs
    from bedside.web.charts import recall_workload_svg
    from bedside.web.pages import page

    models = _list(ws)
    active = next((m for m in reversed(models) if m.active), None)
    chart = recall_workload_svg(active.points.to_dict()) if active and active.points else ""
    return page(
        request,
        "screening.html",
        viewer,
        status=status,
        active="screening",
        model=active.view() if active else None,
        classes=(active.decision.get("classes") or []) if active else [],
        chart=chart,
        runs=[r.view() for r in reversed(list_runs(ws))],
        error=error,
    )


@pages.get("/screening", response_class=HTMLResponse)
def screening_page(request: Request, ws: WS, viewer: Owner) -> Response:
    return _page(request, ws, viewer)


@pages.post("/screening/targets", response_class=HTMLResponse)
async def screening_targets(request: Request, ws: WS, viewer: Owner) -> Response:
    from bedside.screening.models import get_model, set_targets

    form = await request.form()
    try:
        classes = get_model(ws).decision.get("classes") or []
        goals = {
            c: float(str(form.get(f"target-{i}")))
            for i, c in enumerate(classes)
            if str(form.get(f"target-{i}") or "").strip()
        }
        cap = str(form.get("max_workload") or "").strip()
        set_targets(ws, None, goals, max_workload=float(cap) if cap else None)
    except ValueError:
        return _page(request, ws, viewer, {"message": "targets must be numbers such as 0.9."}, 422)
    except BedsideError as e:
        return _page(request, ws, viewer, e.to_dict(), e.http_status)
    return RedirectResponse("/screening#operating-points", status_code=303)


@pages.post("/screening/runs", response_class=HTMLResponse)
def screening_upload(
    request: Request,
    ws: WS,
    viewer: Owner,
    file: Annotated[UploadFile, File()],
    shadow: Annotated[str, Form()] = "",
    shadow_column: Annotated[str, Form()] = "",
) -> Response:
    try:
        _create(
            ws,
            file,
            shadow="baseline" if shadow == "baseline" else None,
            shadow_column=shadow_column.strip() or None,
        )
    except BedsideError as e:
        return _page(request, ws, viewer, e.to_dict(), e.http_status)
    return RedirectResponse("/screening#runs", status_code=303)
