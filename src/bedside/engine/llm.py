"""Decoder LLMs in phase 1: the instruction prompt, label log-likelihoods, contextual calibration.

Each abstract is scored by the mean token log-probability of each class name after an instruction
that carries the workspace's class names and descriptions (:func:`plan_prompt`). Three choices,
each for a reason:

- **one shared prefix**: the instruction before the abstract is the same for every row, so its
  KV cache is computed once and copied into every batch; a batch then runs only its abstracts,
  left-padded *after* the prefix (the positions continue from the prefix, pads are masked out),
  and each label costs a few tokens on top of the batch's cache (cropped back after each label);
- **mean, not sum**, of a label's token log-probs, so a three-word class is not penalised
  against a one-word one;
- **contextual calibration** (Zhao et al. 2021, "Calibrate Before Use"): the same prompt with
  content-free abstracts ("N/A", "", "[MASK]") shows the model's prior over the labels;
  the calibrated distribution divides it out, ``p_cal ∝ p / p_cf``. Both are reported.

A vendor's chat template is used only when ``phase1.chat_template = true``, and only rendered
in the sandbox (:mod:`bedside.submissions.templates`).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bedside.engine.flops import FlopCounter, ModelShape
from bedside.engine.predict import autocast, softmax
from bedside.engine.progress import Progress
from bedside.errors import JobError

CONTENT_FREE = ("N/A", "", "[MASK]")
CALIBRATIONS = ("content-free", "none")
DEFAULT_PROMPT = (
    "Classify the medical abstract into exactly one of these disease categories:\n"
    "{descriptions}\n\nAbstract: {text}\n\nAnswer with the category name. Category:"
)
_SENTINEL = "\u2063BEDSIDE-TEXT\u2063"  # an invisible separator no tokenizer template produces


@dataclass
class PromptPlan:
    """Token ids around each abstract: ``prefix + text + tail`` and then one label."""

    prefix: list[int]
    tail: list[int]
    labels: list[list[int]]
    text_budget: int
    text_lead: str  # prepended to each abstract (a space the prefix did not end with)
    chat: bool = False
    rendered: str = ""  # the prompt as text, the abstract shown as {text} (for the log)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: phase 2's label-token model saves the plan it was trained with."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PromptPlan:
        try:
            plan = cls(
                prefix=[int(t) for t in d["prefix"]],
                tail=[int(t) for t in d["tail"]],
                labels=[[int(t) for t in lab] for lab in d["labels"]],
                text_budget=int(d["text_budget"]),
                text_lead=str(d["text_lead"]),
                chat=bool(d.get("chat", False)),
                rendered=str(d.get("rendered", "")),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise JobError(
                f"a saved prompt plan is malformed ({e!r}); expected the fields of PromptPlan.",
                error_class="invalid_input",
            ) from e
        if not plan.labels or any(not lab for lab in plan.labels):
            raise JobError("a saved prompt plan has an empty label.", error_class="invalid_input")
        return plan


def class_lines(names: Sequence[str], descriptions: Sequence[str]) -> str:
    return "\n".join(
        f"- {n}" if d.strip() == n else f"- {n}: {d.strip()}"
        for n, d in zip(names, descriptions, strict=True)
    )


def fill(template: str, names: Sequence[str], descriptions: Sequence[str]) -> tuple[str, str]:
    """(head, tail) around ``{text}``; plain replacement, so other braces stay as written."""
    if "{text}" not in template:
        raise JobError("phase1.prompt must contain '{text}'.", error_class="invalid_input")
    t = template.replace("{labels}", ", ".join(names))
    t = t.replace("{descriptions}", class_lines(names, descriptions))
    head, tail = t.split("{text}", 1)
    return head, tail


def plan_prompt(
    tok: Any,
    names: Sequence[str],
    descriptions: Sequence[str],
    phase1: dict[str, Any],
    max_length: int,
    chat_template: str | None = None,
) -> PromptPlan:
    """Tokenise the instruction once. Each abstract keeps its first ``max_length`` tokens, as in
    phase 2, so both phases read the same text; the instruction and a label come on top."""
    head, tail = fill(phase1.get("prompt") or DEFAULT_PROMPT, names, descriptions)

    def piece(s: str) -> list[int]:
        return list(tok(s, add_special_tokens=False)["input_ids"])

    chat = bool(phase1.get("chat_template"))
    if chat:
        if not chat_template:
            raise JobError(
                "phase1.chat_template = true, but the bundle has no chat template.",
                error_class="invalid_input",
                hint="Ship chat_template.jinja, or leave chat_template out.",
            )
        from bedside.submissions.templates import render_chat

        special = {k: str(getattr(tok, k) or "") for k in ("bos_token", "eos_token")}
        text = render_chat(
            chat_template,
            [{"role": "user", "content": f"{head}{_SENTINEL}{tail}".strip()}],
            add_generation_prompt=True,
            special=special,
        )
        if text.count(_SENTINEL) != 1:
            raise JobError(
                "the chat template did not keep the user's message intact.",
                error_class="invalid_input",
            )
        head, tail = text.split(_SENTINEL)
        bos: list[int] = []  # the template writes its own start tokens
    else:
        bos = [tok.bos_token_id] if tok.bos_token_id is not None else []
    lead = ""
    if head.endswith(" "):  # byte-level BPE glues a space to the next word: give it to the text
        head, lead = head[:-1], " "
    prefix, tail_ids = bos + piece(head), piece(tail)
    label_lead = "" if (tail.endswith((" ", "\n")) or chat) else " "
    labels = [piece(label_lead + n) for n in names]
    if any(not lab for lab in labels):
        raise JobError("a class name tokenises to nothing.", error_class="invalid_input")
    return PromptPlan(prefix, tail_ids, labels, max_length, lead, chat, head + "{text}" + tail)


def encode_texts(tok: Any, plan: PromptPlan, texts: Sequence[str]) -> list[list[int]]:
    """``text + tail`` per abstract (the shared prefix is not repeated)."""
    ids = tok(
        [plan.text_lead + t for t in texts],
        add_special_tokens=False,
        truncation=True,
        max_length=plan.text_budget,
    )["input_ids"]
    return [list(x) + plan.tail for x in ids]


def _cache_kw(model: Any) -> str:
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _cache_of(out: Any) -> Any:
    return getattr(out, "cache", None) or getattr(out, "past_key_values", None)


def label_logprobs(
    model: Any,
    prefix: list[int],
    suffixes: list[list[int]],
    labels: list[list[int]],
    pad_id: int,
    device: torch.device,
    counter: FlopCounter | None = None,
    progress: Progress | None = None,
    batch_size: int = 8,
    stage: str = "predict",
) -> np.ndarray:
    """(rows, labels): mean token log-prob of each label after ``prefix + suffix``."""
    shape = ModelShape.of(model)
    if counter is not None:
        counter.n_params = shape.n_params
    kw = _cache_kw(model)
    n_pre = len(prefix)
    lengths = np.array([len(s) for s in suffixes])
    order = np.argsort(-lengths, kind="stable")
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    scores = np.zeros((len(suffixes), len(labels)))
    if progress:
        progress.start(stage, len(batches))
    with torch.inference_mode(), autocast(device):
        shared = None
        if n_pre:
            out = model(input_ids=torch.tensor([prefix], device=device), use_cache=True)
            shared = _cache_of(out)
            if counter is not None:
                counter.add(shape.forward_flops(n_pre, n_pre), n_pre, stage)
        for b, idx in enumerate(batches):
            rows = [suffixes[i] for i in idx]
            n, width = len(rows), max(1, max(len(r) for r in rows))
            ids = torch.full((n, width), pad_id, dtype=torch.long)
            smask = torch.zeros((n, width), dtype=torch.long)
            for i, r in enumerate(rows):  # left-padded: every row ends at the same column
                if r:
                    ids[i, width - len(r) :] = torch.tensor(r)
                    smask[i, width - len(r) :] = 1
            ids, smask = ids.to(device), smask.to(device)
            pos = n_pre + (smask.cumsum(1) - 1).clamp(min=0)
            mask = torch.cat([torch.ones((n, n_pre), dtype=torch.long, device=device), smask], 1)
            extra: dict[str, Any] = {}
            if shared is not None:
                cache = copy.deepcopy(shared)
                cache.batch_repeat_interleave(n)
                extra[kw] = cache
            out = model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=pos,
                use_cache=True,
                logits_to_keep=1,
                **extra,
            )
            cache = _cache_of(out)
            first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)
            last_pos = pos[:, -1:]
            n_tok = int(smask.sum())
            flops = shape.forward_flops(n_tok, n_pre + width)
            for k, lab in enumerate(labels):
                lp = [first[:, lab[0]]]
                if len(lab) > 1:
                    cont = torch.tensor(lab[:-1], device=device).expand(n, -1)
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
                    cache.crop(-(len(lab) - 1))  # back to this batch's prompts for the next label
                    flops += shape.forward_flops(cont.numel(), n_pre + width + len(lab))
                scores[idx, k] = torch.stack(lp, 1).mean(1).cpu().numpy()
            if counter is not None:
                counter.add(flops, n_tok, stage)
            if progress:
                progress.update(b + 1, len(batches), examples=len(idx))
    return scores


def calibrate(raw: np.ndarray, p_cf: np.ndarray) -> np.ndarray:
    """``p ∝ raw / p_cf`` per row (Zhao et al. 2021, with W = diag(p_cf)^-1 and b = 0)."""
    q = raw / np.clip(p_cf, 1e-12, None)[None, :]
    return q / q.sum(axis=1, keepdims=True)


@dataclass
class ZeroShot:
    raw: np.ndarray
    calibrated: np.ndarray
    content_free: np.ndarray  # the model's label prior, averaged over the content-free inputs
    plan: PromptPlan
    info: dict[str, Any] = field(default_factory=dict)


def zero_shot(
    model: Any,
    tok: Any,
    plan: PromptPlan,
    texts: Sequence[str],
    device: torch.device,
    counter: FlopCounter | None = None,
    progress: Progress | None = None,
    batch_size: int = 8,
    stage: str = "predict",
) -> ZeroShot:
    """Raw and calibrated label distributions for every text."""
    pad = tok.pad_token_id
    cf = label_logprobs(
        model,
        plan.prefix,
        encode_texts(tok, plan, CONTENT_FREE),
        plan.labels,
        pad,
        device,
        counter,
        None,
        batch_size,
        "calibrate",
    )
    p_cf = softmax(cf).mean(0)
    scores = label_logprobs(
        model,
        plan.prefix,
        encode_texts(tok, plan, texts),
        plan.labels,
        pad,
        device,
        counter,
        progress,
        batch_size,
        stage,
    )
    raw = softmax(scores)
    return ZeroShot(raw, calibrate(raw, p_cf), p_cf, plan)


def chosen(res: ZeroShot, calibration: str) -> np.ndarray:
    """The distribution ``calibration`` names: ``content-free`` (calibrated) or ``none`` (raw)."""
    return res.calibrated if calibration == "content-free" else res.raw


def label_scores(
    model: Any,
    tok: Any,
    plan: PromptPlan,
    texts: Sequence[str],
    calibration: str,
    device: torch.device,
    counter: FlopCounter | None = None,
    progress: Progress | None = None,
    batch_size: int = 8,
    stage: str = "predict",
) -> np.ndarray:
    """(n, k) log-probabilities of the classes by label log-likelihood (:func:`zero_shot`), the
    distribution ``calibration`` names: the scores a decision rule is fitted on and applied to."""
    if len(texts) == 0:
        return np.zeros((0, len(plan.labels)))
    res = zero_shot(model, tok, plan, texts, device, counter, progress, batch_size, stage)
    return np.log(np.clip(chosen(res, calibration), 1e-300, None))


def bundle_chat_template(bundle: Path, tok: Any) -> str | None:
    f = bundle / "chat_template.jinja"
    if f.is_file() and not f.is_symlink():
        return f.read_text(encoding="utf-8")
    t = getattr(tok, "chat_template", None)
    return t if isinstance(t, str) else None


def calibration_of(manifest: dict[str, Any]) -> str:
    """``phase1.calibration`` (default ``content-free``), checked."""
    return check_calibration((manifest.get("phase1") or {}).get("calibration") or "content-free")


def check_calibration(choice: Any) -> str:
    """``choice`` if it is one of :data:`CALIBRATIONS`; a JobError otherwise."""
    if choice not in CALIBRATIONS:
        raise JobError(
            f"phase1.calibration must be one of {', '.join(CALIBRATIONS)}; found {choice!r}.",
            error_class="invalid_input",
        )
    return str(choice)


def bundle_plan(
    bundle: Path, tok: Any, classes: Sequence[dict[str, str]], manifest: dict[str, Any]
) -> PromptPlan:
    """The bundle's phase-1 prompt over the workspace classes (phase 1 and phase 2's
    label-token objective read the same one)."""
    from bedside.engine.zeroshot import class_descriptions

    p1 = manifest.get("phase1") or {}
    return plan_prompt(
        tok,
        [c["name"] for c in classes],
        class_descriptions(classes, manifest),
        p1,
        int(manifest["train"]["max_length"]),
        bundle_chat_template(bundle, tok) if p1.get("chat_template") else None,
    )


def run_phase1(
    bundle: Path,
    texts: list[str],
    classes: list[dict[str, str]],
    manifest: dict[str, Any],
    device: torch.device,
    counter: FlopCounter,
    progress: Progress,
    batch_size: int = 8,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Phase 1 for ``kind = "causal-lm"``: the calibrated (default) or raw probabilities, and
    what was measured (the content-free prior, prompt sizes) for ``compute.json``."""
    from bedside.engine.modeling import load_model, load_tokenizer

    tok = load_tokenizer(bundle, causal=True)
    model = load_model(bundle, "AutoModelForCausalLM").to(device).eval()
    choice = calibration_of(manifest)
    plan = bundle_plan(bundle, tok, classes, manifest)
    res = zero_shot(model, tok, plan, texts, device, counter, progress, batch_size)
    info = {
        "calibration": choice,
        "content_free_prior": [round(float(x), 6) for x in res.content_free],
        "prompt_prefix_tokens": len(plan.prefix),
        "prompt_tail_tokens": len(plan.tail),
        "chat_template": plan.chat,
        # argmax agreement of the two decisions (the host scores the one it is given)
        "raw_calibrated_agreement": round(
            float(np.mean(res.raw.argmax(1) == res.calibrated.argmax(1))) if len(texts) else 1.0,
            4,
        ),
    }
    return chosen(res, choice), info
