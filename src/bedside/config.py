"""Workspace policy: validated dataclasses with ``to_dict``/``from_dict``.

The policy lives in the store (setting ``policy``) so that the worker, the server and the CLI
read the same values.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from bedside.errors import ConfigError

TIERS = ("A", "B", "C")
REEVALUATE = ("published", "all", "none")


def parse_when(key: str, value: str, *, end_of_day: bool = False) -> dt.datetime:
    """An ISO date or date-time as an aware UTC datetime (no offset given: UTC).

    A date alone means the start of that day, or with ``end_of_day`` the end of it (the next
    midnight), so that ``closes_at = "2026-12-31"`` still accepts submissions on the 31st.

    >>> parse_when("closes_at", "2026-12-31", end_of_day=True).isoformat()
    '2027-01-01T00:00:00+00:00'
    """
    if not isinstance(value, str):
        raise ConfigError(
            f"{key} must be an ISO date or date-time such as '2026-12-31' or "
            f"'2026-12-31T18:00:00+01:00'; found {value!r}."
        )
    text = value.strip()
    try:
        if len(text) == 10:  # YYYY-MM-DD
            day = dt.date.fromisoformat(text)
            start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
            return start + dt.timedelta(days=1) if end_of_day else start
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"{key} must be an ISO date or date-time such as '2026-12-31' or "
            f"'2026-12-31T18:00:00+01:00'; found {value!r}."
        ) from None
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


@dataclass
class JobLimits:
    """Resources one sandboxed job gets."""

    cpus: int = 2
    memory_gb: float = 8.6
    wall_time_s: int = 3600
    output_quota_mb: int = 2048
    pids: int = 512
    gpu: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.cpus <= 256:
            raise ConfigError(f"cpus must be 1..256, got {self.cpus}.")
        if not 0.1 <= self.memory_gb <= 4096:
            raise ConfigError(f"memory_gb must be 0.1..4096, got {self.memory_gb}.")
        if not 1 <= self.wall_time_s <= 7 * 86400:
            raise ConfigError(f"wall_time_s must be 1..604800, got {self.wall_time_s}.")
        if not 1 <= self.output_quota_mb <= 1_000_000:
            raise ConfigError(f"output_quota_mb must be 1..1000000, got {self.output_quota_mb}.")
        if not 16 <= self.pids <= 100_000:
            raise ConfigError(f"pids must be 16..100000, got {self.pids}.")


@dataclass
class Policy:
    """What the owner decides for the whole workspace."""

    limits: JobLimits = field(default_factory=JobLimits)
    min_tier: str = "A"
    k_anonymity: int = 10  # EDA cells with fewer rows are not shown exactly
    default_submissions: int = 5
    default_budget_pflops: float = 300.0
    score_decimals: int = 3  # precision of released scores
    ladder_step: float = 0.0  # >0: only release a new score if it beats the best by this much
    bootstrap_resamples: int = 1000
    max_bundle_mb: int = 2048
    # The evaluation window (ISO dates or date-times, UTC unless an offset is given; None: no
    # bound). Submissions outside it are refused; a date alone for closes_at means its end.
    opens_at: str | None = None
    closes_at: str | None = None
    freeze_at_close: bool = True  # record the final ranking once the window has closed
    claim_gap_threshold: float = 0.10  # claimed minus phase-1 macro-F1 above this is flagged
    # Which submissions re-run by themselves when a new corpus version becomes active:
    # "published" (those on the board: both phases done), "all" (every one not cancelled), "none".
    reevaluate: str = "published"
    # >0: contributors see scores on this share of the holdout while the window is open; the
    # final ranking (after the close) uses the rest, the private part (docs/evaluation.md).
    holdout_public_fraction: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.limits, dict):
            self.limits = JobLimits(**self.limits)
        if self.min_tier not in TIERS:
            raise ConfigError(f"min_tier must be one of {', '.join(TIERS)}, got {self.min_tier!r}.")
        if not 1 <= self.k_anonymity <= 1000:
            raise ConfigError(f"k_anonymity must be 1..1000, got {self.k_anonymity}.")
        if self.default_submissions < 0:
            raise ConfigError(f"default_submissions must be >= 0, got {self.default_submissions}.")
        if self.default_budget_pflops < 0:
            raise ConfigError(
                f"default_budget_pflops must be >= 0, got {self.default_budget_pflops}."
            )
        if not 1 <= self.score_decimals <= 6:
            raise ConfigError(f"score_decimals must be 1..6, got {self.score_decimals}.")
        if self.bootstrap_resamples < 100:
            raise ConfigError(
                f"bootstrap_resamples must be >= 100, got {self.bootstrap_resamples}."
            )
        if not isinstance(self.freeze_at_close, bool):
            raise ConfigError(
                f"freeze_at_close must be true or false, got {self.freeze_at_close!r}."
            )
        gap = self.claim_gap_threshold
        if isinstance(gap, bool) or not isinstance(gap, int | float) or not 0 <= gap <= 1:
            raise ConfigError(f"claim_gap_threshold must be a number in 0..1, got {gap!r}.")
        self.claim_gap_threshold = float(gap)
        if self.reevaluate not in REEVALUATE:
            raise ConfigError(
                f"reevaluate must be one of {', '.join(REEVALUATE)}; found {self.reevaluate!r}."
            )
        step = self.ladder_step
        if isinstance(step, bool) or not isinstance(step, int | float) or not 0 <= step <= 0.5:
            raise ConfigError(
                f"ladder_step must be a number in 0..0.5 (0: the Ladder is off); found {step!r}.",
                hint="A step of 0.01 releases a new score only when it beats the best by 0.01.",
            )
        self.ladder_step = float(step)
        frac = self.holdout_public_fraction
        if (
            isinstance(frac, bool)
            or not isinstance(frac, int | float)
            or not (frac == 0 or 0.1 <= frac <= 0.9)
        ):
            raise ConfigError(
                f"holdout_public_fraction must be 0 (off) or in 0.1..0.9; found {frac!r}.",
                hint="0.3 shows contributors scores on 30 % of the holdout and ranks on the rest.",
            )
        self.holdout_public_fraction = float(frac)
        opens, closes = self.window()
        if opens is not None and closes is not None and closes <= opens:
            raise ConfigError(
                f"the evaluation window closes before it opens: opens_at {self.opens_at!r}, "
                f"closes_at {self.closes_at!r}.",
                hint="Set closes_at after opens_at (or clear one with `bedside policy set closes_at=null`).",
            )

    def window(self) -> tuple[dt.datetime | None, dt.datetime | None]:
        """``(opens, closes)`` as aware UTC datetimes; ``None`` where the policy sets no bound."""
        opens = None if self.opens_at is None else parse_when("opens_at", self.opens_at)
        closes = (
            None
            if self.closes_at is None
            else parse_when("closes_at", self.closes_at, end_of_day=True)
        )
        return opens, closes

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Policy:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(
                f"unknown policy key(s): {', '.join(unknown)}; known keys are: {', '.join(sorted(known))}."
            )
        return cls(**d)
