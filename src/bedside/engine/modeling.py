"""Safe model loading, tokenising once, and length-sorted batches with dynamic padding."""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bedside.errors import JobError

# Never execute code from a bundle, never touch the network, never read a pickle.
SAFE = {"use_safetensors": True, "trust_remote_code": False, "local_files_only": True}

LORA_TARGETS = {
    "bert": ["query", "value"],
    "roberta": ["query", "value"],
    "xlm-roberta": ["query", "value"],
    "distilbert": ["q_lin", "v_lin"],
    "mpnet": ["q", "v"],
    "deberta-v2": ["query_proj", "value_proj"],
    "electra": ["query", "value"],
    "gpt2": ["c_attn"],
    "llama": ["q_proj", "v_proj"],
    "qwen2": ["q_proj", "v_proj"],
    "qwen3": ["q_proj", "v_proj"],
    "mistral": ["q_proj", "v_proj"],
    "gemma": ["q_proj", "v_proj"],
    "phi3": ["qkv_proj"],
}


def pick_device(spec_device: str) -> torch.device:
    if spec_device != "cpu" and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def load_tokenizer(bundle: Path, causal: bool = False) -> Any:
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(bundle, trust_remote_code=False, local_files_only=True)
    except Exception as e:  # a broken tokenizer is the vendor's problem
        raise JobError(
            f"could not load the bundle's tokenizer: {e}", error_class="model_error"
        ) from e
    if tok.pad_token is None:
        # Decoder LMs often ship without a pad token; EOS is the conventional stand-in.
        if tok.eos_token is None:
            raise JobError(
                "the tokenizer has neither a pad nor an eos token.", error_class="model_error"
            )
        tok.pad_token = tok.eos_token
    return tok


def load_model(bundle: Path, auto_class: str, **kwargs: Any) -> Any:
    import transformers

    cls = getattr(transformers, auto_class)
    try:
        model = cls.from_pretrained(bundle, dtype=torch.float32, **SAFE, **kwargs)
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as e:
        raise JobError(
            f"could not load the bundle as {auto_class}: {e}", error_class="model_error"
        ) from e
    return model


def lora_targets(model: Any, configured: list[str] | None) -> list[str]:
    if configured:
        return list(configured)
    mt = getattr(model.config, "model_type", "")
    if mt in LORA_TARGETS:
        return LORA_TARGETS[mt]
    raise JobError(
        f"no default LoRA target modules for model type {mt!r}.",
        error_class="invalid_input",
        hint="Set train.lora.target_modules in bedside.toml.",
    )


def bundle_pooling(bundle: Path, configured: str | None) -> str:
    """``cls`` or ``mean``: the manifest wins, then sentence-transformers' 1_Pooling config."""
    if configured in ("mean", "cls"):
        return configured
    cfg = bundle / "1_Pooling" / "config.json"
    if cfg.is_file():
        try:
            d = json.loads(cfg.read_text())
        except (OSError, ValueError):
            d = {}
        if d.get("pooling_mode_cls_token"):
            return "cls"
    return "mean"


def pool(hidden: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    if how == "cls":
        return hidden[:, 0]
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


@dataclass
class Encoded:
    """Token ids of every text, tokenised once (no padding; batches pad dynamically)."""

    ids: list[list[int]]

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(x) for x in self.ids], dtype=np.int64)


def encode(tokenizer: Any, texts: Sequence[str], max_length: int) -> Encoded:
    enc = tokenizer(list(texts), truncation=True, max_length=max_length, padding=False)
    return Encoded([list(x) for x in enc["input_ids"]])


def collate(
    rows: Sequence[list[int]],
    pad_id: int,
    device: torch.device | None = None,
    width: int | None = None,
    n_rows: int | None = None,
) -> dict[str, torch.Tensor]:
    """Right-pad to the longest row of this batch only (dynamic padding), or to ``width`` when
    given (a bucket boundary, :func:`bucket_width`). ``n_rows`` fills a short batch up to that
    many rows with copies of its first row, so a compiled graph sees one batch size; the caller
    drops their outputs (``logits[: len(rows)]``)."""
    width = max(width or 0, max(len(r) for r in rows))
    if n_rows is not None and n_rows > len(rows):
        rows = [*rows, *[rows[0]] * (n_rows - len(rows))]
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    if device is not None and device.type != "cpu":
        ids, mask = ids.to(device, non_blocking=True), mask.to(device, non_blocking=True)
    return {"input_ids": ids, "attention_mask": mask}


def sorted_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Inference batches of similar length (longest first, so memory peaks early)."""
    order = np.argsort(-lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def train_batches(lengths: np.ndarray, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """One epoch's batches: a seeded shuffle, sorted by length inside mega-batches of 50 batches
    (little padding), then the batch order shuffled (no length curriculum). A pure function of
    ``(seed, epoch)``, so a resumed run replays exactly the same order."""
    rng = np.random.default_rng([seed, epoch])
    perm = rng.permutation(len(lengths))
    mega = batch_size * 50
    batches: list[np.ndarray] = []
    for s in range(0, len(perm), mega):
        chunk = perm[s : s + mega]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]


def bucket_widths(
    lengths: np.ndarray,
    batch_size: int,
    seed: int,
    max_pad: float = 0.03,
    max_widths: int = 8,
    multiple: int = 8,
) -> list[int]:
    """The fewest batch widths (multiples of ``multiple``, at most ``max_widths``) for compiled
    training (:mod:`bedside.engine.compiled`) under which epoch 0's :func:`train_batches`, each
    padded up to the next width and filled to ``batch_size`` rows, are at most ``max_pad``
    padding; the last width holds the longest row. Each count of widths is placed optimally (a
    dynamic programme over the batches' longest rows), so the bound costs as few compilations as
    it can. A pure function of ``(lengths, batch_size, seed)``: a resumed job pads as before.
    On dev.csv with MiniLM tokens at max_length 128 one width (128) already meets 3 %."""
    if len(lengths) == 0:
        return [multiple]
    longest = np.array([int(lengths[b].max()) for b in train_batches(lengths, batch_size, seed, 0)])
    cand, count = np.unique(-(-longest // multiple) * multiple, return_counts=True)
    real = float(lengths.sum())
    rows = np.concatenate([[0], np.cumsum(count)]) * batch_size  # rows up to each candidate
    n, best = len(cand), [int(cand[-1])]
    # cost[j]: padded tokens when candidates 0..j go to widths chosen among them, cand[j] the last
    cost = cand * rows[1:].astype(float)
    back: list[np.ndarray] = []
    for k in range(1, min(max_widths, n) + 1):
        if k > 1:
            # cost_k[j] = min over i < j of cost_{k-1}[i] + cand[j] * (rows[j+1] - rows[i+1])
            tot = cost[None, :] + cand[:, None] * (rows[1:, None] - rows[None, 1:])
            tot[np.triu_indices(n)] = np.inf
            arg = tot.argmin(1)
            cost, back = tot[np.arange(n), arg], [*back, arg]
            cost[0] = cand[0] * rows[1]
        widths, j = [int(cand[-1])], n - 1
        for arg in reversed(back):
            if j == 0:
                break
            j = int(arg[j])
            widths.insert(0, int(cand[j]))
        best = widths
        if 1.0 - real / cost[-1] <= max_pad:
            break
    return best


def bucket_width(length: int, widths: Sequence[int]) -> int:
    """The smallest width that holds ``length`` tokens (``length`` itself past the last one)."""
    i = bisect.bisect_left(widths, length)
    return int(widths[i]) if i < len(widths) else int(length)


def pad_fraction(
    lengths: np.ndarray,
    batches: Sequence[np.ndarray],
    widths: Sequence[int] | None = None,
    n_rows: int | None = None,
) -> float:
    """The share of the tokens a pass over ``batches`` computes that are padding: each batch is
    padded to its longest row (or up to a bucket width) and, with ``n_rows``, filled up to that
    many rows, as :func:`collate` does."""
    real = padded = 0
    for b in batches:
        if len(b) == 0:
            continue
        longest = int(lengths[b].max())
        width = longest if widths is None else bucket_width(longest, widths)
        real += int(lengths[b].sum())
        padded += width * max(len(b), n_rows or 0)
    return 1.0 - real / padded if padded else 0.0


def iter_batches(enc: Encoded, batch_size: int) -> Iterator[np.ndarray]:
    yield from sorted_batches(enc.lengths, batch_size)
