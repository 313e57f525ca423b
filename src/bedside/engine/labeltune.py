"""Phase 2 for decoder LLMs with ``train.objective = "label-tokens"``: the causal LM itself is
tuned (LoRA by default, or full) to write the class name after phase 1's instruction prompt.

Each training row is ``prompt prefix + abstract + prompt tail + class name``, the very token ids
phase 1 scores (:func:`bedside.engine.llm.bundle_plan`: one prompt builder for both phases). The
loss is the mean cross-entropy of the class name's tokens only (the prompt and the abstract carry
none), averaged over rows with the class weights of ``train.class_weighting``. Rows are
left-padded so that every class name ends at the last column; only the last
``longest label + 1`` positions go through the LM head (``logits_to_keep``), so the
vocabulary-sized logits of the prompt are never formed. Gradient checkpointing and no KV cache,
as for the classifier objective (:mod:`bedside.engine.decoder`).

Prediction is phase 1's scoring (:func:`bedside.engine.llm.label_scores`): the mean label
log-likelihood of each class name, divided by the trained model's content-free prior when
``phase1.calibration = "content-free"`` (the default), then the decision rule fitted on the
validation slice only (:mod:`bedside.engine.decision`). The best epoch is the one with the best
validation macro-F1 under that scoring. ``out/model/`` holds the merged model (safetensors), its
tokenizer, ``decision.json`` and ``label_tokens.json`` (the prompt plan and the calibration),
which :func:`bedside.engine.inference.load_predictor` reads.

Example (``bedside.toml``)::

    kind = "causal-lm"
    [train]
    method = "lora"
    objective = "label-tokens"
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from bedside.contracts import ValidationReport
from bedside.engine import checkpoint as ckpt
from bedside.engine import decision, llm
from bedside.engine.dataprep import class_weights, macro_f1
from bedside.engine.decoder import prepare_for_training
from bedside.engine.federated import FederatedHooks
from bedside.engine.finetune import (
    after_epoch,
    apply_lora,
    freeze_word_embeddings,
    get_lr,
    make_optimizer,
    recipe_name,
    restore_best,
    save_model,
)
from bedside.engine.flops import ModelShape
from bedside.engine.inference import Predictor, save_label_tokens
from bedside.engine.io import JobContext, Phase2Result
from bedside.engine.modeling import load_model, load_tokenizer, train_batches
from bedside.engine.predict import autocast
from bedside.errors import JobError


def training_rows(
    plan: llm.PromptPlan, suffixes: Sequence[list[int]], y: np.ndarray
) -> tuple[list[list[int]], np.ndarray]:
    """``prefix + text + tail + class name`` per row, and the class name's length per row."""
    rows = [plan.prefix + list(s) + plan.labels[int(c)] for s, c in zip(suffixes, y, strict=True)]
    return rows, np.array([len(plan.labels[int(c)]) for c in y], dtype=np.int64)


def collate_left(
    rows: Sequence[list[int]], pad_id: int, device: torch.device | None = None
) -> dict[str, torch.Tensor]:
    """Left-pad to the longest row of the batch: every row ends (with its label) at the last
    column; positions count real tokens only, as :func:`bedside.engine.llm.label_logprobs` does."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r) :] = torch.tensor(r, dtype=torch.long)
        mask[i, width - len(r) :] = 1
    pos = (mask.cumsum(1) - 1).clamp(min=0)
    batch = {"input_ids": ids, "attention_mask": mask, "position_ids": pos}
    if device is not None and device.type != "cpu":
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    return batch


def label_token_loss(
    model: Any,
    batch: dict[str, torch.Tensor],
    label_lens: torch.Tensor,
    row_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean token cross-entropy of each row's class name (its last ``label_lens[i]`` tokens),
    averaged over rows (weighted by ``row_weight`` when given)."""
    m = int(label_lens.max())
    with autocast(batch["input_ids"].device):
        out = model(**batch, use_cache=False, logits_to_keep=m + 1)
    logits = out.logits[:, :-1].float()  # column j predicts the token of column W - m + j
    target = batch["input_ids"][:, -m:]
    valid = torch.arange(m, device=target.device)[None, :] >= (m - label_lens)[:, None]
    nll = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="none"
    ).view(target.shape)
    per_row = (nll * valid).sum(1) / label_lens.to(nll.dtype)
    if row_weight is None:
        return per_row.mean()
    return (per_row * row_weight).sum() / row_weight.sum().clamp(min=1e-12)


def run(
    ctx: JobContext,
    texts: list[str],
    y_all: np.ndarray,
    tr_idx: np.ndarray,
    va_idx: np.ndarray,
    hold_df: pd.DataFrame,
) -> Phase2Result:
    """Train on ``tr_idx``, pick the best epoch on ``va_idx``, fit the decision rule there and
    predict the holdout texts (no labels here), as :func:`bedside.engine.finetune.run` does."""
    tr = ctx.manifest["train"]
    spec, counter, progress, device = ctx.spec, ctx.counter, ctx.progress, ctx.device
    fed = FederatedHooks.of(ctx.job_dir, spec.extra)
    if fed is not None:
        raise JobError(
            'a federated round trains the classifier objective; train.objective = "label-tokens" '
            "is for a single site's phase 2.",
            error_class="invalid_input",
            hint='Use train.objective = "classifier" for federated rounds.',
        )
    names, k, bs = ctx.class_names, len(ctx.class_names), ctx.train.batch_size
    tok = load_tokenizer(ctx.bundle, causal=True)
    plan = llm.bundle_plan(ctx.bundle, tok, ctx.classes, ctx.manifest)
    calibration = llm.calibration_of(ctx.manifest)
    y_tr, y_va = y_all[tr_idx], y_all[va_idx]
    rows, lab_len = training_rows(
        plan, llm.encode_texts(tok, plan, [texts[i] for i in tr_idx]), y_tr
    )
    va_texts = [texts[i] for i in va_idx]
    ctx.log(
        f"label tokens: prompt {len(plan.prefix)} + abstract <= {plan.text_budget} + "
        f"{len(plan.tail)} tokens, class names {[len(lab) for lab in plan.labels]} tokens, "
        f"calibration {calibration}"
    )

    if getattr(ctx.train, "compile", False):
        ctx.log("compile applies to the classifier objective: label tokens train eagerly")
    torch.manual_seed(ctx.seed)
    model = load_model(ctx.bundle, "AutoModelForCausalLM")
    prepare_for_training(model)  # gradient checkpointing, no KV cache (engine/decoder.py)
    if tr["method"] == "lora":
        model = apply_lora(model, tr["lora"], task_type="CAUSAL_LM")
    recipe = recipe_name(tr["method"], ctx.train.freeze_embeddings)
    if recipe != tr["method"]:
        ctx.log(f"recipe {recipe}: {freeze_word_embeddings(model)} embedding weights frozen")
    model.to(device)
    shape = ModelShape.of(model)
    opt = make_optimizer(
        model, ctx.train.learning_rate, ctx.train.weight_decay, ctx.train.layer_lr_decay
    )
    w = class_weights(y_tr, k, tr["class_weighting"])
    row_w = None if w is None else torch.tensor(w[y_tr], dtype=torch.float32, device=device)
    lens_t = torch.as_tensor(lab_len, device=device)
    use_fp16 = device.type == "cuda" and not torch.cuda.is_bf16_supported()
    scaler = torch.amp.GradScaler("cuda", enabled=use_fp16)

    epochs = ctx.train.epochs
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    total = epochs * math.ceil(len(rows) / bs)
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
        "loss_sum": 0.0,  # this epoch's so far (a resumed epoch keeps its running mean)
        "loss_rows": 0,
    }
    schedule = ckpt.Schedule(spec.checkpoint_every, ctx.train.checkpoint_minutes)
    writer = ckpt.AsyncWriter(ctx.checkpoints, background=ctx.train.async_checkpoints)
    resumed = ckpt.latest(ctx.checkpoints)
    if resumed is not None:
        path, data = resumed
        ckpt.load_weights(model, {n: t.to(device) for n, t in data["model"].items()})
        if "optimizer" in data:
            ckpt.load_optimizer_state(opt, data["optimizer"], data["optimizer_meta"])
        ckpt.set_rng_state(data["rng"], data["state"].get("rng", {}))
        st.update({key: data["state"][key] for key in st if key in data["state"]})
        counter.load_state(data["state"].get("flops", {}))
        ctx.log(f"resumed from {path.name} (epoch {st['epoch']}, step {st['global_step']})")

    def val_scores() -> np.ndarray:
        model.eval()
        return llm.label_scores(
            model, tok, plan, va_texts, calibration, device, counter, None, bs * 2, "validate"
        )

    def evaluate() -> float | None:
        return None if len(va_idx) == 0 else macro_f1(y_va, val_scores().argmax(1), k)

    def save(val_f1: float | None, train_loss: float | None = None) -> None:
        if val_f1 is not None or train_loss is not None or len(va_idx) == 0:
            st["history"].append(
                {
                    "step": st["global_step"],
                    "epoch": st["epoch"],
                    "val_macro_f1": val_f1,
                    "train_loss": train_loss,
                }
            )
            better = val_f1 is not None and (st["best_f1"] is None or val_f1 > st["best_f1"])
            if len(va_idx) == 0 or better:
                st["best_f1"], st["best_step"] = val_f1, st["global_step"]
        state = {**st, "seed": ctx.seed, "flops": counter.state(), "config": tr}
        keep = {st["best_step"]} if st["best_step"] is not None else set()
        writer.submit(ckpt.snapshot(st["global_step"], model, opt, state), keep)
        schedule.saved()

    stopped = False
    progress.start("train", total, st["global_step"])
    while not st["finished"] and st["epoch"] < epochs:
        model.train()
        batches = train_batches(lengths, bs, ctx.seed, st["epoch"])
        for bi in range(st["step_in_epoch"], len(batches)):
            idx = batches[bi]
            batch = collate_left([rows[i] for i in idx], tok.pad_token_id, device)
            sel = torch.as_tensor(idx, device=device)
            lr = get_lr(st["global_step"], total, warmup, ctx.train.learning_rate)
            for g in opt.param_groups:
                g["lr"] = lr * float(g.get("lr_scale", 1.0))
            loss = label_token_loss(
                model, batch, lens_t[sel], None if row_w is None else row_w[sel]
            )
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(opt)
            scaler.update()
            opt.zero_grad(set_to_none=True)
            tokens = int(batch["attention_mask"].sum())  # prompt, abstract and label tokens
            counter.add(shape.train_flops(tokens, batch["input_ids"].shape[1]), tokens, "train")
            st["loss_sum"] += float(loss.item()) * len(idx)
            st["loss_rows"] += len(idx)
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
        epoch_loss = st["loss_sum"] / max(1, st["loss_rows"])
        st["epoch"] += 1
        st["step_in_epoch"], st["loss_sum"], st["loss_rows"] = 0, 0.0, 0
        f1 = evaluate()
        after_epoch(st, f1, ctx.train.early_stopping_patience, epochs)
        save(f1, epoch_loss)
        progress.update(st["global_step"], total, epoch=st["epoch"], val_macro_f1=f1, force=True)
        ctx.log(
            f"epoch {st['epoch']}: step {st['global_step']}, label-token loss {epoch_loss:.4f}, "
            f"validation macro-F1 {f1}"
        )
    if stopped:
        ctx.log(f"compute budget reached at step {st['global_step']} ({counter.flops:.3g} FLOPs)")
        st["finished"] = True
        save(evaluate())

    restore_best(ctx, st, model, writer, device)
    # The decision rule sees the best model's validation scores only; the holdout has no labels
    # here and never reaches the fit.
    lv = val_scores() if len(va_idx) else np.zeros((0, k))
    rule = decision.fit(lv, y_va, names, ctx.train.decision_rule)
    settings = {"max_length": plan.text_budget, "windows": 1, "stride": None, "pooling": "mean"}
    rule.windows = settings
    model.eval()
    predictor = Predictor(
        model, tok, rule, device, bs * 2, settings, plan=plan, calibration=calibration
    )
    probs = predictor.predict_proba(hold_df["text"].tolist(), counter, progress)
    writer.wait()
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    model.config.use_cache = True  # the saved model generates and scores with a cache
    dest = save_model(ctx, model, tok, tr["method"])
    rule.save(dest)
    save_label_tokens(dest, plan, calibration)
    history = [h for h in st["history"] if h.get("train_loss") is not None]
    curve = [h for h in history if h.get("val_macro_f1") is not None]
    best_epoch = next((h["epoch"] for h in history if h["step"] == st["best_step"]), None)
    info = {
        "best_step": st["best_step"],
        "best_val_macro_f1": st["best_f1"],
        "steps": st["global_step"],
        "n_params": shape.n_params,
        "n_trainable": n_trainable,
        "recipe": f"{recipe}+label-tokens",
        "objective": "label-tokens",
        "calibration": calibration,
        "train_loss_by_epoch": [round(float(h["train_loss"]), 6) for h in history],
        "prompt_prefix_tokens": len(plan.prefix),
        "prompt_tail_tokens": len(plan.tail),
        "checkpoint_wait_s": round(writer.seconds_blocked, 3),
        "validation": ValidationReport(
            macro_f1_raw=rule.macro_f1_raw,
            macro_f1_adjusted=rule.macro_f1_adjusted,
            decision_rule=rule.rule,
            offsets=list(rule.offsets),
            epochs_run=int(st["epoch"]),
            best_epoch=best_epoch,
            curve=[float(h["val_macro_f1"]) for h in curve],
            n_validation=len(va_idx),
            windows_per_text=1.0,
        ),
    }
    return Phase2Result(probs, hold_df["row_id"].tolist(), stopped, info)
