"""The workspace header: the evaluation window, the participants, and a contributor's allowance.

Shown on every web page and by ``bedside status``: the end date (and how long is left), the number
of participants (contributors not revoked), and for a contributor its submissions used / allowed
and PFLOPs used / budget (the same figures the submission limits enforce).

Example::

    h = workspace_header(ws, viewer, utc_now())
    h.window.state, h.participants, h.submissions_used, h.max_submissions
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from bedside.store import schema
from bedside.submissions.window import WindowState, fmt_when, window_state

if TYPE_CHECKING:
    from bedside.auth import Principal
    from bedside.workspace import Workspace


@dataclass(frozen=True)
class WorkspaceHeader:
    """What the header line says (contributor fields are None for the owner or a visitor)."""

    window: WindowState
    participants: int
    contributor: str | None = None
    submissions_used: int | None = None
    max_submissions: int | None = None
    pflops_used: float | None = None
    budget_pflops: float | None = None

    @property
    def ends(self) -> str:
        """The end of the window as people read it: a close at midnight is the day before's end.

        ``closes_at = "2026-12-31"`` closes at 2027-01-01 00:00 UTC and reads
        ``2026-12-31 (end of day, UTC)``; ``-`` without a close.
        """
        closes = self.window.closes
        if closes is None:
            return "-"
        if (closes.hour, closes.minute, closes.second, closes.microsecond) == (0, 0, 0, 0):
            return f"{(closes - dt.timedelta(days=1)).date().isoformat()} (end of day, UTC)"
        return fmt_when(closes)

    def lines(self) -> list[str]:
        """The header as short phrases (``bedside status`` prints them; the web shows them)."""
        w = self.window
        when = {
            "unbounded": "no end date",
            "not_open": f"opens {fmt_when(w.opens)}, ends {self.ends}",
            "open": f"ends {self.ends}"
            + (f" ({w.days_left:.1f} days left)" if w.days_left is not None else ""),
            "closed": f"closed {self.ends}",
        }[w.state]
        out = [when, f"{self.participants} participant{'s' if self.participants != 1 else ''}"]
        if self.max_submissions is not None:
            out.append(f"{self.submissions_used}/{self.max_submissions} submits")
        if self.budget_pflops is not None:
            out.append(f"{self.pflops_used or 0.0:.3g}/{self.budget_pflops:.3g} PF")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "window": self.window.to_dict(),
            "participants": self.participants,
            "contributor": self.contributor,
            "submissions_used": self.submissions_used,
            "max_submissions": self.max_submissions,
            "pflops_used": self.pflops_used,
            "budget_pflops": self.budget_pflops,
            "ends": self.ends,
            "summary": " · ".join(self.lines()),
        }


def workspace_header(ws: Workspace, viewer: Principal | None, now: dt.datetime) -> WorkspaceHeader:
    """The header for ``viewer`` at ``now`` (an aware datetime)."""
    from bedside.submissions.contributors import get_contributor_by_id

    t = schema.contributors
    with ws.store.read() as conn:
        participants = int(
            conn.execute(select(func.count()).select_from(t).where(t.c.revoked.is_(False))).scalar()
            or 0
        )
    window = window_state(ws.policy(), now)
    if viewer is None or viewer.is_owner or viewer.contributor_id is None:
        return WorkspaceHeader(window, participants)
    me = get_contributor_by_id(ws, viewer.contributor_id)
    return WorkspaceHeader(
        window,
        participants,
        contributor=str(me["name"]),
        submissions_used=int(me["submissions_used"]),
        max_submissions=int(me["max_submissions"]),
        pflops_used=float(me["used_pflops"]),
        budget_pflops=float(me["budget_pflops"]),
    )
