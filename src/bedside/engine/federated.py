"""Federated hooks of the phase-2 loop (``spec.extra["federated"]``), used by
:mod:`bedside.engine.finetune` only when a federation staged the job.

A federated round is an ordinary phase-2 job with four additions, all optional:

- ``init``: a safetensors file (relative to the job dir) with the global exchanged tensors; they
  replace the freshly built model's trainable parameters before the first step;
- ``train: false``: no optimiser step (the job only scores the given weights on the holdout);
- ``proximal_mu``: FedProx's proximal term ``mu / 2 * ||w - w_global||^2`` added to the loss;
- ``dp``: DP-SGD through Opacus (per-example clipping to ``max_grad_norm``, Gaussian noise of
  ``noise_multiplier``, Poisson-sampled batches of rate ``sample_rate``);

and it writes ``out/federated/update.safetensors`` (the trainable tensors after local training:
LoRA adapters and head for LoRA, every weight for full fine-tuning) plus ``out/federated/update.json``
(examples seen, optimiser steps, DP settings). Nothing else in the loop changes.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bedside.errors import JobError

UPDATE_DIR = "federated"
UPDATE_FILE = "update.safetensors"


@dataclass
class DPSettings:
    noise_multiplier: float
    max_grad_norm: float
    sample_rate: float


@dataclass
class FederatedHooks:
    """What ``spec.extra["federated"]`` asks of the loop (see the module docstring)."""

    init: Path | None
    train: bool
    proximal_mu: float
    dp: DPSettings | None

    @classmethod
    def of(cls, job_dir: Path, extra: dict[str, Any]) -> FederatedHooks | None:
        fed = extra.get("federated")
        if not fed:
            return None
        dp = fed.get("dp")
        return cls(
            init=(Path(job_dir) / fed["init"]) if fed.get("init") else None,
            train=bool(fed.get("train", True)),
            proximal_mu=float(fed.get("proximal_mu") or 0.0),
            dp=DPSettings(
                float(dp["noise_multiplier"]), float(dp["max_grad_norm"]), float(dp["sample_rate"])
            )
            if dp
            else None,
        )

    def load_init(self, model: torch.nn.Module) -> dict[str, torch.Tensor] | None:
        """Put the global tensors into ``model``; returns a frozen copy (FedProx's anchor)."""
        if self.init is None:
            return None
        from safetensors.torch import load_file

        from bedside.engine.checkpoint import trainable_state

        if not self.init.is_file():
            raise JobError(
                f"the global weights {self.init.name} are missing from the job directory.",
                error_class="invalid_input",
            )
        given = load_file(str(self.init))
        own = trainable_state(model)
        if set(given) != set(own):
            extra, missing = sorted(set(given) - set(own)), sorted(set(own) - set(given))
            raise JobError(
                f"the global weights do not match the model: {len(extra)} unknown tensor(s) "
                f"{extra[:3]}, {len(missing)} missing {missing[:3]}.",
                error_class="invalid_input",
            )
        for name, t in given.items():
            if tuple(t.shape) != tuple(own[name].shape):
                raise JobError(
                    f"global tensor {name} has shape {tuple(t.shape)}, the model's is "
                    f"{tuple(own[name].shape)}.",
                    error_class="invalid_input",
                )
        model.load_state_dict(given, strict=False)
        return {n: t.detach().clone() for n, t in given.items()}

    def proximal(self, model: torch.nn.Module, anchor: dict[str, torch.Tensor] | None) -> Any:
        """``mu / 2 * sum ||w - w_global||^2`` over the exchanged tensors (0 without FedProx)."""
        if not self.proximal_mu or anchor is None:
            return 0.0
        total: Any = 0.0
        for name, p in model.named_parameters():
            if p.requires_grad and name in anchor:
                total = total + (p - anchor[name].to(p.device)).pow(2).sum()
        return 0.5 * self.proximal_mu * total


class PrivateTraining:
    """Opacus DP-SGD around the engine's model and optimiser.

    ``GradSampleModule`` shares the model's parameters (no copy), so checkpoints, validation and
    the export read the plain model; only the training forward and the optimiser step go
    through Opacus. Batches are Poisson-sampled (each row in with probability ``sample_rate``,
    independently per step): the sampling the RDP accountant assumes.
    """

    def __init__(
        self, model: torch.nn.Module, opt: torch.optim.Optimizer, dp: DPSettings, batch_size: int
    ) -> None:
        try:
            from opacus import GradSampleModule
            from opacus.optimizers import DPOptimizer
        except ImportError as e:  # pragma: no cover - depends on the install
            raise JobError(
                "differential privacy needs Opacus; install it with `pip install -e '.[federated]'`.",
                error_class="invalid_input",
            ) from e
        self.dp = dp
        # LoRA freezes the embeddings, so the first hooked module sees inputs without grad:
        # torch warns on every step that its full backward hook fires on outputs only, which
        # is what Opacus's per-example gradients need.
        warnings.filterwarnings("ignore", "Full backward hook is firing", UserWarning)
        # Embedding tables stay fixed under DP: position ids broadcast over the batch, which
        # per-example gradients cannot split, and a vocabulary-sized table per example would
        # not fit. They are unfrozen again by close(), so the update keeps every exchanged name.
        self.frozen = [
            p
            for m in model.modules()
            if isinstance(m, torch.nn.Embedding)
            for p in m.parameters()
            if p.requires_grad
        ]
        for p in self.frozen:
            p.requires_grad_(False)
        self.module = GradSampleModule(model)
        # Noise and sampling must not be predictable from the run's seed (whoever knows it could
        # subtract the noise, or tell which rows a step used), so both are seeded from the OS.
        noise_gen = torch.Generator().manual_seed(int.from_bytes(os.urandom(8), "little") >> 1)
        self.rng = np.random.default_rng(int.from_bytes(os.urandom(16), "little"))
        self.optimizer = DPOptimizer(
            opt,
            noise_multiplier=dp.noise_multiplier,
            max_grad_norm=dp.max_grad_norm,
            expected_batch_size=batch_size,
            generator=noise_gen,
        )
        self.steps = 0

    def batches(self, n: int) -> list[np.ndarray]:
        """One epoch of Poisson-sampled batches: ``round(1 / q)`` steps, a fresh draw each."""
        steps = max(1, round(1.0 / self.dp.sample_rate))
        return [np.flatnonzero(self.rng.random(n) < self.dp.sample_rate) for _ in range(steps)]

    def close(self) -> None:
        self.module._close()
        for p in self.frozen:
            p.requires_grad_(True)


def export(out: Path, model: torch.nn.Module, info: dict[str, Any]) -> Path:
    """``out/federated/update.safetensors`` (trainable tensors) and ``update.json`` (``info``)."""
    from safetensors.torch import save_file

    from bedside.engine.checkpoint import trainable_state
    from bedside.engine.io import atomic_write

    dest = out / UPDATE_DIR
    dest.mkdir(parents=True, exist_ok=True)
    save_file(trainable_state(model), str(dest / UPDATE_FILE))
    atomic_write(dest / "update.json", json.dumps(info, indent=1))
    return dest / UPDATE_FILE
