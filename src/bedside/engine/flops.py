"""FLOPs counted as a job runs, and the budget that stops it.

Per non-pad token, a dense layer with N weights costs 2N FLOPs forward. Backward costs 2N for the
activation gradients (needed whenever anything below is trainable) plus 2N_trainable for the weight
gradients, so full fine-tuning is the familiar 6N and LoRA/frozen runs are ~4N + 2N_trainable.
Embedding tables are lookups, not matmuls, and are left out of N (as in Kaplan et al.). Attention
scores and values add 4 * layers * padded_len * d_model per token forward.

So the ``full+frozen-embeddings`` recipe (``freeze_embeddings``) costs the same FLOPs per token
as ``full``: what it saves is the table's gradient scatter, clipping and AdamW update (memory
traffic, not matmuls), which shows in the wall time, not in this count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ModelShape:
    n_params: int  # all parameters
    n_dense: int  # non-embedding parameters (the matmul weights)
    n_trainable_dense: int
    layers: int
    d_model: int

    @classmethod
    def of(cls, model: Any) -> ModelShape:
        import torch

        emb_ids = {
            id(p)
            for m in model.modules()
            if isinstance(m, torch.nn.Embedding)
            for p in m.parameters()
        }
        n_params = n_dense = n_train = 0
        for p in model.parameters():
            n_params += p.numel()
            if id(p) in emb_ids:
                continue
            n_dense += p.numel()
            if p.requires_grad:
                n_train += p.numel()
        cfg = getattr(model, "config", None)
        layers = int(getattr(cfg, "num_hidden_layers", 0) or getattr(cfg, "n_layer", 0) or 0)
        d_model = int(getattr(cfg, "hidden_size", 0) or getattr(cfg, "n_embd", 0) or 0)
        return cls(n_params, n_dense, n_train, layers, d_model)

    def forward_flops(self, tokens: int, padded_len: int) -> float:
        return 2.0 * self.n_dense * tokens + 4.0 * self.layers * padded_len * self.d_model * tokens

    def train_flops(self, tokens: int, padded_len: int) -> float:
        fwd = self.forward_flops(tokens, padded_len)
        frozen_all = self.n_trainable_dense == 0
        act_grads = 0.0 if frozen_all else fwd  # d(activations) mirrors the forward cost
        weight_grads = 2.0 * self.n_trainable_dense * tokens
        return fwd + act_grads + weight_grads


@dataclass
class FlopCounter:
    """Running total of FLOPs and tokens, against an optional budget."""

    budget: float | None = None
    flops: float = 0.0
    tokens: int = 0
    by_stage: dict[str, float] = field(default_factory=dict)
    n_params: int | None = None  # of the last model that ran (for compute.json)

    def add(self, flops: float, tokens: int, stage: str) -> None:
        self.flops += flops
        self.tokens += tokens
        self.by_stage[stage] = self.by_stage.get(stage, 0.0) + flops

    @property
    def exhausted(self) -> bool:
        return self.budget is not None and self.flops >= self.budget

    def state(self) -> dict[str, Any]:
        return {"flops": self.flops, "tokens": self.tokens, "by_stage": dict(self.by_stage)}

    def load_state(self, s: dict[str, Any]) -> None:
        self.flops = float(s.get("flops", 0.0))
        self.tokens = int(s.get("tokens", 0))
        self.by_stage = {k: float(v) for k, v in s.get("by_stage", {}).items()}
