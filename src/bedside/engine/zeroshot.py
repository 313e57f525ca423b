"""Phase 1: each model kind out of the box, no training.

- ``classifier``: the checkpoint's own head; its labels mapped onto the workspace classes.
- ``encoder``: similarity of each abstract to each class description (cosine, softmax at T=0.05).
- ``causal-lm``: the length-normalised log-likelihood of each class name after an instruction
  prompt. Mean (not sum) of the label's token log-probs, so a three-word class name is not
  penalised against a one-word one. The prompt prefix is run once per abstract and its KV cache
  shared by every label (labels cost a few tokens each instead of a full prompt each).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bedside.engine.flops import FlopCounter, ModelShape
from bedside.engine.modeling import (
    bundle_pooling,
    encode,
    load_model,
    load_tokenizer,
)
from bedside.engine.predict import autocast, embed, predict_logits, softmax
from bedside.engine.progress import Progress
from bedside.errors import JobError

TEMPERATURE = 0.05
DEFAULT_PROMPT = (
    "Classify the medical abstract into one of these disease categories: {labels}.\n\n"
    "Abstract: {text}\n\nCategory:"
)


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


def _cache_kw(model: Any) -> str:
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


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
    tok = load_tokenizer(bundle, causal=True)
    model = load_model(bundle, "AutoModelForCausalLM").to(device).eval()
    names = [c["name"] for c in classes]
    template = manifest["phase1"].get("prompt") or DEFAULT_PROMPT
    if "{text}" not in template:
        raise JobError("phase1.prompt must contain '{text}'.", error_class="invalid_input")
    head, tail = template.replace("{labels}", ", ".join(names)).split("{text}", 1)
    piece = lambda s: tok(s, add_special_tokens=False)["input_ids"]  # noqa: E731
    bos = [tok.bos_token_id] if tok.bos_token_id is not None else []
    head_ids, tail_ids = bos + piece(head), piece(tail)
    label_ids = [piece(" " + n) for n in names]
    # Token budget: the abstract is cut (its end first), never the instruction or a label.
    budget = max(16, int(manifest["train"]["max_length"]) - len(head_ids) - len(tail_ids))
    text_ids = tok(texts, add_special_tokens=False, truncation=True, max_length=budget)["input_ids"]
    prompts = [head_ids + list(t) + tail_ids for t in text_ids]
    return score_labels(
        model, prompts, label_ids, tok.pad_token_id, device, counter, progress, batch_size
    )


def score_labels(
    model: Any,
    prompts: list[list[int]],
    label_ids: list[list[int]],
    pad_id: int,
    device: torch.device,
    counter: FlopCounter | None,
    progress: Progress | None,
    batch_size: int = 8,
) -> np.ndarray:
    """Softmax over the mean token log-prob of each label after each prompt."""
    shape = ModelShape.of(model)
    if counter is not None:
        counter.n_params = shape.n_params
    kw = _cache_kw(model)
    lengths = np.array([len(p) for p in prompts])
    order = np.argsort(-lengths, kind="stable")
    scores = np.zeros((len(prompts), len(label_ids)))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if progress:
        progress.start("predict", len(batches))
    with torch.inference_mode(), autocast(device):
        for b, idx in enumerate(batches):
            rows = [prompts[i] for i in idx]
            width = max(len(r) for r in rows)
            ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for i, r in enumerate(rows):  # left padding: every prompt ends at the same column
                ids[i, width - len(r) :] = torch.tensor(r)
                mask[i, width - len(r) :] = 1
            ids, mask = ids.to(device), mask.to(device)
            pos = (mask.cumsum(1) - 1).clamp(min=0)
            out = model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=pos,
                use_cache=True,
                logits_to_keep=1,
            )
            cache: Any = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
            first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)
            last_pos = pos[:, -1:]
            n_tok = int(mask.sum())
            flops = shape.forward_flops(n_tok, width)
            for k, lab in enumerate(label_ids):
                lp = [first[:, lab[0]]]
                if len(lab) > 1:
                    cont = torch.tensor(lab[:-1], device=device).expand(len(rows), -1)
                    m2 = torch.cat([mask, torch.ones_like(cont)], dim=1)
                    p2 = last_pos + 1 + torch.arange(len(lab) - 1, device=device)
                    o2 = model(
                        input_ids=cont,
                        attention_mask=m2,
                        position_ids=p2,
                        use_cache=True,
                        **{kw: cache},
                    )
                    logp = torch.log_softmax(o2.logits.float(), dim=-1)
                    tgt = torch.tensor(lab[1:], device=device)
                    lp.extend(logp[:, j, tgt[j]] for j in range(len(lab) - 1))
                    cache.crop(-(len(lab) - 1))  # back to the shared prompt for the next label
                    flops += shape.forward_flops(cont.numel(), width + len(lab))
                scores[idx, k] = torch.stack(lp, 1).mean(1).cpu().numpy()
            if counter is not None:
                counter.add(flops, n_tok, "predict")
            if progress:
                progress.update(b + 1, len(batches), examples=len(idx))
    return softmax(scores)
