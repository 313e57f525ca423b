"""Tiny random decoder LLMs of every allowlisted architecture, saved as bundles (tests only).

Each is built from a config (no hub), with a byte-level BPE tokenizer trained on the fly and,
optionally, a chat template saved as ``chat_template.jinja``.

Example::

    make_tiny_decoder(tmp / "qwen", "qwen2", texts=corpus_texts)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bedside.testing.tinymodels import DEFAULT_CLASSES, default_manifest, train_bpe, write_manifest

ARCHITECTURES = ("llama", "qwen2", "qwen3", "mistral", "phi3", "gemma", "gpt2", "smollm3")
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def tiny_config(
    arch: str, tok: Any, hidden: int = 32, layers: int = 2, init_std: float | None = None
) -> Any:
    """A small config of ``arch``; ``init_std`` overrides the weights' init (HF's 0.02 leaves a
    32-wide random LM head too weak to favour any token; 0.2 lets LoRA teach it labels)."""
    import transformers

    ids: dict[str, Any] = {
        "pad_token_id": tok.pad_token_id,
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
    }
    if init_std is not None:
        ids["initializer_range"] = init_std
    if arch == "gpt2":
        return transformers.GPT2Config(
            vocab_size=len(tok), n_embd=hidden, n_layer=layers, n_head=2, n_positions=512, **ids
        )
    cls = {
        "llama": "LlamaConfig",
        "qwen2": "Qwen2Config",
        "qwen3": "Qwen3Config",
        "mistral": "MistralConfig",
        "phi3": "Phi3Config",
        "gemma": "GemmaConfig",
        "smollm3": "SmolLM3Config",
    }[arch]
    return getattr(transformers, cls)(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=hidden // 2,
        max_position_embeddings=512,
        tie_word_embeddings=False,
        **ids,
    )


def make_tiny_decoder(
    out_dir: Path,
    arch: str = "llama",
    texts: Iterable[str] | None = None,
    classes: Sequence[str] = DEFAULT_CLASSES,
    manifest_overrides: dict[str, Any] | None = None,
    hidden: int = 32,
    layers: int = 2,
    chat_template: str | None = None,
    seed: int = 0,
    init_std: float | None = None,
) -> Path:
    """A ``kind = "causal-lm"`` bundle of ``arch`` in ``out_dir`` (``init_std``: see
    :func:`tiny_config`)."""
    import torch
    from transformers import AutoModelForCausalLM

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tok = train_bpe(texts)
    model = AutoModelForCausalLM.from_config(tiny_config(arch, tok, hidden, layers, init_std))
    model.save_pretrained(out_dir, safe_serialization=True)
    if chat_template is not None:
        tok.chat_template = chat_template
    tok.save_pretrained(out_dir)
    return write_manifest(
        out_dir, default_manifest("causal-lm", f"tiny-{arch}", classes), manifest_overrides
    )
