"""The workspace header: window end as people read it, participants, a contributor's allowance."""

from __future__ import annotations

import datetime as dt

import pytest

from bedside.auth import OWNER, Principal
from bedside.config import Policy
from bedside.submissions.contributors import add_contributor, update_contributor
from bedside.submissions.header import WorkspaceHeader, workspace_header
from bedside.submissions.window import window_state
from bedside.workspace import Workspace

UTC = dt.UTC


def _header(closes: str | None, now: dt.datetime, opens: str | None = None) -> WorkspaceHeader:
    return WorkspaceHeader(window_state(Policy(opens_at=opens, closes_at=closes), now), 2)


@pytest.mark.parametrize(
    ("closes", "now", "first"),
    [
        (
            "2026-12-31",
            dt.datetime(2026, 12, 30, tzinfo=UTC),
            "ends 2026-12-31 (end of day, UTC) (2.0 days left)",
        ),
        (
            "2026-12-31T18:30:00",
            dt.datetime(2026, 12, 31, 18, 30, tzinfo=UTC),
            "closed 2026-12-31 18:30 UTC",
        ),
        (None, dt.datetime(2026, 12, 30, tzinfo=UTC), "no end date"),
    ],
)
def test_header_reads_the_window(closes: str | None, now: dt.datetime, first: str) -> None:
    assert _header(closes, now).lines()[:2] == [first, "2 participants"]


def test_header_before_the_window_opens() -> None:
    h = _header("2026-12-31", dt.datetime(2026, 11, 1, tzinfo=UTC), opens="2026-12-01")
    assert h.lines()[0] == "opens 2026-12-01 00:00 UTC, ends 2026-12-31 (end of day, UTC)"


def test_participants_and_a_contributors_allowance(ws: Workspace) -> None:
    add_contributor(ws, "acme", max_submissions=5, budget_pflops=300)
    add_contributor(ws, "globex")
    add_contributor(ws, "gone")
    update_contributor(ws, "gone", revoked=True)
    now = dt.datetime(2026, 12, 1, tzinfo=UTC)
    owner = workspace_header(ws, OWNER, now)
    assert owner.participants == 2 and owner.max_submissions is None
    acme_id = next(c for c in _ids(ws) if c[1] == "acme")[0]
    me = workspace_header(ws, Principal("contributor", "acme", acme_id), now)
    assert (me.submissions_used, me.max_submissions, me.pflops_used, me.budget_pflops) == (
        0,
        5,
        0.0,
        300.0,
    )
    assert me.lines()[2:] == ["0/5 submits", "0/300 PF"]
    assert me.to_dict()["summary"].endswith("0/5 submits · 0/300 PF")


def _ids(ws: Workspace) -> list[tuple[int, str]]:
    from sqlalchemy import select

    from bedside.store import schema

    t = schema.contributors
    with ws.store.read() as conn:
        return [(int(i), str(n)) for i, n in conn.execute(select(t.c.id, t.c.name))]
