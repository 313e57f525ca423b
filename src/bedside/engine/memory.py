"""Memory and time a decoder LLM's jobs will need, estimated before anything runs (no torch).

``bedside check`` prints the estimate and refuses a recipe whose phase 2 cannot fit the job's
memory limit. Everything is counted in fp32 (the CPU engine's precision), per part:

- **weights**: 4 bytes per parameter;
- **training state**: gradient + two AdamW moments = 12 bytes per *trainable* parameter (all of
  them for ``full``; the adapters and the head for ``lora``);
- **activations** kept for the backward pass, per token and block of a Llama-style decoder:
  ~``10·d + 3·d_kv + 4·d_ff`` floats plus ``2·heads·T`` for the attention probabilities, and
  the LoRA dropout copies. The engine trains decoders with gradient checkpointing
  (``engine/decoder.py``), so only each block's input is kept (``d`` floats per token and
  block) and one block is live at a time during the recomputation (:data:`LIVE_BLOCKS`);
- **runtime**: the Python process with torch, transformers and peft loaded (~0.4 GB).

With ``train.objective = "label-tokens"`` (engine/labeltune.py) a training row is the prompt, the
abstract (``max_length``) and the class name, so the activations count ``prompt_tokens`` and
:data:`LABEL_TOKENS` more per row, plus the vocabulary logits of the label positions (kept,
log-softmaxed and back-propagated: three copies); there is no classification head.

Phase 1 (inference) needs the weights, the KV cache of a batch (``2·layers·d_kv`` floats per
token) and one block's activations. The constants are fitted to one measurement on
SmolLM2-135M (docs/llm-vendors.md); treat the figure as a guide within ~25 %.

Time: FLOPs at an effective CPU rate of :data:`CPU_FLOPS_PER_THREAD` (a rough figure: the
machine's actual rate decides), with the ~1/3 extra forward pass of gradient checkpointing.

Example::

    est = estimate(cfg, n_params=134_515_008, manifest=m)
    est.phase2_gb, est.fits(8.6)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from bedside.submissions.flops import LABEL_TOKENS  # a class name's tokens, one figure for both

GB = 1024**3
FP32 = 4
RUNTIME_GB = 0.4  # python + torch + transformers + peft imported: 393 MB measured
# With checkpointing, one block is recomputed and back-propagated at a time; its activations,
# their gradients and the allocator's slack came to ~8 blocks' worth of saved activations on
# SmolLM2-135M (LoRA, batch 8, 256 tokens: 2,280 MB peak measured, 2,300 MB estimated).
LIVE_BLOCKS = 8
CPU_FLOPS_PER_THREAD = 75e9  # SmolLM2-135M: 196 GFLOP/s inference, ~160 training on 2 threads
GPU_FLOPS = 100e12  # a recent accelerator in bf16 at a modest utilisation
CHECKPOINTING_RECOMPUTE = 4 / 3  # one more forward pass per step (forward 1 + backward 2)
LORA_TARGETS_PER_LAYER = 2  # q_proj and v_proj by default


def _int(cfg: dict[str, Any], *keys: str, default: int = 0) -> int:
    for k in keys:
        v = cfg.get(k)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return v
    return default


@dataclass(frozen=True)
class Shape:
    """What the estimate needs from ``config.json``."""

    d: int
    d_ff: int
    d_kv: int
    heads: int
    layers: int
    vocab: int

    @classmethod
    def of(cls, cfg: dict[str, Any]) -> Shape:
        d = _int(cfg, "hidden_size", "n_embd", "d_model", default=768)
        heads = _int(cfg, "num_attention_heads", "n_head", default=max(1, d // 64))
        kv_heads = _int(cfg, "num_key_value_heads", default=heads)
        head_dim = _int(cfg, "head_dim", default=max(1, d // heads))
        return cls(
            d=d,
            d_ff=_int(cfg, "intermediate_size", "n_inner", default=4 * d),
            d_kv=kv_heads * head_dim,
            heads=heads,
            layers=_int(cfg, "num_hidden_layers", "n_layer", default=12),
            vocab=_int(cfg, "vocab_size", default=32000),
        )

    def block_floats_per_token(self, length: int, lora: bool) -> int:
        """Activations one block keeps for its backward pass, per token."""
        extra = LORA_TARGETS_PER_LAYER * self.d if lora else 0  # LoRA dropout copies of x
        return 10 * self.d + 3 * self.d_kv + 4 * self.d_ff + 2 * self.heads * length + extra


@dataclass
class Estimate:
    weights_gb: float
    training_state_gb: float
    activations_gb: float
    runtime_gb: float
    phase1_gb: float
    phase2_gb: float
    trainable_params: int
    gradient_checkpointing: bool
    batch_size: int
    max_length: int

    def fits(self, limit_gb: float) -> bool:
        return max(self.phase1_gb, self.phase2_gb) <= limit_gb

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


def trainable_params(shape: Shape, n_params: int, train: dict[str, Any], n_classes: int) -> int:
    method = train.get("method", "full")
    head = 0 if train.get("objective") == "label-tokens" else shape.d * n_classes
    if method == "full":
        return n_params
    if method == "lora":
        r = int((train.get("lora") or {}).get("r", 8))
        targets = (train.get("lora") or {}).get("target_modules") or [None] * LORA_TARGETS_PER_LAYER
        per = r * (shape.d + shape.d) + r * (shape.d + shape.d_kv)  # q: d->d, v: d->d_kv
        return shape.layers * per * max(1, len(targets)) // LORA_TARGETS_PER_LAYER + head
    return head  # head-only


def estimate(
    cfg: dict[str, Any],
    n_params: int,
    manifest: dict[str, Any],
    n_classes: int = 5,
    prompt_tokens: int = 96,
) -> Estimate:
    """Peak memory of phase 1 and phase 2 for a decoder bundle (see the module docstring)."""
    s = Shape.of(cfg)
    tr = manifest.get("train") or {}
    b, t = int(tr.get("batch_size", 16)), int(tr.get("max_length", 256))
    method = tr.get("method", "full")
    weights = FP32 * n_params
    n_train = trainable_params(s, n_params, tr, n_classes)
    state = 3 * FP32 * n_train
    label_tokens = tr.get("objective") == "label-tokens"
    t2 = t + prompt_tokens + LABEL_TOKENS if label_tokens else t  # a training row's tokens
    block = s.block_floats_per_token(t2, method == "lora") * FP32 * b * t2
    gc = manifest.get("kind") == "causal-lm"  # engine/decoder.py turns it on for decoders
    if method == "head-only":  # frozen body under inference_mode: one block at a time
        acts = float(block)
    elif gc:
        acts = s.layers * s.d * FP32 * b * t2 + LIVE_BLOCKS * block  # block inputs + live block
    else:
        acts = s.layers * block + float(block)
    if label_tokens:
        acts += 3 * b * (LABEL_TOKENS + 1) * s.vocab * FP32  # the label positions' logits
    # Phase 1: the prompt and the abstract in the KV cache of a batch of 8, logits of one position
    t1 = t + prompt_tokens
    kv = 2 * s.layers * s.d_kv * FP32 * 8 * t1
    phase1 = weights + kv + s.block_floats_per_token(t1, False) * FP32 * 8 * t1
    phase1 += 2 * 8 * s.vocab * FP32 * 4  # log-softmax over the vocabulary, a few label tokens
    return Estimate(
        weights_gb=weights / GB,
        training_state_gb=state / GB,
        activations_gb=acts / GB,
        runtime_gb=RUNTIME_GB,
        phase1_gb=phase1 / GB + RUNTIME_GB,
        phase2_gb=(weights + state + acts) / GB + RUNTIME_GB,
        trainable_params=n_train,
        gradient_checkpointing=gc and method != "head-only",
        batch_size=b,
        max_length=t,
    )


def estimate_seconds(
    pflops: dict[str, float], threads: int, gpu: bool = False, checkpointing: bool = True
) -> dict[str, float]:
    """Rough wall time per phase from the FLOP estimate (``submissions.flops.estimate_pflops``)."""
    rate = GPU_FLOPS if gpu else CPU_FLOPS_PER_THREAD * max(1, threads)
    p1 = float(pflops.get("phase1", 0.0)) * 1e15 / rate
    p2 = float(pflops.get("phase2", 0.0)) * 1e15 / rate
    if checkpointing:
        p2 *= CHECKPOINTING_RECOMPUTE
    return {"phase1_s": round(p1, 1), "phase2_s": round(p2, 1), "total_s": round(p1 + p2, 1)}


def advice(est: Estimate, limit_gb: float) -> str:
    """What to change when a recipe does not fit."""
    steps = []
    if est.batch_size > 1:
        steps.append(f"train.batch_size = {max(1, est.batch_size // 2)}")
    if est.max_length > 128:
        steps.append(f"train.max_length = {max(128, est.max_length // 2)}")
    if est.training_state_gb > 1.0:
        steps.append('train.method = "lora"')
    tail = "; or ask the owner for more than " + f"{limit_gb:g} GB per job"
    return "Try " + (", ".join(steps) if steps else "a smaller model") + tail + "."
