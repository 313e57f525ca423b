"""Running a saved phase-2 model: the one way to score texts with ``out/model/``.

``load_predictor(model_dir, bundle_dir)`` reads ``out/model/decision.json`` (decision rule and
window settings) and either a plain ``*ForSequenceClassification`` model saved in ``model_dir``
(full fine-tuning, or LoRA with the adapters merged), a head-only model (``head.safetensors``
over the unchanged encoder in ``bundle_dir``) or a label-token causal LM (``label_tokens.json``
beside the merged ``*ForCausalLM``: the prompt plan it was trained with, scored by label
log-likelihood as in phase 1, :mod:`bedside.engine.labeltune`). ``Predictor.predict_proba(texts)``
cuts each text into the same windows as at training, pools the window scores per text and
applies the rule. Phase 2's holdout prediction and screening both go through it.

Example::

    pred = load_predictor(job_dir / "out" / "model", job_dir / "bundle")
    probs = pred.predict_proba(["an abstract", "another one"])   # (2, n_classes), rows sum to 1
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bedside.engine.decision import DecisionRule
from bedside.engine.flops import FlopCounter
from bedside.engine.lexical import LexicalModel, blend
from bedside.engine.llm import PromptPlan, check_calibration, label_scores
from bedside.engine.modeling import load_model, load_tokenizer
from bedside.engine.predict import embed, predict_logits
from bedside.engine.progress import Progress
from bedside.engine.windows import Windows, encode_windows, pool_rows
from bedside.errors import JobError

HEAD_TENSORS = ("coef", "intercept", "mean", "scale")
LABEL_TOKENS_FILE = "label_tokens.json"  # marks a label-token model (engine/labeltune.py)


def full_settings(win: dict[str, Any], max_length: int) -> dict[str, Any]:
    """Window settings with every key filled in (a rule saved without windows: truncation)."""
    return {
        "max_length": int(win.get("max_length") or max_length),
        "windows": int(win.get("windows") or 1),
        "stride": win.get("stride"),
        "pooling": str(win.get("pooling") or "mean"),
    }


def window_logits(
    model: Any,
    tok: Any,
    texts: list[str],
    settings: dict[str, Any],
    device: torch.device,
    batch_size: int = 32,
    counter: FlopCounter | None = None,
    progress: Progress | None = None,
    stage: str = "predict",
    windows: Windows | None = None,
) -> np.ndarray:
    """(n_texts, k): a classifier's window logits pooled per text (``windows``: pre-encoded)."""
    w = windows or encode_windows(
        tok, texts, settings["max_length"], settings["windows"], settings["stride"]
    )
    if w.n_texts == 0:
        return np.zeros((0, int(model.config.num_labels)))
    rows = predict_logits(
        model, w.encoded, tok.pad_token_id, device, batch_size, counter, progress, stage
    )
    return pool_rows(rows, w.owner, w.n_texts, settings["pooling"])


def text_embeddings(
    model: Any,
    tok: Any,
    texts: list[str],
    settings: dict[str, Any],
    pooling: str,
    device: torch.device,
    batch_size: int = 32,
    counter: FlopCounter | None = None,
    progress: Progress | None = None,
    stage: str = "embed",
) -> np.ndarray:
    """(n_texts, hidden): each window token-pooled and L2-normalised, the windows of a text
    pooled (mean or max) and the result L2-normalised again."""
    w = encode_windows(tok, texts, settings["max_length"], settings["windows"], settings["stride"])
    if w.n_texts == 0:
        return np.zeros((0, int(model.config.hidden_size)))
    rows = embed(
        model, w.encoded, tok.pad_token_id, device, pooling, batch_size, counter, progress, stage
    )
    x = pool_rows(rows, w.owner, w.n_texts, settings["pooling"])
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@dataclass
class Head:
    """A linear head over standardised embeddings: ``((x - mean) / scale) @ coef.T + intercept``."""

    coef: np.ndarray  # (k, d)
    intercept: np.ndarray  # (k,)
    mean: np.ndarray  # (d,)
    scale: np.ndarray  # (d,)

    def logits(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, dtype=np.float64) - self.mean) / self.scale
        return z @ self.coef.T.astype(np.float64) + self.intercept

    def tensors(self) -> dict[str, np.ndarray]:
        return {n: np.asarray(getattr(self, n), dtype=np.float32) for n in HEAD_TENSORS}

    @classmethod
    def load(cls, model_dir: Path) -> Head:
        from safetensors.numpy import load_file

        path = Path(model_dir) / "head.safetensors"
        try:
            t = load_file(str(path))
        except (OSError, ValueError) as e:
            raise JobError(
                f"{path} could not be read ({e}); expected the head written by phase 2 head-only.",
                error_class="invalid_input",
            ) from e
        missing = sorted(set(HEAD_TENSORS) - set(t))
        if missing:
            raise JobError(
                f"{path} lacks {missing}; expected {list(HEAD_TENSORS)}.",
                error_class="invalid_input",
            )
        return cls(*(np.asarray(t[n], dtype=np.float64) for n in HEAD_TENSORS))


@dataclass
class Predictor:
    """A loaded phase-2 model; ``scores`` are pooled class scores before the decision rule."""

    model: Any
    tokenizer: Any
    rule: DecisionRule
    device: torch.device
    batch_size: int = 32
    settings: dict[str, Any] = field(default_factory=dict)
    head: Head | None = None  # head-only: the linear head over the frozen encoder
    embed_pooling: str = "mean"  # head-only: how token states become a window embedding
    lexical: LexicalModel | None = None  # lexical_blend: the job's TF-IDF model, and its weight
    lexical_weight: float = 0.0
    plan: PromptPlan | None = None  # label tokens: the prompt the causal LM was trained with
    calibration: str = "none"  # label tokens: "content-free" divides the model's prior out

    @property
    def classes(self) -> list[str]:
        return list(self.rule.classes)

    def scores(
        self,
        texts: list[str],
        counter: FlopCounter | None = None,
        progress: Progress | None = None,
        stage: str = "predict",
    ) -> np.ndarray:
        """Class scores before the decision rule: the model's own, blended with the lexical
        model's log-probabilities when the job had ``lexical_blend``."""
        out = self.model_scores(texts, counter, progress, stage)
        if self.lexical is None:
            return out
        return blend(out, self.lexical.log_proba([str(t) for t in texts]), self.lexical_weight)

    def model_scores(
        self,
        texts: list[str],
        counter: FlopCounter | None = None,
        progress: Progress | None = None,
        stage: str = "predict",
    ) -> np.ndarray:
        texts = [str(t) for t in texts]
        s, dev, bs = self.settings, self.device, self.batch_size
        if self.plan is not None:  # log-probabilities of the class names after the prompt
            return label_scores(
                self.model,
                self.tokenizer,
                self.plan,
                texts,
                self.calibration,
                dev,
                counter,
                progress,
                bs,
                stage,
            )
        if self.head is None:
            return window_logits(
                self.model, self.tokenizer, texts, s, dev, bs, counter, progress, stage
            )
        x = text_embeddings(
            self.model,
            self.tokenizer,
            texts,
            s,
            self.embed_pooling,
            dev,
            bs,
            counter,
            progress,
            stage,
        )
        return self.head.logits(x)

    def predict_proba(
        self,
        texts: list[str],
        counter: FlopCounter | None = None,
        progress: Progress | None = None,
        stage: str = "predict",
    ) -> np.ndarray:
        """(n, n_classes) probabilities after windows, pooling and the decision rule."""
        if len(texts) == 0:
            return np.zeros((0, len(self.rule.classes)))
        return self.rule.apply(self.scores(texts, counter, progress, stage))


def load_predictor(
    model_dir: Path, bundle_dir: Path, device: torch.device | str = "cpu", batch_size: int = 32
) -> Predictor:
    """The saved model in ``model_dir`` (``out/model/``), ready to score texts.

    Head-only models use the encoder and tokenizer of ``bundle_dir`` (the submitted bundle,
    unchanged); full and LoRA models are self-contained in ``model_dir``."""
    model_dir, bundle_dir = Path(model_dir), Path(bundle_dir)
    dev = torch.device(device) if isinstance(device, str) else device
    rule = DecisionRule.load(model_dir)
    k = len(rule.classes)
    if (model_dir / "head.safetensors").is_file():
        head = Head.load(model_dir)
        try:
            meta = json.loads((model_dir / "head.json").read_text())
        except (OSError, ValueError) as e:
            raise JobError(
                f"{model_dir}/head.json is missing or malformed ({e}).", error_class="invalid_input"
            ) from e
        if head.coef.shape[0] != k:
            raise JobError(
                f"{model_dir}: the head scores {head.coef.shape[0]} classes but decision.json "
                f"names {k}; the two files come from different runs.",
                error_class="invalid_input",
            )
        tok = load_tokenizer(bundle_dir)
        model = load_model(bundle_dir, "AutoModel").to(dev).eval()
        settings = full_settings(rule.windows, int(meta.get("max_length") or 256))
        pooling = str(meta.get("pooling") or "mean")
        lex, w = load_lexical(model_dir, k, rule)
        return Predictor(
            model,
            tok,
            rule,
            dev,
            batch_size,
            settings,
            head,
            pooling,
            lexical=lex,
            lexical_weight=w,
        )
    if (model_dir / LABEL_TOKENS_FILE).is_file():
        return load_label_token_predictor(model_dir, rule, dev, batch_size)
    if not (model_dir / "config.json").is_file():
        raise JobError(
            f"{model_dir} holds neither a head-only model (head.safetensors) nor a fine-tuned "
            "one (config.json + model.safetensors); expected the out/model/ of a phase-2 job.",
            error_class="invalid_input",
        )
    tok = load_tokenizer(model_dir)
    model = load_model(model_dir, "AutoModelForSequenceClassification").to(dev).eval()
    if int(model.config.num_labels) != k:
        raise JobError(
            f"{model_dir}: the model has {model.config.num_labels} outputs but decision.json "
            f"names {k} classes; the two files come from different runs.",
            error_class="invalid_input",
        )
    settings = full_settings(rule.windows, 256)
    lex, w = load_lexical(model_dir, k, rule)
    return Predictor(model, tok, rule, dev, batch_size, settings, lexical=lex, lexical_weight=w)


def save_label_tokens(model_dir: Path, plan: PromptPlan, calibration: str) -> None:
    """``label_tokens.json``: the prompt plan and calibration a label-token model scores with."""
    from bedside.engine.io import atomic_write

    meta = {"objective": "label-tokens", "calibration": calibration, "plan": plan.to_dict()}
    atomic_write(Path(model_dir) / LABEL_TOKENS_FILE, json.dumps(meta, indent=1))


def load_label_token_predictor(
    model_dir: Path, rule: DecisionRule, device: torch.device, batch_size: int = 32
) -> Predictor:
    """A causal LM trained on the label tokens, scored by label log-likelihood after the saved
    prompt plan (the same token ids as at training; no template is rendered again)."""
    path = model_dir / LABEL_TOKENS_FILE
    try:
        meta = json.loads(path.read_text())
        plan = PromptPlan.from_dict(meta["plan"])
        calibration = check_calibration(meta.get("calibration", "none"))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise JobError(
            f"{path} is malformed ({e}); expected the label-token plan written by phase 2.",
            error_class="invalid_input",
        ) from e
    if len(plan.labels) != len(rule.classes):
        raise JobError(
            f"{model_dir}: the prompt plan scores {len(plan.labels)} labels but decision.json "
            f"names {len(rule.classes)} classes; the two files come from different runs.",
            error_class="invalid_input",
        )
    tok = load_tokenizer(model_dir, causal=True)
    model = load_model(model_dir, "AutoModelForCausalLM").to(device).eval()
    settings = full_settings(rule.windows, plan.text_budget)
    return Predictor(
        model, tok, rule, device, batch_size, settings, plan=plan, calibration=calibration
    )


def load_lexical(
    model_dir: Path, n_classes: int, rule: DecisionRule
) -> tuple[LexicalModel | None, float]:
    """The lexical model saved beside a phase-2 model (``lexical_blend``) and its weight (kept
    in ``decision.json``); (None, 0.0) when the job had no blend."""
    if not (model_dir / "lexical.safetensors").is_file():
        return None, 0.0
    lex = LexicalModel.load(model_dir)
    w = rule.lexical_blend
    if lex.n_classes != n_classes or not 0.0 < w < 1.0:
        raise JobError(
            f"{model_dir}: lexical.safetensors scores {lex.n_classes} classes with blend weight "
            f"{w:g}; decision.json names {n_classes} classes and the weight must be in (0, 1). "
            "The files come from different runs.",
            error_class="invalid_input",
        )
    return lex, w
