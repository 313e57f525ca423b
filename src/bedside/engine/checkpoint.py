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
written and fsynced. Only the last two complete checkpoints and the best one are kept.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import tempfile
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


def save(
    ckpt_root: Path,
    step: int,
    model: torch.nn.Module,
    opt: torch.optim.Optimizer | None,
    state: dict[str, Any],
    keep_steps: set[int] | None = None,
) -> Path:
    """Write ``checkpoint-STEP`` atomically, then prune old ones (keeping ``keep_steps``)."""
    ckpt_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=ckpt_root, prefix=f".tmp-checkpoint-{step}-"))
    files: dict[str, Path] = {}
    files["model.safetensors"] = tmp / "model.safetensors"
    save_file(trainable_state(model), str(files["model.safetensors"]))
    if opt is not None:
        ot, om = optimizer_state(opt)
        files["optimizer.safetensors"] = tmp / "optimizer.safetensors"
        save_file(ot, str(files["optimizer.safetensors"]))
        files["optimizer.json"] = tmp / "optimizer.json"
        files["optimizer.json"].write_text(json.dumps(om))
    rt, rs = rng_state()
    files["rng.safetensors"] = tmp / "rng.safetensors"
    save_file(rt, str(files["rng.safetensors"]))
    files["state.json"] = tmp / "state.json"
    files["state.json"].write_text(json.dumps({**state, "rng": rs, "step": step}, indent=1))
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
    return final


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
