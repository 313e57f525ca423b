"""The evaluation window: submissions are taken from ``Policy.opens_at`` until ``closes_at``.

One rule, checked by intake beside the submission limit and the budget: a submission is taken
when ``opens_at <= now < closes_at`` (a bound the policy leaves out does not apply). The clock is
injected so that tests can stand on either side of a boundary.

Example::

    check_window(ws.policy(), utc_now())          # raises LimitError outside the window
    window_state(ws.policy(), utc_now()).state    # "open", "not_open", "closed" or "unbounded"
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bedside.config import Policy
from bedside.errors import LimitError

Clock = Callable[[], dt.datetime]
STATES = ("unbounded", "not_open", "open", "closed")


def utc_now() -> dt.datetime:
    """The real clock (aware, UTC)."""
    return dt.datetime.now(dt.UTC)


def fmt_when(when: dt.datetime | None) -> str:
    """``2026-12-31 18:00 UTC`` (minutes are the precision people read a deadline at)."""
    return "-" if when is None else when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class WindowState:
    """Where ``now`` stands in the window."""

    opens: dt.datetime | None
    closes: dt.datetime | None
    now: dt.datetime
    state: str  # one of STATES

    @property
    def accepting(self) -> bool:
        return self.state in ("open", "unbounded")

    @property
    def days_left(self) -> float | None:
        """Days until the close (0 once closed); ``None`` without a close."""
        if self.closes is None:
            return None
        return max(0.0, (self.closes - self.now).total_seconds() / 86400)

    def to_dict(self) -> dict[str, Any]:
        return {
            "opens_at": None if self.opens is None else self.opens.isoformat(),
            "closes_at": None if self.closes is None else self.closes.isoformat(),
            "now": self.now.isoformat(),
            "state": self.state,
            "accepting": self.accepting,
            "days_left": None if self.days_left is None else round(self.days_left, 2),
        }


def window_state(policy: Policy, now: dt.datetime) -> WindowState:
    """The window of ``policy`` at ``now`` (an aware datetime).

    >>> p = Policy(opens_at="2026-12-01", closes_at="2026-12-31")
    >>> window_state(p, dt.datetime(2027, 1, 1, tzinfo=dt.UTC)).state
    'closed'
    """
    if now.tzinfo is None:
        raise ValueError(f"now must be an aware datetime (UTC), got the naive {now!r}.")
    opens, closes = policy.window()
    if opens is None and closes is None:
        state = "unbounded"
    elif opens is not None and now < opens:
        state = "not_open"
    elif closes is not None and now >= closes:
        state = "closed"
    else:
        state = "open"
    return WindowState(opens=opens, closes=closes, now=now, state=state)


def check_window(policy: Policy, now: dt.datetime) -> None:
    """Refuse a submission outside the window, with the dates in the message."""
    w = window_state(policy, now)
    if w.accepting:
        return
    span = f"from {fmt_when(w.opens)} to {fmt_when(w.closes)}"
    if w.state == "not_open":
        raise LimitError(
            f"submissions open at {fmt_when(w.opens)}; it is now {fmt_when(now)} "
            f"(the evaluation window runs {span}).",
            hint="Submit once the window opens; `bedside check` works offline meanwhile.",
        )
    raise LimitError(
        f"submissions closed at {fmt_when(w.closes)}; it is now {fmt_when(now)} "
        f"(the evaluation window ran {span}).",
        hint="Ask the data owner to extend the window (`bedside policy set closes_at=YYYY-MM-DD`).",
    )
