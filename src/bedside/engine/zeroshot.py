"""Phase 1: each model kind out of the box, no training.

- ``classifier``: the checkpoint's own head; its labels mapped onto the workspace classes.
- ``encoder``: similarity of each abstract to each class description (cosine, softmax at T=0.05).
- ``causal-lm``: the length-normalised log-likelihood of each class name after an instruction
  prompt, with contextual calibration; see :mod:`bedside.engine.llm`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bedside.engine.flops import FlopCounter
from bedside.engine.modeling import (
    bundle_pooling,
    encode,
    load_model,
    load_tokenizer,
)
from bedside.engine.predict import embed, predict_logits, softmax
from bedside.engine.progress import Progress
from bedside.errors import JobError

TEMPERATURE = 0.05


def class_descriptions(classes: Sequence[dict[str, str]], manifest: dict[str, Any]) -> list[str]:
    """The manifest's override, else the workspace description, else the class name."""
    over = manifest.get("descriptions") or {}
    return [over.get(c["name"]) or c.get("description") or c["name"] for c in classes]


def label_map(
    id2label: dict[int, str], mapping: dict[str, str], class_names: list[str]
) -> np.ndarray:
    """(num_ckpt_labels, num_classes) 0/1 matrix: checkpoint label -> workspace class.

    ``mapping`` keys may be label names or ids; with no mapping, names are matched
    case-insensitively."""
    pos = {c: j for j, c in enumerate(class_names)}
    lower = {c.lower(): j for j, c in enumerate(class_names)}
    m = np.zeros((len(id2label), len(class_names)))
    for i, name in id2label.items():
        target = mapping.get(name, mapping.get(str(i))) if mapping else None
        if target is None and not mapping:
            j = lower.get(str(name).lower())
        else:
            j = pos.get(target) if target is not None else None
        if j is not None:
            m[int(i), j] = 1.0
    if m.sum() == 0:
        raise JobError(
            f"no checkpoint label maps to a workspace class; checkpoint labels are "
            f"{sorted(id2label.values())}, classes are {class_names}.",
            error_class="invalid_input",
            hint="Map them in bedside.toml under [labels].",
        )
    return m


def map_probs(ckpt_probs: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Unmapped labels' mass dropped, then renormalised; unmapped classes get 0."""
    p = ckpt_probs @ m
    s = p.sum(axis=1, keepdims=True)
    return np.where(s > 0, p / np.where(s > 0, s, 1), 1.0 / m.shape[1])


def run_classifier(
    bundle: Path,
    texts: list[str],
    classes: list[dict[str, str]],
    manifest: dict[str, Any],
    device: torch.device,
    counter: FlopCounter,
    progress: Progress,
) -> np.ndarray:
    tok = load_tokenizer(bundle)
    model = load_model(bundle, "AutoModelForSequenceClassification").to(device)
    enc = encode(tok, texts, int(manifest["train"]["max_length"]))
    logits = predict_logits(
        model, enc, tok.pad_token_id, device, counter=counter, progress=progress
    )
    id2label = {int(k): str(v) for k, v in model.config.id2label.items()}
    m = label_map(id2label, manifest.get("labels") or {}, [c["name"] for c in classes])
    return map_probs(softmax(logits), m)


def run_encoder(
    bundle: Path,
    texts: list[str],
    classes: list[dict[str, str]],
    manifest: dict[str, Any],
    device: torch.device,
    counter: FlopCounter,
    progress: Progress,
) -> np.ndarray:
    tok = load_tokenizer(bundle)
    model = load_model(bundle, "AutoModel").to(device)
    pooling = bundle_pooling(bundle, manifest["phase1"].get("pooling"))
    max_len = int(manifest["train"]["max_length"])
    pad = tok.pad_token_id
    desc = embed(
        model,
        encode(tok, class_descriptions(classes, manifest), max_len),
        pad,
        device,
        pooling,
        counter=counter,
        stage="embed-classes",
    )
    docs = embed(
        model, encode(tok, texts, max_len), pad, device, pooling, counter=counter, progress=progress
    )
    return softmax(docs @ desc.T, TEMPERATURE)


def run_causal(
    bundle: Path,
    texts: list[str],
    classes: list[dict[str, str]],
    manifest: dict[str, Any],
    device: torch.device,
    counter: FlopCounter,
    progress: Progress,
    batch_size: int = 8,
) -> np.ndarray:
    """The calibrated (default) or raw label distribution; see :mod:`bedside.engine.llm`."""
    from bedside.engine.llm import run_phase1

    return run_phase1(bundle, texts, classes, manifest, device, counter, progress, batch_size)[0]
