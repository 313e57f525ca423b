"""Phase 2 ``head-only``: a frozen encoder, a logistic-regression head on its embeddings.

The expensive part (one forward pass per text) happens once: embeddings are cached in
``checkpoints/embeddings/`` (safetensors, COMPLETE marker) so a restarted job skips it. The
regularisation strength C is picked on the validation slice by macro-F1, then the head is refit
on all training rows. ``out/model/`` holds the head (``head.safetensors``: coef, intercept,
feature mean and scale) and ``head.json``; the encoder is the unchanged bundle.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from bedside.engine.checkpoint import is_complete
from bedside.engine.dataprep import macro_f1
from bedside.engine.io import JobContext, Phase2Result, atomic_write
from bedside.engine.modeling import Encoded, bundle_pooling, encode, load_model, load_tokenizer
from bedside.engine.predict import embed

C_GRID = (0.1, 1.0, 10.0)
CHUNK = 64  # rows embedded between budget checks


def _embed_all(
    ctx: JobContext, model: Any, enc: Encoded, pad: int, pooling: str, stage: str
) -> tuple[np.ndarray, bool]:
    """Embeddings in chunks, stopping early (and saying so) when the budget runs out."""
    parts, n = [], len(enc.ids)
    ctx.progress.start(stage, n)
    for s in range(0, n, CHUNK):
        sub = Encoded(enc.ids[s : s + CHUNK])
        parts.append(embed(model, sub, pad, ctx.device, pooling, counter=ctx.counter, stage=stage))
        ctx.progress.update(min(s + CHUNK, n), n, examples=len(sub.ids))
        if stage == "embed-train" and ctx.counter.exhausted and s + CHUNK < n:
            return np.concatenate(parts), True
    return (np.concatenate(parts) if parts else np.zeros((0, 0))), False


def _cached(ctx: JobContext, key: dict[str, Any]) -> np.ndarray | None:
    d = ctx.checkpoints / "embeddings"
    if not is_complete(d):
        return None
    try:
        if json.loads((d / "key.json").read_text()) != key:
            return None
        return load_file(str(d / "train.safetensors"))["x"].numpy()
    except Exception:
        return None


def _store(ctx: JobContext, key: dict[str, Any], x: np.ndarray, flops: dict[str, Any]) -> None:
    ctx.checkpoints.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=ctx.checkpoints, prefix=".tmp-embeddings-")
    save_file(
        {"x": torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))},
        os.path.join(tmp, "train.safetensors"),
    )
    with open(os.path.join(tmp, "key.json"), "w") as fh:
        json.dump({**key}, fh)
    with open(os.path.join(tmp, "flops.json"), "w") as fh:
        json.dump(flops, fh)
    for name in os.listdir(tmp):
        with open(os.path.join(tmp, name), "rb") as fh:
            os.fsync(fh.fileno())
    final = ctx.checkpoints / "embeddings"
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    sizes = {n: (final / n).stat().st_size for n in ("train.safetensors", "key.json", "flops.json")}
    atomic_write(final / "COMPLETE", json.dumps(sizes))


def _fit(x: np.ndarray, y: np.ndarray, c: float, balanced: bool, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(
        C=c, max_iter=3000, class_weight="balanced" if balanced else None, random_state=seed
    )
    return lr.fit(x, y)


def run(
    ctx: JobContext,
    texts: list[str],
    y: np.ndarray,
    tr_idx: np.ndarray,
    va_idx: np.ndarray,
    hold_df: pd.DataFrame,
) -> Phase2Result:
    tr = ctx.manifest["train"]
    k = len(ctx.class_names)
    tok = load_tokenizer(ctx.bundle, causal=ctx.spec.model_kind == "causal-lm")
    model = load_model(ctx.bundle, "AutoModel").to(ctx.device)
    pooling = bundle_pooling(ctx.bundle, ctx.manifest["phase1"].get("pooling"))
    max_len, pad = int(tr["max_length"]), tok.pad_token_id
    key = {"n": len(texts), "max_length": max_len, "pooling": pooling}
    x_all = _cached(ctx, key)
    stopped = False
    if x_all is None:
        x_all, stopped = _embed_all(
            ctx, model, encode(tok, texts, max_len), pad, pooling, "embed-train"
        )
        if not stopped:
            _store(ctx, key, x_all, ctx.counter.state())
    else:
        ctx.counter.load_state(
            json.loads((ctx.checkpoints / "embeddings" / "flops.json").read_text())
        )
        ctx.log("train embeddings loaded from checkpoints/embeddings")
    n_done = len(x_all)  # fewer than len(texts) only when the budget ran out mid-way
    tr_idx, va_idx = tr_idx[tr_idx < n_done], va_idx[va_idx < n_done]
    mean, scale = x_all.mean(0), x_all.std(0) + 1e-6
    z = (x_all - mean) / scale
    balanced = tr["class_weighting"] == "balanced"
    best_c, best_f1 = 1.0, None
    if len(va_idx) and len(set(y[tr_idx])) > 1:
        for c in C_GRID:
            f1 = macro_f1(
                y[va_idx], _fit(z[tr_idx], y[tr_idx], c, balanced, ctx.seed).predict(z[va_idx]), k
            )
            if best_f1 is None or f1 > best_f1:
                best_c, best_f1 = c, f1
        ctx.log(f"head-only: C={best_c} (validation macro-F1 {best_f1:.4f})")
    fit_idx = np.arange(n_done)
    if len(set(y[fit_idx])) < 2:
        probs_cols = np.full((len(hold_df), k), 1.0 / k)
        head = None
    else:
        head = _fit(z[fit_idx], y[fit_idx], best_c, balanced, ctx.seed)
        x_hold, _ = _embed_all(
            ctx, model, encode(tok, hold_df["text"].tolist(), max_len), pad, pooling, "predict"
        )
        p = head.predict_proba((x_hold - mean) / scale)
        probs_cols = np.zeros((len(hold_df), k))
        probs_cols[:, head.classes_] = p
    if head is not None:
        dest = ctx.out / "model"
        dest.mkdir(parents=True, exist_ok=True)
        coef = np.zeros((k, z.shape[1]), dtype=np.float32)
        icpt = np.zeros(k, dtype=np.float32)
        if len(head.classes_) == 2:  # sklearn keeps one row for a binary problem
            coef[head.classes_[1]], icpt[head.classes_[1]] = head.coef_[0], head.intercept_[0]
        else:
            coef[head.classes_], icpt[head.classes_] = head.coef_, head.intercept_
        tensors = {
            "coef": coef,
            "intercept": icpt,
            "mean": mean.astype(np.float32),
            "scale": scale.astype(np.float32),
        }
        save_file(
            {n: torch.from_numpy(np.ascontiguousarray(v)) for n, v in tensors.items()},
            str(dest / "head.safetensors"),
        )
        atomic_write(
            dest / "head.json",
            json.dumps(
                {
                    "pooling": pooling,
                    "max_length": max_len,
                    "classes": ctx.class_names,
                    "C": best_c,
                    "encoder": "the submitted bundle, unchanged",
                    "score": "softmax(((normalize(pool(x)) - mean) / scale) @ coef.T + intercept)",
                },
                indent=1,
            ),
        )
    info = {
        "best_val_macro_f1": best_f1,
        "C": best_c,
        "n_embedded": n_done,
        "n_params": sum(p.numel() for p in model.parameters()),
        "n_trainable": k * (z.shape[1] + 1),
    }
    return Phase2Result(probs_cols, hold_df["row_id"].tolist(), stopped, info)
