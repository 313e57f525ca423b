"""Phase 2: fine-tune on the training split (``full`` or ``lora``; ``head-only`` lives in
:mod:`bedside.engine.headonly`), pick the best epoch on a validation slice, predict the holdout.

The loop reads top to bottom. Speed choices, each for a reason:

- texts are tokenised once, and batches are padded to their own longest row (dynamic padding)
  after sorting by length inside mega-batches: on abstracts this removes most pad tokens, which
  a pad-to-max_length recipe pays for in every matmul;
- AdamW with ``foreach`` (one fused kernel per parameter group, not one per tensor) and
  ``set_to_none`` gradients (no memset per step);
- the learning rate is a pure function of the step (:func:`get_lr`), so resuming needs no
  scheduler state;
- checkpoints are copied to fresh CPU tensors between steps and written by a background thread
  (:class:`bedside.engine.checkpoint.AsyncWriter`), every N steps or every N minutes
  (``checkpoint_minutes``), so training does not wait on serialising and fsyncing them;
- ``freeze_embeddings`` (its own recipe): the word-embedding table gets no gradient and no AdamW
  state;
- ``compile`` (off by default, :mod:`bedside.engine.compiled`): the training graph through
  ``torch.compile``, batches padded up to at most eight widths chosen to keep padding under 3 %,
  so it compiles once per width; the pad fraction of every job is in ``compute.json``;
- fp32 on CPU (no bf16 hardware there: 5x slower), mixed precision on a GPU.

Determinism: the batch order is a pure function of ``(seed, epoch)``; checkpoints carry the
weights, optimiser moments and RNG state, so a killed-and-resumed run replays the same steps.
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bedside.contracts import ValidationReport
from bedside.engine import checkpoint as ckpt
from bedside.engine import decision
from bedside.engine.dataprep import class_weights, label_ids, macro_f1, split_validation
from bedside.engine.federated import FederatedHooks, PrivateTraining, export
from bedside.engine.flops import ModelShape
from bedside.engine.inference import Predictor, window_logits
from bedside.engine.io import JobContext, Phase2Result, read_texts
from bedside.engine.lexical import job_lexical
from bedside.engine.modeling import (
    Encoded,
    bucket_widths,
    collate,
    load_model,
    load_tokenizer,
    lora_targets,
    train_batches,
)
from bedside.engine.predict import autocast
from bedside.engine.windows import Windows, encode_windows, window_settings
from bedside.engine.zeroshot import label_map


def get_lr(step: int, total: int, warmup: int, base: float) -> float:
    """Linear warmup to ``base`` over ``warmup`` steps, then linear decay to 0 at ``total``."""
    if warmup > 0 and step < warmup:
        return base * (step + 1) / warmup
    return base * max(0.0, (total - step) / max(1, total - warmup))


def build_model(ctx: JobContext, pad_id: int) -> Any:
    """A ``*ForSequenceClassification`` over the workspace classes, head seeded by ``ctx.seed``."""
    names = ctx.class_names
    torch.manual_seed(ctx.seed)  # the new head's init is part of the run's determinism
    labels = {"id2label": dict(enumerate(names)), "label2id": {n: i for i, n in enumerate(names)}}
    if ctx.spec.model_kind == "classifier":
        model = load_model(ctx.bundle, "AutoModelForSequenceClassification")
        remap_head(model, ctx.manifest.get("labels") or {}, names)
        model.config.id2label, model.config.label2id = labels["id2label"], labels["label2id"]
    else:
        model = load_model(
            ctx.bundle, "AutoModelForSequenceClassification", num_labels=len(names), **labels
        )
    model.config.pad_token_id = pad_id  # decoder heads find the last real token through it
    return model


def remap_head(model: Any, mapping: dict[str, str], names: list[str]) -> None:
    """Reorder the checkpoint's output rows to the workspace classes when every class has exactly
    one checkpoint label; otherwise start a fresh output layer."""
    old_k = int(model.config.num_labels)
    parent, attr, lin = None, "", None
    for mod in model.modules():
        for child_name, child in mod.named_children():
            if isinstance(child, torch.nn.Linear) and child.out_features == old_k:
                parent, attr, lin = mod, child_name, child
    if lin is None or parent is None:
        raise ValueError("could not find the classification layer of the checkpoint")
    id2label = {int(k): str(v) for k, v in model.config.id2label.items()}
    try:
        m = label_map(id2label, mapping, names)
    except Exception:
        m = np.zeros((old_k, len(names)))
    new = torch.nn.Linear(lin.in_features, len(names), bias=lin.bias is not None)
    if (m.sum(0) == 1).all():
        src = torch.as_tensor(m.argmax(0))
        with torch.no_grad():
            new.weight.copy_(lin.weight[src])
            if lin.bias is not None:
                new.bias.copy_(lin.bias[src])
    setattr(parent, attr, new)
    model.config.num_labels = len(names)


def apply_lora(model: Any, lora: dict[str, Any], task_type: str = "SEQ_CLS") -> Any:
    """LoRA adapters on the attention projections; ``task_type`` is peft's (``SEQ_CLS`` for a
    classification head, ``CAUSAL_LM`` for engine/labeltune.py's label-token objective)."""
    from peft import LoraConfig, TaskType, get_peft_model

    cfg = LoraConfig(
        task_type=TaskType[task_type],
        r=int(lora["r"]),
        lora_alpha=int(lora["alpha"]),
        lora_dropout=float(lora["dropout"]),
        target_modules=lora_targets(model, lora.get("target_modules")),
    )
    return get_peft_model(model, cfg)


_LAYER_RE = re.compile(r"(?:^|\.)(?:layer|layers|h|block|blocks)\.(\d+)\.")


def layer_depth(name: str, n_layers: int) -> int:
    """0 for embeddings, i + 1 for transformer block i, ``n_layers + 1`` for everything above
    (pooler, classification head)."""
    m = _LAYER_RE.search(name)
    if m:
        return int(m.group(1)) + 1
    if "embed" in name or ".wte." in name or ".wpe." in name:
        return 0
    return n_layers + 1


def make_optimizer(
    model: Any, lr: float, weight_decay: float, layer_decay: float = 1.0
) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases and norms; with ``layer_decay < 1`` block i learns at
    ``lr * layer_decay ** (L + 1 - depth)`` (layer-wise LR decay: the pretrained bottom layers
    move least). Each group carries its ``lr_scale`` so :func:`get_lr` stays the one schedule."""
    n_layers = int(getattr(getattr(model, "config", None), "num_hidden_layers", 0) or 0)
    groups: dict[tuple[int, bool], list[torch.nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            depth = layer_depth(name, n_layers) if layer_decay < 1.0 else n_layers + 1
            groups.setdefault((depth, p.ndim < 2), []).append(p)
    param_groups = [
        {
            "params": params,
            "weight_decay": 0.0 if no_decay else weight_decay,
            "lr_scale": layer_decay ** (n_layers + 1 - depth),
        }
        for (depth, no_decay), params in sorted(groups.items())
    ]
    return torch.optim.AdamW(param_groups, lr=lr, foreach=True, fused=False)


def freeze_word_embeddings(model: Any) -> int:
    """Stop gradients to the word-embedding table (position/type embeddings and the embedding
    LayerNorm still train); returns how many parameters were frozen. The table is a lookup, so
    the FLOPs per step barely move (:mod:`bedside.engine.flops` never counted it), but its
    gradient scatter, clipping and AdamW update (vocab x d, a third of MiniLM) go."""
    emb = model.get_input_embeddings()
    emb.weight.requires_grad_(False)
    return int(emb.weight.numel())


def recipe_name(method: str, freeze_embeddings: bool) -> str:
    return f"{method}+frozen-embeddings" if freeze_embeddings and method == "full" else method


def subset(enc: Encoded, idx: np.ndarray) -> Encoded:
    return Encoded([enc.ids[i] for i in idx])


def after_epoch(st: dict[str, Any], f1: float | None, patience: int, epochs: int) -> None:
    """Early stopping after an epoch's validation (before ``st`` records ``f1`` as the best):
    count epochs without a better macro-F1; finished after ``patience`` of them or ``epochs``."""
    improved = f1 is not None and (st["best_f1"] is None or f1 > st["best_f1"])
    st["bad_epochs"] = 0 if improved or f1 is None else st["bad_epochs"] + 1
    if st["bad_epochs"] > patience or st["epoch"] >= epochs:
        st["finished"] = True


def restore_best(
    ctx: JobContext, st: dict[str, Any], model: Any, writer: Any, device: torch.device
) -> None:
    """Load the best epoch's weights. When the best is the newest checkpoint the model already
    holds them: no reload, and its write (still in flight) overlaps what the job does next."""
    if st["best_step"] is None or st["best_step"] == st["global_step"]:
        return
    writer.wait()
    best = ctx.checkpoints / f"checkpoint-{st['best_step']}"
    if ckpt.is_complete(best):
        best_w = ckpt.load(best)["model"]
        ckpt.load_weights(model, {n: t.to(device) for n, t in best_w.items()})


def run(ctx: JobContext) -> Phase2Result:
    tr = ctx.manifest["train"]
    spec, counter, progress, device = ctx.spec, ctx.counter, ctx.progress, ctx.device
    train_df = read_texts(spec.path(ctx.job_dir, "train"), need_label=True)
    hold_df = read_texts(spec.path(ctx.job_dir, "holdout_texts"))
    k = len(ctx.class_names)
    y_all = label_ids(train_df["label"], ctx.class_names)
    texts = train_df["text"].tolist()
    tr_idx, va_idx = split_validation(texts, y_all, ctx.train.validation_fraction, ctx.seed)
    ctx.log(
        f"phase2 {tr['method']}: {len(tr_idx)} train, {len(va_idx)} validation, {len(hold_df)} holdout"
    )
    if tr["method"] == "head-only":
        from bedside.engine import headonly

        return headonly.run(ctx, texts, y_all, tr_idx, va_idx, hold_df)
    if ctx.train.objective == "label-tokens":  # a causal LM trained to write the class name
        from bedside.engine import labeltune

        return labeltune.run(ctx, texts, y_all, tr_idx, va_idx, hold_df)

    tok = load_tokenizer(ctx.bundle, causal=spec.model_kind == "causal-lm")
    settings = window_settings(tr)
    bs = ctx.train.batch_size
    win = encode_windows(  # tokenise once; a window is a training row with its text's label
        tok, texts, settings["max_length"], settings["windows"], settings["stride"]
    )
    tr_rows, va_rows = win.rows_of(tr_idx), win.rows_of(va_idx)
    enc_tr = subset(win.encoded, tr_rows)
    y_tr, y_va = y_all[win.owner[tr_rows]], y_all[va_idx]
    va_win = Windows(
        subset(win.encoded, va_rows), np.searchsorted(va_idx, win.owner[va_rows]), len(va_idx)
    )
    va_texts = [texts[i] for i in va_idx]

    model = build_model(ctx, tok.pad_token_id)
    if spec.model_kind == "causal-lm":  # gradient checkpointing, no KV cache (engine/decoder.py)
        from bedside.engine.decoder import prepare_for_training

        prepare_for_training(model)
    if tr["method"] == "lora":
        model = apply_lora(model, tr["lora"])
    recipe = recipe_name(tr["method"], ctx.train.freeze_embeddings)
    if recipe != tr["method"]:
        ctx.log(f"recipe {recipe}: {freeze_word_embeddings(model)} embedding weights frozen")
    model.to(device)
    # A federated round (engine/federated.py): start from the global weights, maybe add FedProx's
    # proximal term and DP-SGD; a plain phase-2 job has fed = None and runs as before.
    fed = FederatedHooks.of(ctx.job_dir, spec.extra)
    anchor = fed.load_init(model) if fed is not None else None
    shape = ModelShape.of(model)
    opt = make_optimizer(
        model,
        ctx.train.learning_rate,
        ctx.train.weight_decay,
        ctx.train.layer_lr_decay,
    )
    private = PrivateTraining(model, opt, fed.dp, bs) if fed is not None and fed.dp else None
    fwd = private.module if private is not None else model
    compiled = None
    if ctx.train.compile and private is not None:
        ctx.log("compile is off for this DP-SGD round (per-example gradient hooks run eagerly)")
    elif ctx.train.compile:  # bounded shapes: batches padded to a few widths (engine/compiled.py)
        from bedside.engine.compiled import CompiledTraining

        widths = bucket_widths(enc_tr.lengths, bs, ctx.seed)
        compiled = CompiledTraining(model, widths, bs)
        fwd = compiled.module
        ctx.log(f"torch.compile: training batches padded to widths {compiled.widths}")
    real_tokens = padded_tokens = 0  # the pad fraction of the training batches, for compute.json
    step_opt = private.optimizer if private is not None else opt
    w = class_weights(y_all[tr_idx], k, tr["class_weighting"])  # per text, not per window
    weight = None if w is None else torch.tensor(w, dtype=torch.float32, device=device)
    smoothing = ctx.train.label_smoothing
    use_fp16 = device.type == "cuda" and not torch.cuda.is_bf16_supported()
    scaler = torch.amp.GradScaler("cuda", enabled=use_fp16)

    epochs, lengths = ctx.train.epochs, enc_tr.lengths
    if fed is not None and not fed.train:
        epochs = 0  # score the given weights only
    steps_per_epoch = math.ceil(len(tr_rows) / bs)
    if private is not None:
        steps_per_epoch = max(1, round(1.0 / private.dp.sample_rate))
    total = epochs * steps_per_epoch
    warmup = int(ctx.train.warmup_ratio * total)
    st: dict[str, Any] = {
        "epoch": 0,
        "step_in_epoch": 0,
        "global_step": 0,
        "best_step": None,
        "best_f1": None,
        "bad_epochs": 0,
        "finished": False,
        "history": [],
    }
    schedule = ckpt.Schedule(spec.checkpoint_every, ctx.train.checkpoint_minutes)
    writer = ckpt.AsyncWriter(ctx.checkpoints, background=ctx.train.async_checkpoints)
    resumed = ckpt.latest(ctx.checkpoints)
    if resumed is not None:
        path, data = resumed
        ckpt.load_weights(model, {n: t.to(device) for n, t in data["model"].items()})
        if "optimizer" in data:
            ckpt.load_optimizer_state(opt, data["optimizer"], data["optimizer_meta"])
        else:  # only the newest keeps its moments; an older one resumes with fresh ones
            ctx.log(f"{path.name} has no optimiser state: AdamW restarts from zero moments")
        ckpt.set_rng_state(data["rng"], data["state"].get("rng", {}))
        st.update({key: data["state"][key] for key in st if key in data["state"]})
        counter.load_state(data["state"].get("flops", {}))
        ctx.log(f"resumed from {path.name} (epoch {st['epoch']}, step {st['global_step']})")

    def val_logits() -> np.ndarray:
        return window_logits(
            model, tok, va_texts, settings, device, bs * 2, counter, None, "validate", va_win
        )

    def evaluate() -> float | None:
        if len(va_idx) == 0:
            return None
        return macro_f1(y_va, val_logits().argmax(1), k)

    def save(val_f1: float | None) -> None:
        if val_f1 is not None or len(va_idx) == 0:
            st["history"].append(
                {"step": st["global_step"], "epoch": st["epoch"], "val_macro_f1": val_f1}
            )
            if len(va_idx) == 0 or st["best_f1"] is None or val_f1 > st["best_f1"]:  # type: ignore[operator]
                st["best_f1"], st["best_step"] = val_f1, st["global_step"]
        state = {**st, "seed": ctx.seed, "flops": counter.state(), "config": tr}
        keep = {st["best_step"]} if st["best_step"] is not None else set()
        writer.submit(ckpt.snapshot(st["global_step"], model, opt, state), keep)
        schedule.saved()

    stopped = False
    progress.start("train", total, st["global_step"])
    while not st["finished"] and st["epoch"] < epochs:
        model.train()
        if private is not None:
            batches = private.batches(len(tr_rows))
        else:
            batches = train_batches(lengths, bs, ctx.seed, st["epoch"])
        for bi in range(st["step_in_epoch"], len(batches)):
            idx = batches[bi]
            if len(idx) == 0:  # a Poisson draw may be empty: a step of the accountant all the same
                st["global_step"] += 1
                st["step_in_epoch"] = bi + 1
                continue
            rows = [enc_tr.ids[i] for i in idx]
            new_shape = False
            if compiled is not None:
                batch, new_shape = compiled.collate(rows, tok.pad_token_id, device)
            else:
                batch = collate(rows, tok.pad_token_id, device)
            t_step = time.perf_counter()
            target = torch.as_tensor(y_tr[idx], device=device)
            lr = get_lr(st["global_step"], total, warmup, ctx.train.learning_rate)
            for g in opt.param_groups:
                g["lr"] = lr * float(g.get("lr_scale", 1.0))
            with autocast(device):
                logits = fwd(**batch).logits[: len(idx)]  # without a compiled batch's fill
            loss = torch.nn.functional.cross_entropy(
                logits.float(), target, weight=weight, label_smoothing=smoothing
            )
            if fed is not None:
                loss = loss + fed.proximal(model, anchor)
            scaler.scale(loss).backward()
            scaler.unscale_(step_opt)
            if private is None:  # DP-SGD clips each example's gradient instead
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(step_opt)
            scaler.update()
            step_opt.zero_grad(set_to_none=True)
            if new_shape and compiled is not None:  # this step compiled its graphs
                compiled.compile_steps_s += time.perf_counter() - t_step
            tokens = int(batch["attention_mask"][: len(idx)].sum())
            real_tokens += tokens
            padded_tokens += int(batch["input_ids"].numel())
            counter.add(shape.train_flops(tokens, batch["input_ids"].shape[1]), tokens, "train")
            st["global_step"] += 1
            st["step_in_epoch"] = bi + 1
            progress.update(
                st["global_step"], total, examples=len(idx), loss=loss.item(), epoch=st["epoch"]
            )
            if counter.exhausted:
                stopped = True
                break
            if schedule.due(st["global_step"]) and bi + 1 < len(batches):
                save(None)
        if stopped:
            break
        st["epoch"] += 1
        st["step_in_epoch"] = 0
        f1 = evaluate()
        after_epoch(st, f1, ctx.train.early_stopping_patience, epochs)
        save(f1)
        progress.update(st["global_step"], total, epoch=st["epoch"], val_macro_f1=f1, force=True)
        ctx.log(f"epoch {st['epoch']}: step {st['global_step']}, validation macro-F1 {f1}")
    if stopped:
        ctx.log(f"compute budget reached at step {st['global_step']} ({counter.flops:.3g} FLOPs)")
        st["finished"] = True
        save(evaluate())

    if private is not None:
        private.close()
    # A federated round hands back its last weights (what FedAvg averages), not the best epoch.
    if fed is None:
        restore_best(ctx, st, model, writer, device)
    # The decision rule sees the best model's validation scores only; the holdout has no labels
    # here and never reaches the fit.
    lv = val_logits() if len(va_idx) else np.zeros((0, k))
    # lexical_blend: a TF-IDF model fitted here on the same rows joins the scores (not in a
    # federated round, which hands back weights only).
    blend_w = ctx.train.lexical_blend if fed is None else 0.0
    every = np.arange(len(texts))  # the lexical model for the holdout learns from every row
    lv, lex = job_lexical(texts, y_all, tr_idx, va_idx, every, lv, blend_w, k, ctx.seed)
    rule = decision.fit(lv, y_va, ctx.class_names, ctx.train.decision_rule)
    rule.windows = settings
    rule.lexical_blend = blend_w if lex is not None else 0.0
    predictor = Predictor(
        model,
        tok,
        rule,
        device,
        batch_size=bs * 2,
        settings=settings,
        lexical=lex,
        lexical_weight=rule.lexical_blend,
    )
    probs = predictor.predict_proba(hold_df["text"].tolist(), counter, progress)
    writer.wait()  # every checkpoint on disk before the job reports done
    # counted before save_model: merging LoRA adapters leaves only the head trainable
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if fed is not None:  # the round's update, not a deployable model
        export(
            ctx.out,
            model,
            {"examples": len(tr_idx), "steps": st["global_step"], "epochs": int(st["epoch"])},
        )
    else:
        dest = save_model(ctx, model, tok, tr["method"])
        rule.save(dest)
        if lex is not None:
            lex.save(dest)
    history = [h for h in st["history"] if h.get("val_macro_f1") is not None]
    best_epoch = next((h["epoch"] for h in history if h["step"] == st["best_step"]), None)
    info = {
        "best_step": st["best_step"],
        "best_val_macro_f1": st["best_f1"],
        "steps": st["global_step"],
        "n_params": shape.n_params,
        "n_trainable": n_trainable,
        "recipe": recipe,
        "lexical_blend": rule.lexical_blend,
        "checkpoint_wait_s": round(writer.seconds_blocked, 3),
        "train_pad_fraction": round(1 - real_tokens / padded_tokens, 4) if padded_tokens else None,
        "compile": compiled.info() if compiled is not None else None,
        "validation": ValidationReport(
            macro_f1_raw=rule.macro_f1_raw,
            macro_f1_adjusted=rule.macro_f1_adjusted,
            decision_rule=rule.rule,
            offsets=list(rule.offsets),
            epochs_run=int(st["epoch"]),
            best_epoch=best_epoch,
            curve=[float(h["val_macro_f1"]) for h in history],
            n_validation=len(va_idx),
            windows_per_text=round(win.per_text, 3),
        ),
    }
    return Phase2Result(probs, hold_df["row_id"].tolist(), stopped, info)


def save_model(ctx: JobContext, model: Any, tok: Any, method: str) -> Path:
    """``out/model/``: a plain HF model (LoRA adapters merged into the weights, so it loads with
    AutoModelForSequenceClassification and no peft), safetensors only."""
    dest = ctx.out / "model"
    if method == "lora":
        model = model.merge_and_unload()
    model.save_pretrained(dest, safe_serialization=True)
    tok.save_pretrained(dest)
    return dest
