"""The evaluation window: enforced at its boundaries with an injected clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from bedside.config import Policy
from bedside.errors import ConfigError, LimitError
from bedside.submissions.contributors import add_contributor, get_contributor
from bedside.submissions.intake import submit_bundle
from bedside.submissions.window import check_window, window_state
from bedside.workspace import Workspace

OPENS = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
CLOSES = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)  # the end of closes_at = "2026-12-31"
SECOND = dt.timedelta(seconds=1)


def _policy() -> Policy:
    return Policy(opens_at="2026-12-01", closes_at="2026-12-31")


@pytest.mark.parametrize(
    ("now", "state"),
    [
        (OPENS - SECOND, "not_open"),
        (OPENS, "open"),
        (CLOSES - SECOND, "open"),
        (CLOSES, "closed"),
    ],
)
def test_window_boundaries(now: dt.datetime, state: str) -> None:
    assert window_state(_policy(), now).state == state


def test_refusals_name_the_dates() -> None:
    with pytest.raises(LimitError) as early:
        check_window(_policy(), OPENS - SECOND)
    assert "submissions open at 2026-12-01 00:00 UTC" in early.value.message
    assert "it is now 2026-11-30 23:59 UTC" in early.value.message
    with pytest.raises(LimitError) as late:
        check_window(_policy(), CLOSES)
    msg = late.value.message
    assert "submissions closed at 2027-01-01 00:00 UTC" in msg
    assert "from 2026-12-01 00:00 UTC to 2027-01-01 00:00 UTC" in msg
    assert "closes_at" in (late.value.hint or "")
    check_window(_policy(), OPENS)  # inside: no error
    check_window(Policy(), OPENS)  # no window: always open


def test_times_with_offsets_and_naive_times_are_utc() -> None:
    p = Policy(opens_at="2026-12-01T09:00:00+01:00", closes_at="2026-12-01T18:00:00")
    opens, closes = p.window()
    assert opens == dt.datetime(2026, 12, 1, 8, tzinfo=dt.UTC)
    assert closes == dt.datetime(2026, 12, 1, 18, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"opens_at": "2026-12-31", "closes_at": "2026-12-01"}, "closes before it opens"),
        (
            {"opens_at": "2026-12-01T10:00", "closes_at": "2026-12-01T10:00"},
            "closes before it opens",
        ),
        ({"closes_at": "end of the year"}, "closes_at must be an ISO date"),
        ({"opens_at": 20261201}, "opens_at must be an ISO date"),
        ({"claim_gap_threshold": 1.5}, "claim_gap_threshold must be a number in 0..1"),
        ({"freeze_at_close": "yes"}, "freeze_at_close must be true or false"),
    ],
)
def test_bad_policy_values_refused(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as e:
        Policy.from_dict(values)
    assert message in e.value.message


def test_intake_enforces_the_window_at_the_close(
    cws: Workspace, make_bundle: Callable[..., Path]
) -> None:
    cws.set_policy(_policy())
    add_contributor(cws, "acme")
    sub = submit_bundle(cws, make_bundle(), "acme", clock=lambda: CLOSES - SECOND)
    assert sub["status"] == "accepted"
    with pytest.raises(LimitError, match="submissions closed at 2027-01-01 00:00 UTC"):
        submit_bundle(cws, make_bundle(name="second"), "acme", clock=lambda: CLOSES)
    with pytest.raises(LimitError, match="submissions open at 2026-12-01"):
        submit_bundle(cws, make_bundle(name="third"), "acme", clock=lambda: OPENS - SECOND)
    assert get_contributor(cws, "acme")["submissions_used"] == 1  # refusals do not count


def test_close_during_validation_is_caught_in_the_transaction(
    cws: Workspace, make_bundle: Callable[..., Path]
) -> None:
    cws.set_policy(_policy())
    add_contributor(cws, "acme")
    ticks = iter([CLOSES - SECOND, CLOSES])  # before validation: open; at the insert: closed
    with pytest.raises(LimitError, match="submissions closed"):
        submit_bundle(cws, make_bundle(), "acme", clock=lambda: next(ticks))
    assert get_contributor(cws, "acme")["submissions_used"] == 0
