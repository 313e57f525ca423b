"""Sliding windows over long texts, and pooling window scores back to one row per text.

More than half of the abstracts are longer than 256 tokens; truncation throws their end away.
With ``windows > 1`` a text's content tokens are cut into windows of ``max_length`` (special
tokens included) whose starts advance by ``stride`` content tokens, at most ``windows`` of them
(the last window is aligned to the end of the text, so every token is covered when the cap
allows). Each window is a row for the model; :func:`pool_rows` averages (or max-pools) the
window rows of a text. ``windows = 1`` is plain truncation, token for token.

Example::

    win = encode_windows(tok, texts, max_length=256, windows=4, stride=192)
    logits = predict_logits(model, win.encoded, ...)      # one row per window
    per_text = pool_rows(logits, win.owner, len(texts), "mean")
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bedside.engine.modeling import Encoded, encode

POOLINGS = ("mean", "max")


@dataclass
class Windows:
    """Window token ids (``encoded``) and, for each window, the index of its text (``owner``)."""

    encoded: Encoded
    owner: np.ndarray
    n_texts: int

    @property
    def per_text(self) -> float:
        return len(self.owner) / max(1, self.n_texts)

    def rows_of(self, text_idx: np.ndarray) -> np.ndarray:
        """Window indices belonging to the texts ``text_idx``, in text order."""
        keep = np.isin(self.owner, text_idx)
        return np.flatnonzero(keep)


def default_stride(max_length: int, n_special: int) -> int:
    """Half a window's content: each token sits in up to two windows."""
    return max(1, (max_length - n_special) // 2)


def special_template(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after a text's content (e.g. [CLS] … [SEP])."""
    probe = "hello"
    full = list(tokenizer(probe, add_special_tokens=True)["input_ids"])
    plain = list(tokenizer(probe, add_special_tokens=False)["input_ids"])
    for p in range(len(full) - len(plain) + 1):
        if full[p : p + len(plain)] == plain:
            return full[:p], full[p + len(plain) :]
    return [], []


def window_starts(n_content: int, width: int, stride: int, cap: int) -> list[int]:
    """Start offsets of the windows over ``n_content`` tokens: every ``stride``, the last one
    flush with the end, at most ``cap`` (then spread evenly so the end is still reached)."""
    if n_content <= width:
        return [0]
    last = n_content - width
    n = 1 + math.ceil(last / stride)
    if n > cap:
        if cap == 1:
            return [0]
        return sorted({round(i * last / (cap - 1)) for i in range(cap)})
    return sorted({min(i * stride, last) for i in range(n)})


def encode_windows(
    tokenizer: Any,
    texts: Sequence[str],
    max_length: int,
    windows: int = 1,
    stride: int | None = None,
) -> Windows:
    """Tokenise once; one window per text when ``windows == 1`` (truncation), else up to
    ``windows`` overlapping windows of ``max_length`` tokens each."""
    n = len(texts)
    if windows <= 1:
        return Windows(encode(tokenizer, texts, max_length), np.arange(n, dtype=np.int64), n)
    pre, post = special_template(tokenizer)
    width = max(1, max_length - len(pre) - len(post))
    step = stride or default_stride(max_length, len(pre) + len(post))
    content = tokenizer(list(texts), add_special_tokens=False, truncation=False)["input_ids"]
    ids: list[list[int]] = []
    owner: list[int] = []
    for i, toks in enumerate(content):
        toks = list(toks)
        for s in window_starts(len(toks), width, step, windows):
            ids.append(pre + toks[s : s + width] + post)
            owner.append(i)
    return Windows(Encoded(ids), np.asarray(owner, dtype=np.int64), n)


def pool_rows(rows: np.ndarray, owner: np.ndarray, n_texts: int, how: str = "mean") -> np.ndarray:
    """(n_texts, d): the window rows of each text pooled by mean or max."""
    rows = np.asarray(rows, dtype=np.float64)
    d = rows.shape[1] if rows.ndim == 2 else 0
    if how == "max":
        out = np.full((n_texts, d), -np.inf)
        np.maximum.at(out, owner, rows)
        return np.where(np.isfinite(out), out, 0.0)
    out = np.zeros((n_texts, d))
    np.add.at(out, owner, rows)
    counts = np.bincount(owner, minlength=n_texts).reshape(-1, 1)
    return out / np.maximum(counts, 1)


def window_settings(train: dict[str, Any]) -> dict[str, Any]:
    """The windowing part of a ``[train]`` table, as stored in ``decision.json``."""
    return {
        "max_length": int(train["max_length"]),
        "windows": int(train.get("windows", 1) or 1),
        "stride": train.get("window_stride"),
        "pooling": str(train.get("window_pooling", "mean") or "mean"),
    }
