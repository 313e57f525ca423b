"""The leaderboard over corpus versions and the drift between versions, as pages and API.

* ``GET /leaderboard/history`` (page) and ``GET /api/leaderboard/history``: every model's score
  on each version with its CI (a trend chart), the significant rank changes, and the board of
  one version (``?version=``, default the active one) beside the active one's;
* ``GET /api/leaderboard/versions/{version}``: the board of one corpus version;
* ``GET /data/drift`` (page) and ``GET /api/data/drift?a=&b=``: class shares, lengths and
  vocabulary between two versions (aggregate, k-suppressed), with the plain-words reading;
* ``POST /api/reevaluate`` (owner only): queue submissions again on a version.

Visibility is the board's: the same release rules (published or own rows, the Ladder, the
public/private split) apply to every figure here. The pages only read and call the library.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from bedside.errors import BedsideError
from bedside.web import guard
from bedside.web.deps import WS, MaybeViewer, Owner, Viewer

api = APIRouter(prefix="/api", tags=["history"])
pages = APIRouter(include_in_schema=False, dependencies=[Depends(guard.check_form)])
Json = dict[str, Any]


class ReevaluateBody(BaseModel):
    version: str | None = Field(
        default=None, description="Version id or hash prefix (default: active)."
    )
    submissions: list[int] | None = Field(default=None, description="Only these submissions.")
    mode: str | None = Field(default=None, description="published or all (default: the policy).")


def _version_id(ws: Any, version: str | None) -> int:
    from bedside.data.corpus import load_corpus

    return load_corpus(ws, version).version_id


def _drift(ws: Any, a: str | None, b: str | None) -> Json:
    from bedside.data.drift import versions_drift

    return versions_drift(ws, a, b, hint="Choose both versions (?a=1&b=2).")


# -- API -------------------------------------------------------------------------------------
@api.get(
    "/leaderboard/history", summary="Each model's score on every corpus version, rank changes."
)
def history(ws: WS, p: MaybeViewer) -> Json:
    from bedside.leaderboard.history import leaderboard_history

    h = leaderboard_history(ws, p)
    # JSON object keys are strings: scores are keyed by the version id as text
    for m in h["models"]:
        m["scores"] = {str(k): v for k, v in m["scores"].items()}
    return h


@api.get("/leaderboard/versions/{version}", summary="The leaderboard on one corpus version.")
def board_of_version(ws: WS, p: MaybeViewer, version: str) -> Json:
    from bedside.leaderboard import build_leaderboard

    return build_leaderboard(ws, p, corpus_version_id=_version_id(ws, version))


@api.get("/data/drift", summary="Drift between two corpus versions (aggregate, k-suppressed).")
def drift(ws: WS, p: Viewer, a: str | None = None, b: str | None = None) -> Json:
    return _drift(ws, a, b)


@api.post("/reevaluate", tags=["owner"], summary="Queue submissions again on a corpus version.")
def reevaluate(ws: WS, p: Owner, body: ReevaluateBody) -> Json:
    from bedside.reevaluate import reevaluate as run

    return run(ws, body.version, body.submissions, mode=body.mode, actor=p.name)


# -- the trend chart ----------------------------------------------------------------------------
def trend_svg(versions: Sequence[Mapping[str, Any]], models: Sequence[Mapping[str, Any]]) -> str:
    """Macro-F1 per model across versions, with its 95 % CI as a band (baselines dashed)."""
    from bedside.web.charts import GRID, MUTED, SERIES, _render, _short

    vids = [int(v["id"]) for v in versions]
    drawn = [m for m in models if any(m["scores"].get(v) for v in vids)]
    if len(vids) < 1 or not drawn:
        return ""

    def draw(ax: Any) -> None:
        for i, m in enumerate(drawn):
            xs = [
                j
                for j, v in enumerate(vids)
                if (m["scores"].get(v) or {}).get("macro_f1") is not None
            ]
            ys = [m["scores"][vids[j]]["macro_f1"] for j in xs]
            base = m["kind"] == "baseline"
            color = MUTED if base else SERIES[i % len(SERIES)]
            ax.plot(xs, ys, "o--" if base else "o-", color=color, label=_short(str(m["model"]), 22))
            cis = [m["scores"][vids[j]].get("macro_f1_ci") for j in xs]
            if all(ci and ci[0] is not None for ci in cis):
                ax.fill_between(
                    xs,
                    [c[0] for c in cis],
                    [c[1] for c in cis],
                    color=color,
                    alpha=0.15,
                    linewidth=0,
                )
        ax.set_xticks(range(len(vids)))
        ax.set_xticklabels([f"v{v}" for v in vids])
        ax.set_xlim(-0.3, len(vids) - 0.7)
        ax.set_ylabel("macro-F1 (95 % CI)")
        ax.grid(axis="y", color=GRID, linewidth=0.8)
        ax.set_axisbelow(True)
        ax.legend(frameon=False, fontsize=8, loc="lower left")

    return _render(draw, width=6.4, height=3.4, title="Macro-F1 on each corpus version")


# -- pages ------------------------------------------------------------------------------------
@pages.get("/leaderboard/history", response_class=HTMLResponse)
def history_page(
    request: Request, ws: WS, viewer: MaybeViewer, version: str | None = None
) -> Response:
    from bedside.leaderboard import build_leaderboard
    from bedside.leaderboard.history import history_lines, leaderboard_history
    from bedside.web.pages import page

    h = leaderboard_history(ws, viewer)
    error = None
    chosen = None
    try:
        if version:
            vid = _version_id(ws, version)
            chosen = build_leaderboard(ws, viewer, corpus_version_id=vid)
    except BedsideError as e:
        error = e.to_dict()
    active = next((v for v in h["versions"] if v["active"]), None)
    active_board = build_leaderboard(ws, viewer, corpus_version_id=active["id"]) if active else None
    if chosen is None and len(h["versions"]) > 1 and active is not None:
        before = [v for v in h["versions"] if v["id"] < active["id"]]
        if before:
            chosen = build_leaderboard(ws, viewer, corpus_version_id=before[-1]["id"])
    drift = None
    if viewer is not None and chosen is not None and active_board is not None:
        a, b = chosen["corpus_version"]["id"], active_board["corpus_version"]["id"]
        if a != b:
            try:
                d = _drift(ws, str(min(a, b)), str(max(a, b)))
                drift = {"a": d["a"]["id"], "b": d["b"]["id"], "reading": d["reading"]}
            except BedsideError as e:  # other class sets, too few rows: say why
                drift = {"a": min(a, b), "b": max(a, b), "reading": [e.message]}
    return page(
        request,
        "history.html",
        viewer,
        active="leaderboard",
        history=h,
        lines=history_lines(h),
        chart=trend_svg(h["versions"], h["models"]),
        chosen=chosen,
        active_board=active_board,
        drift=drift,
        error=error,
    )


@pages.get("/data/drift", response_class=HTMLResponse)
def drift_page(
    request: Request, ws: WS, viewer: Viewer, a: str | None = None, b: str | None = None
) -> Response:
    from bedside.data.corpus import list_versions
    from bedside.web.pages import page

    d, error = None, None
    try:
        d = _drift(ws, a or None, b or None)
    except BedsideError as e:
        error = e.to_dict()
    return page(
        request,
        "drift.html",
        viewer,
        active="data",
        drift=d,
        error=error,
        versions=list_versions(ws),
        a=a,
        b=b,
    )
