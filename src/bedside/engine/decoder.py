"""Decoder LLMs in phase 2: training set-up that keeps a causal LM inside the job's memory.

The sequence-classification head of a decoder reads the hidden state of the last real token
(transformers finds it through ``config.pad_token_id``; the batches are right-padded). Two
settings matter for memory on CPU, where a job has a fixed cgroup limit:

- gradient checkpointing (non-reentrant, so LoRA's frozen inputs need no ``requires_grad``
  trick): each block's activations are recomputed in the backward pass instead of kept, which
  trades ~30 % more compute for activation memory that no longer grows with depth;
- no KV cache while training (``use_cache = False``): a cache is useless without generation.

``bedside.engine.memory`` estimates the same footprint before a job runs.
"""

from __future__ import annotations

from typing import Any


def prepare_for_training(model: Any) -> bool:
    """Turn on gradient checkpointing where the architecture supports it; True if it did."""
    cfg = getattr(model, "config", None)
    if cfg is not None:
        cfg.use_cache = False
    if not getattr(model, "supports_gradient_checkpointing", False):
        return False
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return True
