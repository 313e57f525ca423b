"""Tiny random Hugging Face models, saved as safetensors bundles, for tests and ``demo --quick``.

The tokenizer is trained on the fly with ``tokenizers`` from the given texts, so no hub is needed.

Example::

    make_tiny_bundle(tmp / "enc", kind="encoder", texts=corpus_texts)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import tomli_w

DEFAULT_CLASSES = (
    "neoplasms",
    "digestive system diseases",
    "nervous system diseases",
    "cardiovascular diseases",
    "general pathological conditions",
)

_FALLBACK_TEXT = [
    "tumour",
    "carcinoma",
    "chemotherapy",
    "metastasis",
    "colon",
    "liver",
    "gastric",
    "bowel",
    "seizure",
    "stroke",
    "neuropathy",
    "brain",
    "cardiac",
    "heart",
    "artery",
    "hypertension",
    "infection",
    "inflammation",
    "patients",
    "study",
    "results",
    "conclusion",
    "methods",
    "background",
    "randomized",
    "trial",
]


def _texts(texts: Iterable[str] | None) -> list[str]:
    out = list(texts or [])
    if not out:
        out = [
            " ".join(_FALLBACK_TEXT[i:] + _FALLBACK_TEXT[:i]) for i in range(len(_FALLBACK_TEXT))
        ]
    return out


def train_wordpiece(texts: Iterable[str] | None, vocab_size: int = 800) -> Any:
    """A BERT-style (uncased WordPiece) fast tokenizer built from ``texts``.

    The vocabulary is drawn here rather than by ``tokenizers``' WordPiece trainer, whose choice
    among equally frequent pieces changes from one process to the next: the same texts give the
    same tokenizer (and so the same tiny model and scores) in every run. Every character, alone
    and as a ``##`` continuation, then the most frequent words (ties by spelling) until
    ``vocab_size``."""
    from collections import Counter

    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    norm, pre = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    words: Counter[str] = Counter()
    for text in _texts(texts):
        words.update(w for w, _ in pre.pre_tokenize_str(norm.normalize_str(text)))
    chars = sorted({c for w in words for c in w})
    pieces = special + chars + [f"##{c}" for c in chars]
    ranked = sorted((w for w in words if len(w) > 1), key=lambda w: (-words[w], w))
    pieces += ranked[: max(0, vocab_size - len(pieces))]
    tok = Tokenizer(models.WordPiece({p: i for i, p in enumerate(pieces)}, unk_token="[UNK]"))
    tok.normalizer, tok.pre_tokenizer, tok.decoder = norm, pre, decoders.WordPiece()
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=512,
    )


def train_bpe(texts: Iterable[str] | None, vocab_size: int = 800) -> Any:
    """A GPT/Llama-style byte-level BPE fast tokenizer trained on ``texts``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_texts(texts), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        model_max_length=512,
    )


def default_manifest(kind: str, name: str, classes: Sequence[str]) -> dict[str, Any]:
    """A valid ``bedside.toml`` content for a bundle of ``kind`` (see docs/submission-format.md)."""
    method = {"encoder": "similarity", "classifier": "label-mapping", "causal-lm": "prompt"}[kind]
    m: dict[str, Any] = {
        "name": name,
        "description": f"tiny random {kind} for tests",
        "kind": kind,
        "phase1": {"method": method},
        "train": {
            "method": "full",
            "epochs": 2,
            "learning_rate": 1e-3,
            "batch_size": 16,
            "max_length": 64,
            "warmup_ratio": 0.0,
            "weight_decay": 0.0,
            "class_weighting": "balanced",
            "seed": 0,
        },
    }
    if kind == "classifier":
        m["labels"] = {f"LABEL_{i}": c for i, c in enumerate(classes)}
    return m


def make_tiny_bundle(
    out_dir: Path,
    kind: str = "encoder",
    texts: Iterable[str] | None = None,
    classes: Sequence[str] = DEFAULT_CLASSES,
    manifest_overrides: dict[str, Any] | None = None,
    seed: int = 0,
    hidden: int = 32,
    layers: int = 2,
) -> Path:
    """Write a tiny random bundle (HF files + bedside.toml) of ``kind`` into ``out_dir``."""
    import torch
    from transformers import (
        AutoModel,
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        BertConfig,
        LlamaConfig,
    )

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    if kind in ("encoder", "classifier"):
        tok = train_wordpiece(texts)
        cfg: Any = BertConfig(
            vocab_size=len(tok),
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=2,
            intermediate_size=hidden * 2,
            max_position_embeddings=512,
        )
        if kind == "classifier":
            cfg.num_labels = len(classes)
            cfg.id2label = {i: f"LABEL_{i}" for i in range(len(classes))}
            cfg.label2id = {v: k for k, v in cfg.id2label.items()}
            model = AutoModelForSequenceClassification.from_config(cfg)
        else:
            model = AutoModel.from_config(cfg)
    elif kind == "causal-lm":
        tok = train_bpe(texts)
        cfg = LlamaConfig(
            vocab_size=len(tok),
            hidden_size=hidden,
            intermediate_size=hidden * 2,
            num_hidden_layers=layers,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=512,
            pad_token_id=tok.pad_token_id,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            tie_word_embeddings=False,
        )
        model = AutoModelForCausalLM.from_config(cfg)
    else:
        raise ValueError(f"kind must be encoder, classifier or causal-lm, got {kind!r}")
    model.save_pretrained(out_dir, safe_serialization=True)
    tok.save_pretrained(out_dir)
    for extra in ("generation_config.json",):
        (out_dir / extra).unlink(missing_ok=True)
    return write_manifest(
        out_dir, default_manifest(kind, f"tiny-{kind}", classes), manifest_overrides
    )


def write_manifest(
    out_dir: Path, manifest: dict[str, Any], overrides: dict[str, Any] | None
) -> Path:
    """Merge ``overrides`` into ``manifest`` (tables key by key), write ``bedside.toml`` and make
    the bundle readable to the sandbox's uid. Returns ``out_dir``."""
    for key, val in (overrides or {}).items():
        if isinstance(val, dict) and isinstance(manifest.get(key), dict):
            manifest[key].update(val)
        else:
            manifest[key] = val
    (out_dir / "bedside.toml").write_text(tomli_w.dumps(manifest))
    for f in out_dir.iterdir():  # safetensors writes 0600; a sandboxed uid must read the bundle
        f.chmod(0o644)
    return out_dir


def bundle_files(bundle: Path) -> list[str]:
    return sorted(p.name for p in Path(bundle).iterdir())


if __name__ == "__main__":  # pragma: no cover - manual use
    import sys

    p = make_tiny_bundle(Path(sys.argv[1]), kind=sys.argv[2] if len(sys.argv) > 2 else "encoder")
    print(json.dumps(bundle_files(p)))
