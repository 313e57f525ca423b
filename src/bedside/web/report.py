"""A self-contained HTML report (leaderboard, EDA, business impact) for the owner to share.

One file: the stylesheet is inlined and every chart is inline SVG, so it opens anywhere with no
network and no server. It holds aggregate numbers only, like every page.

Example::

    Path("report.html").write_text(render_report(ws))
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bedside import __version__, leaderboard
from bedside.auth import OWNER
from bedside.store.store import utcnow
from bedside.web import charts
from bedside.web.eda_view import eda_view

if TYPE_CHECKING:
    from bedside.workspace import Workspace

HERE = Path(__file__).resolve().parent


def render_report(
    ws: Workspace,
    assumptions: Mapping[str, Any] | None = None,
    ai_costs: Mapping[str, float] | None = None,
    baseline_cost: float = 0.0,
) -> str:
    """The report as one HTML string, as the owner sees the workspace now."""
    from bedside.web.pages import templates

    board = leaderboard.build_leaderboard(ws, OWNER)
    impact = leaderboard.impact_rows(ws, OWNER, assumptions, ai_costs, baseline_cost)
    corpus = leaderboard.active_corpus(ws)
    eda = leaderboard.corpus_eda(ws) if corpus else None
    template = templates.env.get_template("report.html")
    return template.render(
        css=(HERE / "static" / "bedside.css").read_text(),
        board=board,
        board_chart=charts.leaderboard_svg(board["rows"]),
        impact=impact,
        impact_chart=charts.impact_svg(impact["rows"], impact["currency"]),
        corpus=corpus,
        view=eda_view(eda),
        generated=utcnow(),
        version=__version__,
        published=board["published"],
    )
