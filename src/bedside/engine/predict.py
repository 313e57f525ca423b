"""Batched inference: class logits of a sequence classifier, or pooled embeddings of an encoder.

Texts are tokenised once, batched by length (longest first) and padded per batch only, so short
abstracts do not pay for long ones; results come back in the original row order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from bedside.engine.flops import FlopCounter, ModelShape
from bedside.engine.modeling import Encoded, collate, pool, sorted_batches
from bedside.engine.progress import Progress


def autocast(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """Mixed precision on a GPU (bf16 where supported, else fp16); plain fp32 on CPU, where bf16
    has no hardware support here and runs ~5x slower than fp32."""
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def _run(
    enc: Encoded,
    batch_size: int,
    pad_id: int,
    device: torch.device,
    step: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    shape: ModelShape,
    counter: FlopCounter | None,
    progress: Progress | None,
    stage: str,
) -> np.ndarray:
    batches = sorted_batches(enc.lengths, batch_size)
    if counter is not None:
        counter.n_params = shape.n_params
    out: list[np.ndarray | None] = [None] * len(enc.ids)
    if progress:
        progress.start(stage, len(batches))
    with torch.inference_mode(), autocast(device):
        for b, idx in enumerate(batches):
            batch = collate([enc.ids[i] for i in idx], pad_id, device)
            res = step(batch).float().cpu().numpy()
            for j, i in enumerate(idx):
                out[i] = res[j]
            if counter is not None:
                tokens = int(batch["attention_mask"].sum())
                counter.add(shape.forward_flops(tokens, batch["input_ids"].shape[1]), tokens, stage)
            if progress:
                progress.update(b + 1, len(batches), examples=len(idx))
    return np.stack([o for o in out if o is not None]) if out else np.zeros((0, 0))


def predict_logits(
    model: Any,
    enc: Encoded,
    pad_id: int,
    device: torch.device,
    batch_size: int = 32,
    counter: FlopCounter | None = None,
    progress: Progress | None = None,
    stage: str = "predict",
) -> np.ndarray:
    """(n, num_labels) logits of a ``*ForSequenceClassification`` model, in input order."""
    model.eval()
    shape = ModelShape.of(model)
    return _run(
        enc,
        batch_size,
        pad_id,
        device,
        lambda b: model(**b).logits,
        shape,
        counter,
        progress,
        stage,
    )


def embed(
    model: Any,
    enc: Encoded,
    pad_id: int,
    device: torch.device,
    pooling: str = "mean",
    batch_size: int = 32,
    counter: FlopCounter | None = None,
    progress: Progress | None = None,
    stage: str = "embed",
) -> np.ndarray:
    """(n, hidden) pooled, L2-normalised embeddings from a bare encoder, in input order."""
    model.eval()
    shape = ModelShape.of(model)

    def step(b: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = model(**b).last_hidden_state
        return torch.nn.functional.normalize(
            pool(hidden.float(), b["attention_mask"], pooling), dim=-1
        )

    return _run(enc, batch_size, pad_id, device, step, shape, counter, progress, stage)


def softmax(x: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(x, dtype=np.float64) / temperature
    if z.size == 0:
        return z
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
