"""Crash-safe training checkpoints, without pickles.

``checkpoints/checkpoint-STEP/``::

    model.safetensors       the trainable parameters (all of them for full fine-tuning; LoRA
                            adapters + head for LoRA; frozen weights come back from the bundle)
    optimizer.safetensors   per-parameter optimiser tensors (``state.IDX.KEY``)
    optimizer.json          param groups and any scalar optimiser state
    rng.safetensors         torch CPU (and CUDA) generator states, uint8 tensors
    state.json              epoch, step in epoch, global step, seed, best metrics, FLOPs so far,
                            numpy/python RNG states, the run config
    COMPLETE                written last: {file: size}; a dir without it (or whose files do not
                            match it) is torn and never resumed from

A checkpoint is built in a temp dir, every file fsynced, the dir renamed into place, then COMPLETE
written and fsynced. Only the last two complete checkpoints and the best one are kept, and only the
newest keeps the optimiser moments (twice the weights for AdamW: the others are read for their
weights only, as the best epoch's model, so their moments are dead bytes on disk).

Saving is two steps so that training need not wait for the disk: :func:`snapshot` copies the
state into fresh CPU tensors (a memcpy: milliseconds for MiniLM) in the training thread, then
:func:`write` (or :class:`AsyncWriter`, which runs it in a background thread, one write at a
time) serialises and fsyncs the copy while the next steps run. The copy is taken between steps,
so what lands on disk is exactly the state the synchronous path would have written.
:class:`Schedule` decides when: every N optimiser steps, or every N minutes of wall time.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from bedside.engine.io import atomic_write, fsync_dir

_NAME = re.compile(r"^checkpoint-(\d+)$")


def _fsync_file(path: Path) -> None:
    with path.open("rb") as fh:
        os.fsync(fh.fileno())


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {
        n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad
    }


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = s
    py = random.getstate()
    scalars = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": _numpy_state(),
    }
    return tensors, scalars


def _numpy_state() -> list[Any]:
    name, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)  # type: ignore[misc]
    return [name, [int(k) for k in keys], int(pos), int(has_gauss), float(gauss)]


def set_rng_state(tensors: dict[str, torch.Tensor], scalars: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch_cpu"])
    if torch.cuda.is_available():
        states = [tensors[k] for k in sorted(tensors) if k.startswith("torch_cuda_")]
        if states:
            torch.cuda.set_rng_state_all(states)
    if "python" in scalars:
        v, inner, gauss = scalars["python"]
        random.setstate((v, tuple(inner), gauss))
    if "numpy" in scalars:
        name, keys, pos, has_gauss, gauss = scalars["numpy"]
        np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))


def optimizer_state(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for idx, st in sd["state"].items():
        for key, val in st.items():
            if isinstance(val, torch.Tensor):
                tensors[f"state.{idx}.{key}"] = val.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{key}"] = val
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def load_optimizer_state(
    opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, t in tensors.items():
        _, idx, key = name.split(".", 2)
        state.setdefault(int(idx), {})[key] = t
    for name, v in meta.get("scalars", {}).items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def _copy(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # .to(copy=True) always allocates: a CPU tensor's .cpu() would alias the live parameter,
    # which the next optimiser step overwrites while the writer thread is still reading it.
    return {n: t.detach().to("cpu", copy=True).contiguous() for n, t in tensors.items()}


@dataclass
class Snapshot:
    """Everything one checkpoint holds, copied out of the live model and optimiser."""

    step: int
    model: dict[str, torch.Tensor]
    rng: dict[str, torch.Tensor]
    state: dict[str, Any]  # JSON-able: the caller's state plus "rng" and "step"
    optimizer: dict[str, torch.Tensor] | None = None
    optimizer_meta: dict[str, Any] | None = None


def snapshot(
    step: int, model: torch.nn.Module, opt: torch.optim.Optimizer | None, state: dict[str, Any]
) -> Snapshot:
    """Copy the state to save at ``step``; the model and optimiser may change right after."""
    rt, rs = rng_state()
    snap = Snapshot(
        step=step,
        model=_copy({n: p for n, p in model.named_parameters() if p.requires_grad}),
        rng=_copy(rt),
        # a JSON round trip is a deep copy that also fails here, not in the thread, on bad state
        state=json.loads(json.dumps({**state, "rng": rs, "step": step})),
    )
    if opt is not None:
        ot, om = optimizer_state(opt)
        snap.optimizer, snap.optimizer_meta = _copy(ot), json.loads(json.dumps(om))
    return snap


def write(ckpt_root: Path, snap: Snapshot, keep_steps: set[int] | None = None) -> Path:
    """Write ``snap`` as ``checkpoint-STEP`` atomically, then prune old ones (keeping
    ``keep_steps``) and drop the optimiser moments from all but this one."""
    ckpt_root.mkdir(parents=True, exist_ok=True)
    step = snap.step
    tmp = Path(tempfile.mkdtemp(dir=ckpt_root, prefix=f".tmp-checkpoint-{step}-"))
    files: dict[str, Path] = {}
    files["model.safetensors"] = tmp / "model.safetensors"
    save_file(snap.model, str(files["model.safetensors"]))
    if snap.optimizer is not None:
        files["optimizer.safetensors"] = tmp / "optimizer.safetensors"
        save_file(snap.optimizer, str(files["optimizer.safetensors"]))
        files["optimizer.json"] = tmp / "optimizer.json"
        files["optimizer.json"].write_text(json.dumps(snap.optimizer_meta))
    files["rng.safetensors"] = tmp / "rng.safetensors"
    save_file(snap.rng, str(files["rng.safetensors"]))
    files["state.json"] = tmp / "state.json"
    files["state.json"].write_text(json.dumps(snap.state, indent=1))
    for f in files.values():
        _fsync_file(f)
    fsync_dir(tmp)
    final = ckpt_root / f"checkpoint-{step}"
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    fsync_dir(ckpt_root)
    sizes = {name: (final / name).stat().st_size for name in files}
    atomic_write(final / "COMPLETE", json.dumps(sizes))
    prune(ckpt_root, keep_steps or set())
    if snap.optimizer is not None:
        for s, d in complete_checkpoints(ckpt_root):
            if s != step:
                drop_optimizer(d)
    return final


def save(
    ckpt_root: Path,
    step: int,
    model: torch.nn.Module,
    opt: torch.optim.Optimizer | None,
    state: dict[str, Any],
    keep_steps: set[int] | None = None,
) -> Path:
    """Write ``checkpoint-STEP`` now, in this thread (:func:`snapshot` then :func:`write`)."""
    return write(ckpt_root, snapshot(step, model, opt, state), keep_steps)


def drop_optimizer(d: Path) -> None:
    """Remove the optimiser files of a complete checkpoint, keeping it complete: COMPLETE is
    rewritten (atomically) without them first, so a crash in between leaves a checkpoint whose
    marker matches its files either way."""
    names = ("optimizer.safetensors", "optimizer.json")
    if not any((d / n).exists() for n in names):
        return
    sizes = json.loads((d / "COMPLETE").read_text())
    atomic_write(d / "COMPLETE", json.dumps({k: v for k, v in sizes.items() if k not in names}))
    for n in names:
        (d / n).unlink(missing_ok=True)
    fsync_dir(d)


class AsyncWriter:
    """Writes snapshots in a background thread, one at a time.

    ``submit`` first waits for the write before it (so at most one copy of the state is in
    memory besides the live one, and checkpoints land in step order), then returns at once.
    A write's exception is raised by the next ``submit`` or ``wait``, never lost.
    With ``background=False`` it writes in the caller's thread (the old, synchronous path).
    """

    def __init__(self, ckpt_root: Path, background: bool = True) -> None:
        self.ckpt_root, self.background = ckpt_root, background
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.seconds_blocked = 0.0  # training time spent waiting on checkpoints

    def submit(self, snap: Snapshot, keep_steps: set[int] | None = None) -> None:
        self.wait()
        if not self.background:
            t = time.perf_counter()
            write(self.ckpt_root, snap, keep_steps)
            self.seconds_blocked += time.perf_counter() - t
            return
        keep = set(keep_steps or ())
        self._thread = threading.Thread(
            target=self._run, args=(snap, keep), name=f"checkpoint-{snap.step}", daemon=True
        )
        self._thread.start()

    def _run(self, snap: Snapshot, keep: set[int]) -> None:
        try:
            write(self.ckpt_root, snap, keep)
        except BaseException as e:  # raised in the training thread by the next wait()
            self._error = e

    def wait(self) -> None:
        """Block until the write in flight (if any) is on disk; re-raise its error."""
        if self._thread is not None:
            t = time.perf_counter()
            self._thread.join()
            self.seconds_blocked += time.perf_counter() - t
            self._thread = None
        if self._error is not None:
            err, self._error = self._error, None
            raise err


@dataclass
class Schedule:
    """When to checkpoint inside an epoch: every ``every_steps`` optimiser steps, or, when
    ``every_minutes`` is set, once that much wall time has passed since the last save (epoch
    ends are always saved by the loop). Time-based saves cost the same on a slow CPU and a fast
    GPU, where a fixed step count turns into a checkpoint every few seconds."""

    every_steps: int
    every_minutes: float | None = None
    clock: Callable[[], float] = time.monotonic
    _last: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self._last = self.clock()

    def due(self, step: int) -> bool:
        if self.every_minutes is not None:
            return self.clock() - self._last >= self.every_minutes * 60.0
        return self.every_steps > 0 and step % self.every_steps == 0

    def saved(self) -> None:
        self._last = self.clock()


def is_complete(d: Path) -> bool:
    marker = d / "COMPLETE"
    if not marker.is_file():
        return False
    try:
        sizes = json.loads(marker.read_text())
        return all((d / n).is_file() and (d / n).stat().st_size == s for n, s in sizes.items())
    except (OSError, ValueError, AttributeError):
        return False


def complete_checkpoints(ckpt_root: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints, newest first."""
    if not ckpt_root.is_dir():
        return []
    found = []
    for d in ckpt_root.iterdir():
        m = _NAME.match(d.name)
        if m and d.is_dir() and is_complete(d):
            found.append((int(m.group(1)), d))
    return sorted(found, reverse=True)


def prune(ckpt_root: Path, keep_steps: set[int], keep_last: int = 2) -> None:
    """Delete all but the newest ``keep_last`` complete checkpoints and ``keep_steps``; torn dirs
    and stale temp dirs go too."""
    complete = complete_checkpoints(ckpt_root)
    keep = {s for s, _ in complete[:keep_last]} | keep_steps
    names = {d.name for _, d in complete}
    for d in ckpt_root.iterdir():
        m = _NAME.match(d.name)
        torn = (m and d.name not in names) or d.name.startswith(".tmp-checkpoint-")
        if (m and d.name in names and int(m.group(1)) not in keep) or torn:
            shutil.rmtree(d, ignore_errors=True)


def load(d: Path) -> dict[str, Any]:
    """Read a checkpoint dir; raises on a damaged file (caller falls back to an older one)."""
    out: dict[str, Any] = {
        "model": load_file(str(d / "model.safetensors")),
        "rng": load_file(str(d / "rng.safetensors")),
        "state": json.loads((d / "state.json").read_text()),
    }
    if (d / "optimizer.safetensors").is_file():
        out["optimizer"] = load_file(str(d / "optimizer.safetensors"))
        out["optimizer_meta"] = json.loads((d / "optimizer.json").read_text())
    return out


def latest(ckpt_root: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest complete checkpoint that also reads back cleanly, or None."""
    for _, d in complete_checkpoints(ckpt_root):
        try:
            return d, load(d)
        except Exception:  # torn despite its marker (e.g. bit rot): try the one before
            continue
    return None


def load_weights(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    missing = set(tensors) - {n for n, _ in model.named_parameters()}
    if missing:
        raise ValueError(f"checkpoint has parameters the model lacks: {sorted(missing)[:5]}")
    model.load_state_dict(tensors, strict=False)
