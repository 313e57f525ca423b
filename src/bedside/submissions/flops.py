"""Pre-flight compute estimates, in PFLOPs (10^15 floating-point operations).

The usual transformer rules of thumb, with N parameters and T tokens:

* inference (a forward pass) ≈ 2·N·T
* full fine-tuning ≈ 6·N·T per epoch (forward 2, backward 4: activation and weight gradients)
* LoRA ≈ 4·N·T per epoch: the backward pass still flows through the frozen weights
  (activation gradients, 2·N·T) but computes no weight gradients for them
* head-only ≈ 2·N·T once: the frozen body embeds every row a single time, the small head
  trains on cached embeddings (negligible)

Phase 1 reads the holdout once. Phase 2 trains on (1 - validation_fraction) of the train split,
scores the validation part after every epoch (2·N·T_val per epoch; head-only reuses the cache)
and predicts the holdout once at the end. Tokens per row are capped at ``max_length``; a
causal-lm's phase 1 also reads an instruction prompt (``PROMPT_TOKENS`` more per row). With
``train.windows > 1`` phase 2 reads every window of a long text (:func:`windowed_tokens`), at
training, validation and holdout prediction alike. With ``train.objective = "label-tokens"``
(a causal LM trained to write the class name, engine/labeltune.py) every training row is the
prompt, the abstract (capped at ``max_length``) and its class name (``LABEL_TOKENS``), and the
validation slice and the holdout are scored as in phase 1 (prompt on top of the capped text).

Example::

    estimate_pflops(22_700_000, manifest, [240] * 1510, [240] * 378)
    # {"phase1": 0.0041, "phase2": 0.119, "total": 0.123, ...}
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bedside.submissions.manifest import Manifest

PFLOP = 1e15
TOKENS_PER_WORD = 1.3
PROMPT_TOKENS = 64  # instruction + label list around each text, for causal-lm phase 1
SPECIAL_TOKENS = 2  # [CLS] ... [SEP] around each window's content
LABEL_TOKENS = 4  # a class name's tokens, the answer of each label-token training row
BACKWARD_FACTOR = {"full": 6.0, "lora": 4.0}

# A reference corpus the size of the bundled dev set (1,888 abstracts, ~180 words each) split
# 80/20: what `bedside check` estimates against when no workspace is at hand. Word counts are
# the deciles of the real length distribution, repeated.
REFERENCE_WORDS = (90, 115, 135, 155, 170, 190, 210, 230, 260, 315)
REFERENCE_ROWS = (1510, 378)
# What intake assumes without any corpus at all (tiny synthetic texts in tests).
SYNTHETIC_WORDS = 24


def words_to_tokens(n_words: int) -> int:
    return max(1, math.ceil(n_words * TOKENS_PER_WORD))


def token_counts(texts: Iterable[str]) -> list[int]:
    """Approximate tokens per text (words × 1.3), uncapped."""
    return [words_to_tokens(len(str(t).split())) for t in texts]


def reference_token_counts() -> tuple[list[int], list[int]]:
    """(train, holdout) token counts of the reference corpus used by ``bedside check``."""
    n_train, n_holdout = REFERENCE_ROWS
    per = [words_to_tokens(w) for w in REFERENCE_WORDS]
    return [per[i % len(per)] for i in range(n_train)], [
        per[i % len(per)] for i in range(n_holdout)
    ]


def synthetic_token_counts(n_train: int = 200, n_holdout: int = 50) -> tuple[list[int], list[int]]:
    t = words_to_tokens(SYNTHETIC_WORDS)
    return [t] * n_train, [t] * n_holdout


def _capped(counts: Sequence[int], max_length: int, extra: int = 0) -> int:
    return sum(min(int(c) + extra, max_length) for c in counts)


def window_count(n_tokens: int, max_length: int, windows: int, stride: int | None) -> int:
    """How many windows the engine cuts a text of ``n_tokens`` into (``train.windows`` is the
    cap; ``stride`` None is half a window). Mirrors ``bedside.engine.windows.window_starts``
    (two special tokens per window)."""
    width = max(1, max_length - SPECIAL_TOKENS)
    if windows <= 1 or n_tokens <= width:
        return 1
    step = stride or max(1, width // 2)
    return min(windows, 1 + math.ceil((n_tokens - width) / step))


def windowed_tokens(
    counts: Sequence[int], max_length: int, windows: int = 1, stride: int | None = None
) -> int:
    """Tokens the model reads over ``counts`` (tokens per text, uncapped): truncation to
    ``max_length`` with one window, else every window of a long text is ``max_length`` long."""
    if windows <= 1:
        return _capped(counts, max_length)
    total = 0
    for c in counts:
        n = window_count(int(c), max_length, windows, stride)
        total += min(int(c) + SPECIAL_TOKENS, max_length) if n == 1 else n * max_length
    return total


def estimate_pflops(
    n_params: int,
    manifest: Manifest | Mapping[str, Any],
    train_token_counts: Sequence[int],
    holdout_token_counts: Sequence[int],
) -> dict[str, Any]:
    """Estimated PFLOPs of phase 1, phase 2 and both, for a model of ``n_params`` parameters.

    ``manifest`` is a Manifest or its ``to_dict()``; token counts are per row, uncapped.
    """
    m = manifest.to_dict() if isinstance(manifest, Manifest) else manifest
    tr = m["train"]
    method, epochs, max_len = tr["method"], int(tr["epochs"]), int(tr["max_length"])
    vf = float(tr.get("validation_fraction", 0.1))
    n = float(n_params)
    extra = PROMPT_TOKENS if m["kind"] == "causal-lm" else 0
    n_win, stride = int(tr.get("windows", 1) or 1), tr.get("window_stride")
    t_hold = windowed_tokens(holdout_token_counts, max_len, n_win, stride)
    t_train = windowed_tokens(train_token_counts, max_len, n_win, stride)
    if tr.get("objective") == "label-tokens":  # prompt + text + label; scored as in phase 1
        t_hold = _capped(holdout_token_counts, max_len) + extra * len(holdout_token_counts)
        t_train = _capped(train_token_counts, max_len) + extra * len(train_token_counts)
        t_val = t_train * vf
        t_fit = (t_train + LABEL_TOKENS * len(train_token_counts)) * (1 - vf)
    else:
        t_fit, t_val = t_train * (1 - vf), t_train * vf
    phase1 = 2 * n * _capped(holdout_token_counts, max_len, extra)
    if method == "head-only":
        phase2 = 2 * n * (t_train + t_hold)
    else:
        phase2 = epochs * (BACKWARD_FACTOR[method] * n * t_fit + 2 * n * t_val) + 2 * n * t_hold
    return {
        "phase1": phase1 / PFLOP,
        "phase2": phase2 / PFLOP,
        "total": (phase1 + phase2) / PFLOP,
        "n_params": int(n_params),
        "method": method,
        "objective": tr.get("objective") or "classifier",
        "epochs": epochs,
        "max_length": max_len,
        "windows": n_win,
        "train_tokens": t_train,
        "holdout_tokens": t_hold,
        "train_rows": len(train_token_counts),
        "holdout_rows": len(holdout_token_counts),
    }


def _with_train(m: Mapping[str, Any], **changes: Any) -> dict[str, Any]:
    out = dict(m)
    out["train"] = {**m["train"], **changes}
    return out


def what_fits(
    n_params: int,
    manifest: Manifest | Mapping[str, Any],
    train_token_counts: Sequence[int],
    holdout_token_counts: Sequence[int],
    available: float,
) -> list[str]:
    """Recipe changes whose estimate fits within ``available`` PFLOPs, as bedside.toml lines."""
    m = manifest.to_dict() if isinstance(manifest, Manifest) else dict(manifest)
    tr = m["train"]

    def est(**changes: Any) -> float:
        return float(
            estimate_pflops(
                n_params, _with_train(m, **changes), train_token_counts, holdout_token_counts
            )["total"]
        )

    out: list[str] = []
    if tr["method"] != "head-only":
        fits = [e for e in range(int(tr["epochs"]) - 1, 0, -1) if est(epochs=e) <= available]
        if fits:
            out.append(f"train.epochs = {fits[0]} (~{est(epochs=fits[0]):.3g} PFLOPs)")
    lengths = []
    length = int(tr["max_length"]) // 2
    while length >= 16:
        lengths.append(length)
        length //= 2
    fit_len = next((ml for ml in lengths if est(max_length=ml) <= available), None)
    if fit_len is not None:
        out.append(f"train.max_length = {fit_len} (~{est(max_length=fit_len):.3g} PFLOPs)")
    for method in ("lora", "head-only"):
        if method != tr["method"] and est(method=method) <= available:
            out.append(f'train.method = "{method}" (~{est(method=method):.3g} PFLOPs)')
    return out
