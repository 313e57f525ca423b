"""Files in and out of a job: manifest defaults, inputs, predictions, compute, errors.

Everything the job writes goes under ``out/`` (or ``checkpoints/``), through :func:`atomic_write`
so that a reader outside the sandbox never sees half a file.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bedside.errors import JobError

DEFAULT_TRAIN: dict[str, Any] = {
    "method": "full",
    "epochs": 3,
    "learning_rate": 5e-5,
    "batch_size": 16,
    "max_length": 256,
    "warmup_ratio": 0.1,
    "weight_decay": 0.01,
    "class_weighting": "none",
    "seed": None,
    "validation_fraction": 0.1,
    "early_stopping_patience": 2,
    "lora": {"r": 8, "alpha": 16, "dropout": 0.1, "target_modules": None},
    "windows": 1,
    "window_stride": None,
    "window_pooling": "mean",
    "layer_lr_decay": 1.0,
    "label_smoothing": 0.0,
    "decision_rule": "argmax",  # a bare spec without the key keeps the old behaviour
    "objective": "classifier",  # or "label-tokens" for a causal LM (engine/labeltune.py)
}
DEFAULT_PHASE1 = {"encoder": "similarity", "classifier": "label-mapping", "causal-lm": "prompt"}


def with_defaults(manifest: dict[str, Any], kind: str) -> dict[str, Any]:
    """A deep copy of ``manifest`` with every key the engine reads filled in."""
    m = copy.deepcopy(manifest)
    m.setdefault("kind", kind)
    p1 = m.setdefault("phase1", {})
    p1.setdefault("method", DEFAULT_PHASE1[m["kind"]])
    p1.setdefault("pooling", None)
    p1.setdefault("prompt", None)
    tr = m.setdefault("train", {})
    for key, val in DEFAULT_TRAIN.items():
        if key == "lora":
            lora = tr.setdefault("lora", {}) or {}
            tr["lora"] = {**val, **lora}
        else:
            tr.setdefault(key, val)
    m.setdefault("labels", {})
    m.setdefault("descriptions", {})
    return m


def prepare_environment(job_dir: Path, out_dir: Path) -> None:
    """Offline, pickle-free loading; every cache pointed into ``out/.cache`` (the job's only
    writable place besides ``checkpoints/``)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    cache = out_dir / ".cache"
    for var, sub in (
        ("HF_HOME", "hf"),
        ("HF_HUB_CACHE", "hf/hub"),
        ("TRANSFORMERS_CACHE", "hf/hub"),
        ("HF_DATASETS_CACHE", "hf/datasets"),
        ("TORCHINDUCTOR_CACHE_DIR", "inductor"),
        ("TRITON_CACHE_DIR", "triton"),
        ("XDG_CACHE_HOME", "xdg"),
        ("MPLCONFIGDIR", "mpl"),
        ("CUDA_CACHE_PATH", "nv"),  # else the CUDA driver writes ~/.nv
        ("TORCH_HOME", "torch"),
        ("PYTORCH_KERNEL_CACHE_PATH", "torch/kernels"),
    ):
        os.environ[var] = str(cache / sub)
    os.environ.setdefault("TMPDIR", str(cache / "tmp"))
    (cache / "tmp").mkdir(parents=True, exist_ok=True)
    tempfile.tempdir = None  # re-read TMPDIR


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write to a temp file beside ``path``, fsync, rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, json.dumps(obj, indent=1))


def read_texts(path: Path, need_label: bool = False) -> pd.DataFrame:
    """Read an input parquet file; ``row_id`` and ``text`` always, ``label`` for training."""
    if not path.exists():
        raise JobError(
            f"input file {path.name} is missing from the job directory.",
            error_class="invalid_input",
        )
    df = pd.read_parquet(path)
    cols = ["row_id", "text"] + (["label"] if need_label else [])
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise JobError(
            f"{path.name} needs columns {cols}; missing {missing}, found {list(df.columns)}.",
            error_class="invalid_input",
        )
    df = df[cols].copy()
    df["text"] = df["text"].fillna("").astype(str)
    return df.reset_index(drop=True)


def write_predictions(
    path: Path, classes: list[str], row_ids: list[Any], probs: np.ndarray
) -> None:
    """``{"classes", "row_ids", "probs"}``; each row renormalised to sum to 1 (float noise)."""
    p = np.asarray(probs, dtype=np.float64)
    if len(row_ids) == 0:
        p = p.reshape(0, len(classes))
    if p.shape != (len(row_ids), len(classes)):
        raise JobError(
            f"predictions have shape {p.shape}, expected ({len(row_ids)}, {len(classes)}).",
            error_class="model_error",
        )
    if not np.isfinite(p).all():
        raise JobError(
            "the model produced non-finite probabilities (NaN or inf).", error_class="model_error"
        )
    p = np.clip(p, 0.0, None)
    s = p.sum(axis=1, keepdims=True)
    p = np.where(s > 0, p / np.where(s > 0, s, 1.0), 1.0 / len(classes))
    ids = [r.item() if hasattr(r, "item") else r for r in row_ids]
    write_json(path, {"classes": list(classes), "row_ids": ids, "probs": p.round(7).tolist()})


def write_error(out_dir: Path, error_class: str, message: str) -> None:
    write_json(out_dir / "error.json", {"error_class": error_class, "message": message[:2000]})


@dataclass
class Phase2Result:
    probs: np.ndarray
    row_ids: list[Any]
    stopped_by_budget: bool
    info: dict[str, Any] = field(default_factory=dict)


class JobContext:
    """What every stage of a job needs: the spec, its paths, the filled-in manifest, a log."""

    def __init__(self, spec: Any, job_dir: Path) -> None:
        self.spec = spec
        self.job_dir = Path(job_dir)
        self.out = spec.path(job_dir, "out")
        self.checkpoints = spec.path(job_dir, "checkpoints")
        self.bundle = spec.path(job_dir, "bundle")
        self.manifest = with_defaults(spec.manifest or {}, spec.model_kind)
        self.classes: list[dict[str, str]] = list(spec.classes)
        self.class_names = [c["name"] for c in self.classes]
        train = self.manifest["train"]
        self.seed = int(train["seed"] if train.get("seed") is not None else spec.seed)
        self.train = spec.train_config(train)  # typed: TrainConfig (submissions.manifest)
        self.device: Any = None  # set by the entrypoint
        self.counter: Any = None
        self.progress: Any = None

    def holdout(self) -> pd.DataFrame:
        return read_texts(self.spec.path(self.job_dir, "holdout_texts"))

    def log(self, msg: str) -> None:
        line = f"{_now()} {msg}\n"
        with (self.out / "log.txt").open("a") as fh:
            fh.write(line)


def _now() -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%S")
