"""The decision rule: per-class offsets on log-probabilities, fitted for macro-F1 on the
validation slice (never the holdout), stored in ``out/model/decision.json``.

Argmax over a class-weighted (or unweighted) model's scores is rarely the macro-F1 optimum on an
imbalanced corpus: a catch-all class that overlaps every other one is either abandoned or
over-predicted. Adding a per-class offset ``b_c`` to ``log p_c`` before the argmax moves the
decision boundaries without retraining. :func:`fit_offsets` finds the offsets by coordinate
ascent over a grid (a few rounds, each class in turn, the rest fixed); ties go to the smaller
offset, so an offset only moves when it pays on the validation slice.

Example::

    rule = fit(val_logits, y_val, classes)          # DecisionRule("fitted-offsets", [...])
    probs = rule.apply(holdout_logits)               # softmax(log_softmax(logits) + offsets)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bedside.engine.dataprep import macro_f1
from bedside.errors import JobError

RULES = ("argmax", "fitted-offsets")
GRID = np.round(np.arange(-3.0, 3.0001, 0.1), 2)  # offsets on log-probabilities
ROUNDS = 3
MIN_VALIDATION = 20  # fewer validation rows than this: offsets would fit noise, keep argmax
MIN_GAIN = 1e-9  # the fitted rule must beat argmax on validation to replace it


def log_softmax(x: np.ndarray) -> np.ndarray:
    z = np.asarray(x, dtype=np.float64)
    if z.size == 0:
        return z.reshape(len(z), -1)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def fit_offsets(
    scores: np.ndarray, y: np.ndarray, k: int, grid: np.ndarray = GRID, rounds: int = ROUNDS
) -> tuple[np.ndarray, float]:
    """Offsets (k,) maximising macro-F1 of ``argmax(scores + offsets)`` on ``(scores, y)``, and
    that macro-F1. Coordinate ascent from zero; among equal scores the smallest |offset| wins."""
    s = np.asarray(scores, dtype=np.float64)
    b = np.zeros(k)
    best = macro_f1(y, (s + b).argmax(1), k)
    order = np.argsort(np.abs(grid), kind="stable")  # try small offsets first: ties keep them
    for _ in range(rounds):
        moved = False
        for c in range(k):
            cur = b[c]
            for v in grid[order]:
                b[c] = v
                f = macro_f1(y, (s + b).argmax(1), k)
                if f > best + MIN_GAIN or (abs(f - best) <= MIN_GAIN and abs(v) < abs(cur)):
                    moved = moved or float(v) != cur
                    best, cur = f, float(v)
            b[c] = cur
        if not moved:
            break
    return b, float(best)


@dataclass
class DecisionRule:
    """``argmax`` (offsets all 0) or ``fitted-offsets``; applied to log-softmax scores."""

    rule: str
    offsets: list[float]
    classes: list[str]
    windows: dict[str, Any] = field(default_factory=dict)  # how texts are windowed and pooled
    macro_f1_raw: float | None = None
    macro_f1_adjusted: float | None = None
    lexical_blend: float = 0.0  # the weight of the lexical model's log-probs in the scores

    def apply(self, logits: np.ndarray) -> np.ndarray:
        """Class probabilities after the rule: ``softmax(log_softmax(logits) + offsets)``."""
        z = log_softmax(logits) + np.asarray(self.offsets, dtype=np.float64)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "offsets": [round(float(o), 4) for o in self.offsets],
            "classes": list(self.classes),
            "windows": dict(self.windows),
            "macro_f1_raw": self.macro_f1_raw,
            "macro_f1_adjusted": self.macro_f1_adjusted,
            "lexical_blend": self.lexical_blend,
        }

    def save(self, model_dir: Path) -> None:
        from bedside.engine.io import atomic_write

        atomic_write(Path(model_dir) / "decision.json", json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, model_dir: Path) -> DecisionRule:
        p = Path(model_dir) / "decision.json"
        try:
            d = json.loads(p.read_text())
            rule, offsets, classes = d["rule"], [float(x) for x in d["offsets"]], d["classes"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise JobError(
                f"{p} is missing or malformed ({e}); expected "
                '{"rule", "offsets", "classes", "windows"} as written by phase 2.',
                error_class="invalid_input",
            ) from e
        if rule not in RULES or len(offsets) != len(classes):
            raise JobError(
                f"{p}: rule must be one of {RULES} with one offset per class; found rule "
                f"{rule!r}, {len(offsets)} offsets for {len(classes)} classes.",
                error_class="invalid_input",
            )
        try:
            w = float(d.get("lexical_blend") or 0.0)
        except (TypeError, ValueError) as e:
            raise JobError(
                f"{p}: lexical_blend must be a number; found {d.get('lexical_blend')!r}.",
                error_class="invalid_input",
            ) from e
        return cls(rule, offsets, list(classes), dict(d.get("windows") or {}), lexical_blend=w)


def fit(
    val_logits: np.ndarray, y_val: np.ndarray, classes: list[str], how: str = "fitted-offsets"
) -> DecisionRule:
    """The rule for a model whose validation-slice scores are ``val_logits`` (labels ``y_val``).

    ``how="argmax"`` or a validation slice under ``MIN_VALIDATION`` rows keeps argmax; so does a
    fit that does not beat argmax on the slice."""
    k = len(classes)
    n = len(y_val)
    zero = [0.0] * k
    if n == 0:
        return DecisionRule("argmax", zero, list(classes))
    s = log_softmax(val_logits)
    raw = macro_f1(y_val, s.argmax(1), k)
    if how == "argmax" or n < MIN_VALIDATION:
        return DecisionRule("argmax", zero, list(classes), macro_f1_raw=raw, macro_f1_adjusted=raw)
    offsets, adj = fit_offsets(s, y_val, k)
    if adj <= raw + MIN_GAIN:
        return DecisionRule("argmax", zero, list(classes), macro_f1_raw=raw, macro_f1_adjusted=raw)
    return DecisionRule(
        "fitted-offsets",
        [float(o) for o in offsets],
        list(classes),
        macro_f1_raw=raw,
        macro_f1_adjusted=adj,
    )
