"""Workspace policy: validated dataclasses with ``to_dict``/``from_dict``.

The policy lives in the store (setting ``policy``) so that the worker, the server and the CLI
read the same values.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from bedside.errors import ConfigError

TIERS = ("A", "B", "C")


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
