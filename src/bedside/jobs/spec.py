"""The job interface: a job is a directory, and talks only through files.

Layout of ``JOB/`` (paths in the spec are relative to the job directory, so the same spec works
in a plain subprocess and inside the sandbox, where the job directory is mounted at ``/job``)::

    spec.json                       this JobSpec
    bundle/                         the model bundle (read-only; symlink or bind mount)
    inputs/train.parquet            row_id, text, label       (phase 2 only)
    inputs/holdout_texts.parquet    row_id, text              (never labels)
    checkpoints/checkpoint-N/       written by phase 2; COMPLETE marks a finished one
    out/predictions.json            {"classes": [...], "row_ids": [...], "probs": [[...], ...]}
    out/progress.jsonl              one JSON record a line: ts, stage, step, total, loss, ...
    out/compute.json                {"flops", "wall_s", "peak_rss_mb", "stopped_by_budget", "device", ...}
    out/model/                      phase 2: the fine-tuned model (safetensors)
    out/error.json                  on failure: {"error_class", "message"}
    out/log.txt                     free text for the owner only (never shown to contributors)

Run it with ``python -m bedside.engine.entrypoint JOB_DIR``; exit code 0 means success.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bedside.errors import ConfigError

if TYPE_CHECKING:
    from bedside.submissions.manifest import TrainConfig

JOB_KINDS = ("phase1", "phase2", "baseline", "screen")
MODEL_KINDS = ("encoder", "classifier", "causal-lm")


@dataclass
class JobSpec:
    job_id: int
    kind: str  # phase1 | phase2
    model_kind: str  # encoder | classifier | causal-lm
    manifest: dict[str, Any]  # the bundle's validated bedside.toml, as a dict
    classes: list[dict[str, str]]  # [{"id", "name", "description"}] in workspace order
    seed: int = 0
    budget_flops: float | None = None  # stop cleanly when this many FLOPs are spent
    threads: int = 2  # torch threads = the job's CPU quota
    device: str = "auto"  # auto | cpu | cuda
    checkpoint_every: int = 50  # optimiser steps
    bundle: str = "bundle"
    train: str = "inputs/train.parquet"
    holdout_texts: str = "inputs/holdout_texts.parquet"
    out: str = "out"
    checkpoints: str = "checkpoints"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in JOB_KINDS:
            raise ConfigError(f"job kind must be one of {JOB_KINDS}, got {self.kind!r}.")
        if self.model_kind not in MODEL_KINDS:
            raise ConfigError(f"model kind must be one of {MODEL_KINDS}, got {self.model_kind!r}.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobSpec:
        return cls(**d)

    def write(self, job_dir: Path) -> Path:
        p = Path(job_dir) / "spec.json"
        p.write_text(json.dumps(self.to_dict(), indent=1))
        return p

    @classmethod
    def read(cls, job_dir: Path) -> JobSpec:
        return cls.from_dict(json.loads((Path(job_dir) / "spec.json").read_text()))

    def train_config(self, table: Mapping[str, Any] | None = None) -> TrainConfig:
        """The manifest's ``[train]`` table (or ``table``: the same with the engine's defaults
        filled in) as a validated ``TrainConfig``; a missing seed is the spec's."""
        from bedside.submissions.manifest import LoraConfig, TrainConfig

        raw = dict(table if table is not None else (self.manifest.get("train") or {}))
        if raw.get("seed") is None:
            raw["seed"] = self.seed
        names = {f.name for f in fields(TrainConfig)}
        if unknown := sorted(set(raw) - names):
            raise ConfigError(
                f"job {self.job_id}: unknown [train] key(s) {', '.join(unknown)}; "
                f"expected some of {', '.join(sorted(names))}."
            )
        lora = raw.pop("lora", None) or {}
        cfg = TrainConfig(**raw, lora=LoraConfig(**lora))
        cfg.check_kind(self.model_kind)
        return cfg

    def path(self, job_dir: Path, name: str) -> Path:
        """Resolve one of the relative paths (``bundle``, ``train``, ...) against ``job_dir``."""
        return Path(job_dir) / getattr(self, name)
