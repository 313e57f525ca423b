"""The Ladder (Blum & Hardt, ICML 2015): release a new score only when it beats the best by a step.

A contributor who watches its exact holdout score move across many submissions can learn the
holdout (the paper's "boosting attack": submit label-flipping probes, keep the flips that raise
the score, combine them). The Ladder cuts that channel: with step ``eta`` a contributor's
released score changes only when a new result beats its best *released* score by more than
``eta``; the new score is then rounded to a multiple of ``eta``. Any other result releases the
previous best again, so a probe that moves the score by less than ``eta`` says nothing.

The rule, for scores where higher is better (macro-F1)::

    best = -inf
    for each result s_t, in the order the contributor got them:
        if s_t > best + eta:  best = round(s_t / eta) * eta
        release best

Pure functions only; the board applies them per contributor and corpus version, over every
result it would release (phase 1 and phase 2, in result order). See bench/holdout_probing.py for
how much the attack learns with and without it.

Example::

    >>> [s.released for s in ladder([0.50, 0.505, 0.52, 0.515, 0.60], 0.01)]
    [0.5, 0.5, 0.52, 0.52, 0.6]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class LadderStep:
    """One released score: ``improved`` when the result moved the contributor's best."""

    score: float
    released: float
    improved: bool


def round_to_step(x: float, step: float) -> float:
    """``x`` rounded to the nearest multiple of ``step`` (kept free of float noise).

    >>> round_to_step(0.5234, 0.01), round_to_step(0.5234, 0.025)
    (0.52, 0.525)
    """
    if step <= 0:
        raise ValueError(f"step must be > 0, got {step}.")
    digits = max(0, -math.floor(math.log10(step))) + 3
    return round(round(x / step) * step, digits)


def ladder(scores: Iterable[float], step: float) -> list[LadderStep]:
    """The Ladder's released score after each of ``scores`` (in submission order)."""
    out: list[LadderStep] = []
    best = -math.inf
    for s in scores:
        s = float(s)
        improved = s > best + step
        if improved:
            best = round_to_step(s, step)
        out.append(LadderStep(score=s, released=best, improved=improved))
    return out


def released_scores(scores: Sequence[float], step: float) -> list[float]:
    """Just the released figures; ``step == 0`` releases every score unchanged (no Ladder).

    >>> released_scores([0.61, 0.60], 0.0), released_scores([0.61, 0.60], 0.02)
    ([0.61, 0.6], [0.6, 0.6])
    """
    if step == 0:
        return [float(s) for s in scores]
    return [s.released for s in ladder(scores, step)]
