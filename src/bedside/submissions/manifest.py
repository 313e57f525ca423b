"""The bundle manifest, ``bedside.toml``: what the model is and how to evaluate and fine-tune it.

``load_manifest(path)`` parses and validates it; ``Manifest.to_dict()`` is the plain dict, with
every default filled in, that the engine receives as ``JobSpec.manifest``.

Example::

    m = load_manifest(Path("bundle/bedside.toml"))
    m.kind, m.train.epochs, m.to_dict()["train"]["lora"]["r"]
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from bedside.errors import BundleError
from bedside.parsing import has_control, parse_toml, read_bounded

MANIFEST_NAME = "bedside.toml"
MAX_MANIFEST_BYTES = 256 * 1024  # a manifest is a page of settings
KINDS = ("encoder", "classifier", "causal-lm")
PHASE1_METHOD = {"encoder": "similarity", "classifier": "label-mapping", "causal-lm": "prompt"}
TRAIN_METHODS = ("full", "lora", "head-only")
# What phase 2 trains: a classification head over the model ("classifier"), or, for a causal LM,
# the LM itself to write the class name after phase 1's prompt ("label-tokens", engine/labeltune.py)
TRAIN_OBJECTIVES = ("classifier", "label-tokens")
POOLINGS = ("mean", "cls")
CLASS_WEIGHTINGS = ("none", "sqrt", "balanced")
WINDOW_POOLINGS = ("mean", "max")
DECISION_RULES = ("argmax", "fitted-offsets")
CALIBRATIONS = ("content-free", "none")  # causal-lm phase 1 (engine/llm.py)
_NAME_RE = re.compile(r"^[A-Za-z0-9._ -]{1,100}$")
_TOP_KEYS = (
    "name",
    "description",
    "kind",
    "phase1",
    "train",
    "labels",
    "descriptions",
    "claimed_macro_f1",
    "claimed_per_class",
    "claim_source",
)


def _where(section: str, key: str) -> str:
    return f"{section}.{key}" if section else key


def _check_keys(section: str, data: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        where = f"[{section}]" if section else "the top level"
        raise BundleError(
            f"{MANIFEST_NAME}: unknown key(s) {', '.join(repr(k) for k in unknown)} in {where}; "
            f"allowed keys there are: {', '.join(allowed)}.",
            hint="Fix the spelling or remove the key (see docs/submission-format.md).",
        )


def _choice(section: str, key: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise BundleError(
            f"{MANIFEST_NAME}: {_where(section, key)} must be one of "
            f"{', '.join(repr(c) for c in choices)}; found {value!r}."
        )
    return str(value)


def _int(section: str, key: str, value: Any, lo: int | None, hi: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BundleError(
            f"{MANIFEST_NAME}: {_where(section, key)} must be an integer; found {value!r}."
        )
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise BundleError(
            f"{MANIFEST_NAME}: {_where(section, key)} must be in the range {lo}..{hi}; found {value}."
        )
    return value


def _flag(section: str, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise BundleError(
            f"{MANIFEST_NAME}: {_where(section, key)} must be true or false; found {value!r}."
        )
    return value


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _float(section: str, key: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not _finite(value):
        raise BundleError(
            f"{MANIFEST_NAME}: {_where(section, key)} must be a number; found {value!r}."
        )
    if not lo <= value <= hi:
        raise BundleError(
            f"{MANIFEST_NAME}: {_where(section, key)} must be in the range {lo:g}..{hi:g}; found {value:g}."
        )
    return float(value)


def _str_map(section: str, value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise BundleError(f'{MANIFEST_NAME}: [{section}] must be a table of name = "text" pairs.')
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(v, str) or not v.strip():
            raise BundleError(
                f"{MANIFEST_NAME}: {section}.{k!r} must be a non-empty string; found {v!r}."
            )
        if has_control(str(k)) or has_control(v, allow="\n\t"):
            raise BundleError(
                f"{MANIFEST_NAME}: {section}.{k!r} = {v!r:.80} holds control characters "
                "(escapes, carriage returns); names and texts are plain text.",
                hint="Remove the control characters.",
            )
        out[str(k)] = v
    return out


@dataclass
class LoraConfig:
    r: int = 8
    alpha: int = 16
    dropout: float = 0.1
    target_modules: list[str] | None = None  # None: the engine picks per architecture

    def __post_init__(self) -> None:
        s = "train.lora"
        self.r = _int(s, "r", self.r, 1, 256)
        self.alpha = _int(s, "alpha", self.alpha, 1, 1024)
        self.dropout = _float(s, "dropout", self.dropout, 0.0, 0.5)
        if self.target_modules is not None:
            tm = self.target_modules
            if not isinstance(tm, list) or not tm or not all(isinstance(x, str) and x for x in tm):
                raise BundleError(
                    f"{MANIFEST_NAME}: train.lora.target_modules must be a non-empty list of module "
                    f'names such as ["query", "value"]; found {tm!r}.',
                    hint="Leave it out to let bedside pick the attention projections for the architecture.",
                )


@dataclass
class TrainConfig:
    method: str = "full"
    epochs: int = 3
    learning_rate: float = 5e-5
    batch_size: int = 16
    max_length: int = 256
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    class_weighting: str = "balanced"
    seed: int = 0
    validation_fraction: float = 0.1
    early_stopping_patience: int = 2
    lora: LoraConfig = field(default_factory=LoraConfig)
    # Long texts: up to `windows` windows of max_length tokens, starts `window_stride` content
    # tokens apart (None: half a window), window scores pooled per text by `window_pooling`.
    windows: int = 1
    window_stride: int | None = None
    window_pooling: str = "mean"
    layer_lr_decay: float = 1.0  # learning rate x decay^depth-from-top; 1.0: one rate for all
    label_smoothing: float = 0.0
    # Offsets by default: they stop a class-weighted fine-tune from abandoning the catch-all
    # class (demo holdout: full fine-tuning 0.564 with them, 0.495 with argmax). Frozen encoders
    # do better with "argmax" (bench/quality_real.py: offsets -0.009 to -0.023 over 5 folds).
    decision_rule: str = "fitted-offsets"
    # Throughput (docs/submission-format.md): a frozen word-embedding table (no gradient and no
    # AdamW state for it: a third of MiniLM's parameters), a recipe of its own; checkpoints every
    # N minutes of wall time (None: every N steps as the job spec says; epoch ends always),
    # written by a background thread from a copy of the state unless async_checkpoints is off.
    freeze_embeddings: bool = False
    checkpoint_minutes: float | None = None
    async_checkpoints: bool = True
    # The training graph through torch.compile over at most 8 padded widths
    # (engine/compiled.py); off: compiling MiniLM took 4-5 min on 2 CPU cores, more than a demo
    # job's whole training (docs/benchmarks.md, issue #18).
    compile: bool = False
    objective: str = "classifier"
    # Phase 2's class log-probabilities mixed with a TF-IDF + LR model fitted in the same job on
    # the same rows, (1 - w) * log p_model + w * log p_tfidf, before the decision rule
    # (engine/lexical.py); 0: off.
    lexical_blend: float = 0.0

    def __post_init__(self) -> None:
        s = "train"
        self.method = _choice(s, "method", self.method, TRAIN_METHODS)
        self.objective = _choice(s, "objective", self.objective, TRAIN_OBJECTIVES)
        self.epochs = _int(s, "epochs", self.epochs, 1, 20)
        self.learning_rate = _float(s, "learning_rate", self.learning_rate, 1e-6, 1e-1)
        self.batch_size = _int(s, "batch_size", self.batch_size, 1, 256)
        self.max_length = _int(s, "max_length", self.max_length, 16, 2048)
        self.warmup_ratio = _float(s, "warmup_ratio", self.warmup_ratio, 0.0, 0.5)
        self.weight_decay = _float(s, "weight_decay", self.weight_decay, 0.0, 0.3)
        self.class_weighting = _choice(s, "class_weighting", self.class_weighting, CLASS_WEIGHTINGS)
        self.seed = _int(s, "seed", self.seed, 0, 2**32 - 1)
        self.validation_fraction = _float(
            s, "validation_fraction", self.validation_fraction, 0.0, 0.3
        )
        self.early_stopping_patience = _int(
            s, "early_stopping_patience", self.early_stopping_patience, 0, 10
        )
        self.windows = _int(s, "windows", self.windows, 1, 16)
        if self.window_stride is not None:
            self.window_stride = _int(s, "window_stride", self.window_stride, 8, 512)
        self.window_pooling = _choice(s, "window_pooling", self.window_pooling, WINDOW_POOLINGS)
        self.layer_lr_decay = _float(s, "layer_lr_decay", self.layer_lr_decay, 0.5, 1.0)
        self.label_smoothing = _float(s, "label_smoothing", self.label_smoothing, 0.0, 0.3)
        self.decision_rule = _choice(s, "decision_rule", self.decision_rule, DECISION_RULES)
        self.freeze_embeddings = _flag(s, "freeze_embeddings", self.freeze_embeddings)
        self.async_checkpoints = _flag(s, "async_checkpoints", self.async_checkpoints)
        self.compile = _flag(s, "compile", self.compile)
        if self.checkpoint_minutes is not None:
            self.checkpoint_minutes = _float(
                s, "checkpoint_minutes", self.checkpoint_minutes, 0.1, 1440.0
            )
        self.lexical_blend = _float(s, "lexical_blend", self.lexical_blend, 0.0, 0.9)
        if self.objective == "label-tokens":
            self._check_label_tokens()

    def _check_label_tokens(self) -> None:
        """What the label-token objective cannot combine with (engine/labeltune.py)."""
        where = f'{MANIFEST_NAME}: train.objective = "label-tokens"'
        if self.method == "head-only":
            raise BundleError(
                f"{where} trains the language model itself; it cannot be head-only.",
                hint='Use train.method = "lora" (or "full"), or objective = "classifier" '
                "for a head-only recipe.",
            )
        if self.windows > 1:
            raise BundleError(
                f"{where} scores each abstract in one prompt, as phase 1 does (truncated to "
                f"max_length tokens); found train.windows = {self.windows}.",
                hint='Leave train.windows out, or use objective = "classifier" for windows.',
            )
        if self.lexical_blend > 0:
            raise BundleError(
                f"{where} scores class names by their log-likelihood; train.lexical_blend "
                f"applies to the classifier objective only (found {self.lexical_blend:g}).",
                hint="Leave train.lexical_blend out.",
            )
        if self.label_smoothing > 0:
            raise BundleError(
                f"{where} trains on the class name's tokens over the whole vocabulary; "
                f"train.label_smoothing applies to the classifier objective only (found "
                f"{self.label_smoothing:g}).",
                hint="Leave train.label_smoothing out.",
            )

    def check_kind(self, kind: str) -> None:
        """Refuse an objective the model kind cannot train (the manifest and every job spec
        call this: one rule)."""
        if self.objective == "label-tokens" and kind != "causal-lm":
            raise BundleError(
                f'{MANIFEST_NAME}: train.objective = "label-tokens" trains a causal language '
                f"model to write the class name after the phase-1 prompt; a {kind!r} bundle has "
                'no language-model head to train. Use train.objective = "classifier" (the '
                'default: a classification head, with train.method = "full", "lora" or '
                '"head-only").',
                hint='Remove train.objective, or submit a decoder LLM as kind = "causal-lm".',
            )


@dataclass
class Phase1Config:
    method: str
    pooling: str | None = None  # encoder only; default "mean"
    prompt: str | None = None  # causal-lm only; must contain {text} and {labels}
    # causal-lm only: contextual calibration (default), and whether to wrap the prompt in the
    # bundle's chat template (rendered in Jinja's sandbox only)
    calibration: str | None = None
    chat_template: bool | None = None


@dataclass
class Manifest:
    """A validated ``bedside.toml``."""

    name: str
    kind: str
    phase1: Phase1Config
    train: TrainConfig = field(default_factory=TrainConfig)
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)  # checkpoint label -> workspace class
    descriptions: dict[str, str] = field(default_factory=dict)  # workspace class -> description
    # The vendor's own claim (published benchmarks), shown beside what bedside measures.
    claimed_macro_f1: float | None = None
    claimed_per_class: dict[str, float] = field(default_factory=dict)  # workspace class -> F1
    claim_source: str = ""

    def __post_init__(self) -> None:
        self._check_claims()
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise BundleError(
                f"{MANIFEST_NAME}: name must be 1..100 characters of letters, digits, '.', '_', '-' "
                f"or spaces; found {self.name!r}."
            )
        if not isinstance(self.description, str) or len(self.description) > 2000:
            raise BundleError(
                f"{MANIFEST_NAME}: description must be text of at most 2000 characters."
            )
        self.kind = _choice("", "kind", self.kind, KINDS)
        expected = PHASE1_METHOD[self.kind]
        if self.phase1.method != expected:
            raise BundleError(
                f"{MANIFEST_NAME}: phase1.method {self.phase1.method!r} does not match kind "
                f"{self.kind!r}; a {self.kind} bundle uses phase1.method = {expected!r}.",
                hint="Either change kind or set the matching phase-1 method (or leave it out).",
            )
        p1 = self.phase1
        if self.kind == "encoder":
            p1.pooling = _choice("phase1", "pooling", p1.pooling or "mean", POOLINGS)
        elif p1.pooling is not None:
            raise BundleError(
                f'{MANIFEST_NAME}: phase1.pooling applies to kind = "encoder" only; found it for {self.kind!r}.'
            )
        if p1.prompt is not None:
            if self.kind != "causal-lm":
                raise BundleError(
                    f'{MANIFEST_NAME}: phase1.prompt applies to kind = "causal-lm" only; found it for {self.kind!r}.'
                )
            if (
                not isinstance(p1.prompt, str)
                or "{text}" not in p1.prompt
                or ("{labels}" not in p1.prompt and "{descriptions}" not in p1.prompt)
            ):
                raise BundleError(
                    f"{MANIFEST_NAME}: phase1.prompt must contain the placeholders {{text}} and "
                    f"{{labels}} (or {{descriptions}}: one line per class with its description); "
                    f"found {p1.prompt!r}."
                )
        self._check_decoder_phase1()
        self.train.check_kind(self.kind)
        if self.kind == "classifier" and not self.labels:
            raise BundleError(
                f"{MANIFEST_NAME}: a classifier bundle needs a [labels] table mapping each checkpoint "
                "label (as in config.json id2label) to a workspace class name; found none.",
                hint='Example: [labels]\nLABEL_0 = "neoplasms"',
            )
        if self.kind != "classifier" and self.labels:
            raise BundleError(
                f'{MANIFEST_NAME}: [labels] applies to kind = "classifier" only; found it for {self.kind!r}.',
                hint="Use [descriptions] to describe the classes for zero-shot instead.",
            )

    def _check_decoder_phase1(self) -> None:
        p1 = self.phase1
        if self.kind != "causal-lm":
            for key in ("calibration", "chat_template"):
                if getattr(p1, key) is not None:
                    raise BundleError(
                        f'{MANIFEST_NAME}: phase1.{key} applies to kind = "causal-lm" only; '
                        f"found it for {self.kind!r}."
                    )
            return
        p1.calibration = _choice(
            "phase1", "calibration", p1.calibration or CALIBRATIONS[0], CALIBRATIONS
        )
        if p1.chat_template is None:
            p1.chat_template = False
        if not isinstance(p1.chat_template, bool):
            raise BundleError(
                f"{MANIFEST_NAME}: phase1.chat_template must be true or false; found {p1.chat_template!r}."
            )

    def _check_claims(self) -> None:
        if self.claimed_macro_f1 is not None:
            self.claimed_macro_f1 = _float("", "claimed_macro_f1", self.claimed_macro_f1, 0.0, 1.0)
        if not isinstance(self.claimed_per_class, Mapping):
            raise BundleError(
                f"{MANIFEST_NAME}: [claimed_per_class] must be a table of class = F1 pairs; "
                f"found {self.claimed_per_class!r}.",
                hint='Example: [claimed_per_class]\n"neoplasms" = 0.91',
            )
        self.claimed_per_class = {
            str(k): _float("claimed_per_class", repr(k), v, 0.0, 1.0)
            for k, v in self.claimed_per_class.items()
        }
        if not isinstance(self.claim_source, str) or len(self.claim_source) > 500:
            raise BundleError(
                f"{MANIFEST_NAME}: claim_source must be text of at most 500 characters "
                "(the benchmark the claim comes from)."
            )

    def to_dict(self) -> dict[str, Any]:
        """A plain dict with every default filled in (what the engine reads)."""
        t = self.train
        train = {f.name: getattr(t, f.name) for f in fields(t) if f.name != "lora"}
        lora = t.lora
        train["lora"] = {
            "r": lora.r,
            "alpha": lora.alpha,
            "dropout": lora.dropout,
            "target_modules": list(lora.target_modules) if lora.target_modules else None,
        }
        phase1: dict[str, Any] = {
            "method": self.phase1.method,
            "pooling": self.phase1.pooling,
            "prompt": self.phase1.prompt,
        }
        if self.kind == "causal-lm":
            phase1["calibration"] = self.phase1.calibration
            phase1["chat_template"] = self.phase1.chat_template
        return {
            "name": self.name,
            "description": self.description,
            "kind": self.kind,
            "phase1": phase1,
            "train": train,
            "labels": dict(self.labels),
            "descriptions": dict(self.descriptions),
            "claimed_macro_f1": self.claimed_macro_f1,
            "claimed_per_class": dict(self.claimed_per_class),
            "claim_source": self.claim_source,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Manifest:
        """Validate a parsed ``bedside.toml`` (or a ``to_dict()`` result)."""
        if not isinstance(data, Mapping):
            raise BundleError(f"{MANIFEST_NAME} must be a TOML table.")
        _check_keys("", data, _TOP_KEYS)
        for key in ("name", "kind"):
            if key not in data:
                raise BundleError(
                    f"{MANIFEST_NAME}: the required key {key!r} is missing.",
                    hint='Start from: name = "my-model"\nkind = "encoder"  # or "classifier", "causal-lm"',
                )
        kind = _choice("", "kind", data["kind"], KINDS)
        p1_raw = _table(data, "phase1")
        _check_keys("phase1", p1_raw, tuple(f.name for f in fields(Phase1Config)))
        phase1 = Phase1Config(
            method=p1_raw.get("method", PHASE1_METHOD[kind]),
            pooling=p1_raw.get("pooling"),
            prompt=p1_raw.get("prompt"),
            calibration=p1_raw.get("calibration"),
            chat_template=p1_raw.get("chat_template"),
        )
        tr_raw = dict(_table(data, "train"))
        train_keys = tuple(f.name for f in fields(TrainConfig))
        _check_keys("train", tr_raw, train_keys)
        lora_raw = tr_raw.pop("lora", None) or {}
        if not isinstance(lora_raw, Mapping):
            raise BundleError(f"{MANIFEST_NAME}: [train.lora] must be a table; found {lora_raw!r}.")
        _check_keys("train.lora", lora_raw, tuple(f.name for f in fields(LoraConfig)))
        train = TrainConfig(**tr_raw, lora=LoraConfig(**lora_raw))
        labels = _str_map("labels", data["labels"]) if "labels" in data else {}
        descriptions = (
            _str_map("descriptions", data["descriptions"]) if "descriptions" in data else {}
        )
        return cls(
            name=data["name"],
            kind=kind,
            phase1=phase1,
            train=train,
            description=data.get("description") or "",
            labels=labels,
            descriptions=descriptions,
            claimed_macro_f1=data.get("claimed_macro_f1"),
            claimed_per_class=data.get("claimed_per_class") or {},
            claim_source=data.get("claim_source") or "",
        )


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, Mapping):
        raise BundleError(f"{MANIFEST_NAME}: [{key}] must be a table; found {value!r}.")
    return value


def parse_manifest(text: str, source: str = MANIFEST_NAME) -> Manifest:
    """Parse TOML text into a validated Manifest."""
    data = parse_toml(text, source, BundleError, hint="Check it with any TOML validator.")
    return Manifest.from_dict(data)


def load_manifest(path: Path) -> Manifest:
    """Read and validate ``bedside.toml`` (``path`` may be the file or the bundle directory)."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    if not path.is_file():
        raise BundleError(
            f"the bundle has no {MANIFEST_NAME} (looked for {path}).",
            hint="Every bundle needs a bedside.toml beside config.json; see docs/submission-format.md.",
        )
    raw = read_bounded(path, MAX_MANIFEST_BYTES, MANIFEST_NAME, BundleError, follow_links=False)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BundleError(f"{MANIFEST_NAME} is not UTF-8 text.") from e
    return parse_manifest(text)
