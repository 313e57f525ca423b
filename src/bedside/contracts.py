"""Typed records that cross a boundary: what a job reports (``out/compute.json``) and what a
result keeps as provenance (``results.provenance``).

The engine writes ``Compute.to_dict()``; the host never trusts that file, so it reads it back with
``Compute.from_untrusted(raw)``, which keeps only fields of the right type and finite numbers and
drops everything else. Production and tests build the same shapes through these classes.

Example::

    c = Compute(flops=1.2e15, wall_s=31.5, validation=ValidationReport(macro_f1_raw=0.61))
    again = Compute.from_untrusted(json.loads(json.dumps(c.to_dict())))
    assert again == c
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

PFLOP = 1e15
_MAX_LIST = 1000  # a curve or an offsets list longer than this is not something we wrote
_MAX_STR = 200


def _num(v: Any) -> float | None:
    """A finite float from ``v``, or None (bools, strings, NaN, inf and huge ints refused)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    try:
        f = float(v)
    except (OverflowError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _int(v: Any) -> int | None:
    f = _num(v)
    return int(f) if f is not None and f == int(f) and abs(f) < 2**62 else None


def _str(v: Any) -> str | None:
    if not isinstance(v, str):
        return None
    v = "".join(ch for ch in v[:_MAX_STR] if ch.isprintable())
    return v or None


def _nums(v: Any) -> list[float]:
    if not isinstance(v, list):
        return []
    out = [_num(x) for x in v[:_MAX_LIST]]
    return [x for x in out if x is not None]


def _num_map(v: Any) -> dict[str, float]:
    if not isinstance(v, dict):
        return {}
    out: dict[str, float] = {}
    for k, x in list(v.items())[:_MAX_LIST]:
        key, n = _str(k), _num(x)
        if key is not None and n is not None:
            out[key] = n
    return out


@dataclass
class ValidationReport:
    """What phase 2 measured on its validation slice (never the holdout).

    ``macro_f1_raw`` is the argmax decision on the validation slice; ``macro_f1_adjusted`` the same
    predictions after the fitted decision rule (per-class logit offsets); ``offsets`` are those
    offsets in workspace class order; ``curve`` is the validation macro-F1 after each epoch.
    """

    macro_f1_raw: float | None = None
    macro_f1_adjusted: float | None = None
    decision_rule: str | None = None  # "argmax" | "fitted-offsets" (see engine/decision.py)
    offsets: list[float] = field(default_factory=list)
    epochs_run: int | None = None
    best_epoch: int | None = None
    curve: list[float] = field(default_factory=list)
    n_validation: int | None = None
    windows_per_text: float | None = None  # mean windows per abstract when windowing is on

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_untrusted(cls, raw: Any) -> ValidationReport | None:
        if not isinstance(raw, dict):
            return None
        return cls(
            macro_f1_raw=_num(raw.get("macro_f1_raw")),
            macro_f1_adjusted=_num(raw.get("macro_f1_adjusted")),
            decision_rule=_str(raw.get("decision_rule")),
            offsets=_nums(raw.get("offsets")),
            epochs_run=_int(raw.get("epochs_run")),
            best_epoch=_int(raw.get("best_epoch")),
            curve=_nums(raw.get("curve")),
            n_validation=_int(raw.get("n_validation")),
            windows_per_text=_num(raw.get("windows_per_text")),
        )


@dataclass
class Compute:
    """``out/compute.json``: what a job spent, written by the engine, read by the host."""

    flops: float | None = None
    wall_s: float | None = None
    peak_rss_mb: float | None = None
    budget_flops: float | None = None
    stopped_by_budget: bool = False
    tokens: float | None = None
    n_params: int | None = None
    n_trainable: int | None = None
    threads: int | None = None
    device: str | None = None
    flops_by_stage: dict[str, float] = field(default_factory=dict)
    seconds_by_stage: dict[str, float] = field(default_factory=dict)
    validation: ValidationReport | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["validation"] = self.validation.to_dict() if self.validation else None
        return d

    @classmethod
    def from_untrusted(cls, raw: Any) -> Compute:
        """Keep what has the right type; anything else (or a non-object) gives the empty record."""
        if not isinstance(raw, dict):
            return cls()
        return cls(
            flops=_num(raw.get("flops")),
            wall_s=_num(raw.get("wall_s")),
            peak_rss_mb=_num(raw.get("peak_rss_mb")),
            budget_flops=_num(raw.get("budget_flops")),
            stopped_by_budget=raw.get("stopped_by_budget") is True,
            tokens=_num(raw.get("tokens")),
            n_params=_int(raw.get("n_params")),
            n_trainable=_int(raw.get("n_trainable")),
            threads=_int(raw.get("threads")),
            device=_str(raw.get("device")),
            flops_by_stage=_num_map(raw.get("flops_by_stage")),
            seconds_by_stage=_num_map(raw.get("seconds_by_stage")),
            validation=ValidationReport.from_untrusted(raw.get("validation")),
        )

    @property
    def pflops(self) -> float | None:
        return None if self.flops is None else self.flops / PFLOP


@dataclass
class ComputeSummary:
    """The compute part of a result's provenance: estimated vs actually used."""

    estimate_pflops: float | None = None
    actual_pflops: float | None = None
    stopped_by_budget: bool = False
    job_wall_s: float | None = None


@dataclass
class Provenance:
    """``results.provenance``: where a result came from. Stored as JSON via ``to_dict``."""

    bundle_hash: str | None = None
    recipe: dict[str, Any] | None = None  # the manifest's [train] (phase 2) or [phase1] table
    compute: ComputeSummary = field(default_factory=ComputeSummary)
    wall_s: float | None = None
    peak_memory_mb: float | None = None
    tier: str | None = None
    attempts: int | None = None
    validation: ValidationReport | None = None
    corpus_version: str | None = None  # the corpus version's content hash

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["validation"] = self.validation.to_dict() if self.validation else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Provenance:
        """Read a stored provenance (ours, so trusted in shape; unknown keys are ignored)."""
        d = dict(d or {})
        comp = d.get("compute") or {}
        names = {f.name for f in fields(ComputeSummary)}
        val = d.get("validation")
        return cls(
            bundle_hash=d.get("bundle_hash"),
            recipe=d.get("recipe"),
            compute=ComputeSummary(**{k: v for k, v in comp.items() if k in names}),
            wall_s=d.get("wall_s"),
            peak_memory_mb=d.get("peak_memory_mb"),
            tier=d.get("tier"),
            attempts=d.get("attempts"),
            validation=ValidationReport.from_untrusted(val) if val else None,
            corpus_version=d.get("corpus_version"),
        )
