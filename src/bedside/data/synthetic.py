"""The embedded default corpus: synthetic medical abstracts in the five classes of the real one.

Nothing here comes from a real abstract: titles and sentences are filled from templates and
word lists written for bedside (``synthetic_vocab.py``). The generator is made *hard enough* to be
a useful stand-in: every slot draws from shared generic vocabulary some of the time, documents
stray into other classes' vocabulary, and ``ambiguous_share`` of the abstracts mix two areas
almost evenly (as multi-label abstracts do in the real corpus). At the defaults, TF-IDF + logistic
regression scores a macro-F1 of about 0.83 (the test suite pins it to [0.75, 0.92]).

Lengths follow the real corpus: about 180 words on average (range roughly 24 to 556),
cardiovascular abstracts longest and nervous-system abstracts shortest.
"""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd

from bedside.data import synthetic_vocab as V
from bedside.errors import ConfigError

# In the id order of the real corpus's labels.csv (1..5).
CLASSES = [
    "neoplasms",
    "digestive system diseases",
    "nervous system diseases",
    "cardiovascular diseases",
    "general pathological conditions",
]
SHARES = {
    "neoplasms": 0.219,
    "digestive system diseases": 0.103,
    "nervous system diseases": 0.133,
    "cardiovascular diseases": 0.211,
    "general pathological conditions": 0.333,
}
DESCRIPTIONS = {
    "neoplasms": "Tumours and cancers: carcinomas, lymphomas, leukaemias, their staging and treatment.",
    "digestive system diseases": "Diseases of the stomach, intestines, liver, pancreas and bile ducts.",
    "nervous system diseases": "Diseases of the brain, spinal cord and nerves: epilepsy, stroke, dementia.",
    "cardiovascular diseases": "Diseases of the heart and blood vessels: infarction, heart failure, hypertension.",
    "general pathological conditions": "General conditions across organs: infection, inflammation, shock, pain.",
}
# Mean words per class (real corpus: cardiovascular longest, nervous system shortest).
MEAN_WORDS = {
    "neoplasms": 180,
    "digestive system diseases": 186,
    "nervous system diseases": 158,
    "cardiovascular diseases": 205,
    "general pathological conditions": 176,
}
MIN_WORDS, MAX_WORDS = 24, 556
LENGTH_SHAPE = 5.5  # gamma shape: sd is about mean / sqrt(shape), as in the real corpus

# Difficulty knobs (tuned so that TF-IDF + LR lands near 0.83 macro-F1 at the defaults).
GENERIC_BETA = (2.35, 2.65)  # per-document share of generic slots ~ Beta: some abstracts say little
STRAY_P = 0.10  # a slot uses a random other class's vocabulary
STRAY_P_GENERAL = 0.25  # general conditions borrow more: they occur in every organ system
FOCUS_P = 0.6  # a slot reuses one of the document's few focus terms
MIX = (0.35, 0.7)  # ambiguous abstracts: share of class slots that go to the second class


def class_counts(n: int) -> dict[str, int]:
    """Rows per class for ``n`` rows (largest remainder), e.g. ``class_counts(1000)["neoplasms"] == 219``."""
    # The shares sum to 0.999: scaled to 1, the remainders to hand out stay below one per class
    # (unscaled, n=14438 left 14 rows over for 5 classes and wrote 14,426 rows).
    total = sum(SHARES[c] for c in CLASSES)
    raw = {c: n * SHARES[c] / total for c in CLASSES}
    counts = {c: int(raw[c]) for c in CLASSES}
    # Ties go to the larger class; rounding hides float noise.
    by_remainder = sorted(CLASSES, key=lambda c: (-round(raw[c] - counts[c], 9), -SHARES[c]))
    for c in by_remainder[: n - sum(counts.values())]:
        counts[c] += 1
    return counts


class _Doc:
    """Fills template slots for one document: its class, an optional second class, focus terms."""

    def __init__(self, rng: random.Random, primary: str, secondary: str | None, mix: float) -> None:
        self.rng = rng
        self.primary = primary
        self.secondary = secondary
        self.mix = mix
        self.generic_p = rng.betavariate(*GENERIC_BETA)
        self.stray_p = STRAY_P_GENERAL if primary == CLASSES[-1] else STRAY_P
        self.focus = {
            (c, s): rng.sample(V.VOCAB[c][s], 2)
            for c in (primary, secondary)
            if c is not None
            for s in V.SLOTS
        }

    def term(self, slot: str) -> str:
        rng = self.rng
        r = rng.random()
        if r < self.generic_p:
            return rng.choice(V.GENERIC[slot])
        if r < self.generic_p + self.stray_p:
            return rng.choice(V.VOCAB[rng.choice(CLASSES)][slot])
        cls = self.secondary if self.secondary and rng.random() < self.mix else self.primary
        if rng.random() < FOCUS_P:
            return rng.choice(self.focus[(cls, slot)])
        return rng.choice(V.VOCAB[cls][slot])

    def fill(self, template: str) -> str:
        rng = self.rng
        values: dict[str, str] = {}
        for key in ("d", "t", "p", "a", "m"):
            values[key] = self.term(key)
        values.update(
            t2=self.term("t"),
            m2=self.term("m"),
            m_g=rng.choice(V.GENERIC["m"]),
            g=rng.choice(V.POPULATIONS),
            o=rng.choice(V.OUTCOMES),
            des=rng.choice(V.DESIGNS),
            n=str(rng.randint(8, 400)),
            n2=str(rng.randint(8, 400)),
            pct=str(rng.randint(3, 97)),
            pv=rng.choice(
                ["P < 0.05", "P < 0.01", "P < 0.001", f"P = 0.0{rng.randint(1, 9)}", "NS"]
            ),
            x=f"{rng.uniform(0.5, 150):.1f}",
            x2=f"{rng.uniform(0.5, 150):.1f}",
            y=str(rng.randint(1, 12)),
            yr=str(rng.randint(1970, 1984)),
            yr2=str(rng.randint(1985, 1995)),
        )
        text = template.format_map(values)
        return text[0].upper() + text[1:]


# (templates, share of the word budget) in abstract order.
_SECTIONS = ((V.BACKGROUND, 0.22), (V.METHODS, 0.26), (V.RESULTS, 0.37), (V.CONCLUSIONS, 0.15))


def _abstract(rng: random.Random, label: str, ambiguous: bool) -> str:
    secondary = rng.choice([c for c in CLASSES if c != label]) if ambiguous else None
    doc = _Doc(rng, label, secondary, mix=rng.uniform(*MIX) if ambiguous else 0.0)
    mean = MEAN_WORDS[label]
    target = round(rng.gammavariate(LENGTH_SHAPE, mean / LENGTH_SHAPE))
    target = min(max(target, MIN_WORDS), MAX_WORDS)
    title = doc.fill(rng.choice(V.TITLES)) + "."
    parts = [title]
    words = len(title.split())
    for templates, share in _SECTIONS:
        budget = share * (target - len(title.split()))
        pool = list(templates)
        rng.shuffle(pool)
        used = 0.0
        while pool and used < budget - 6:
            sentence = doc.fill(pool.pop())
            parts.append(sentence)
            used += len(sentence.split())
            if templates is V.METHODS and rng.random() < 0.2:
                filler = rng.choice(V.FILLER)
                parts.append(filler)
                used += len(filler.split())
        words += int(used)
    # Very short targets can leave only the title; one result sentence keeps it an abstract.
    while words < MIN_WORDS:
        sentence = doc.fill(rng.choice(V.RESULTS))
        parts.append(sentence)
        words += len(sentence.split())
    return " ".join(parts)


def synthesize(n: int = 2000, seed: int = 0, ambiguous_share: float = 0.15) -> pd.DataFrame:
    """A synthetic labelled corpus with columns ``text, label`` (label = class name).

    Deterministic: the same arguments give the same rows (and the same CSV bytes).

    >>> df = synthesize(n=100, seed=1)
    >>> sorted(df["label"].unique())[0], len(df)
    ('cardiovascular diseases', 100)
    """
    if n < len(CLASSES):
        raise ConfigError(f"n must be at least {len(CLASSES)} (one row per class), got {n}.")
    if not 0.0 <= ambiguous_share <= 1.0:
        raise ConfigError(f"ambiguous_share must be within 0..1, got {ambiguous_share}.")
    rng = random.Random(seed)
    labels = [c for c, k in class_counts(n).items() for _ in range(k)]
    rng.shuffle(labels)
    texts = [_abstract(rng, label, rng.random() < ambiguous_share) for label in labels]
    return pd.DataFrame({"text": texts, "label": labels})


def write_synthetic(
    out: Path,
    n: int = 2000,
    seed: int = 0,
    ambiguous_share: float = 0.15,
    descriptions: Path | None = None,
) -> pd.DataFrame:
    """Write ``synthesize(...)`` to ``out`` as CSV, and optionally a ``name,description`` file.

    >>> write_synthetic(Path("synthetic.csv"), n=500)  # doctest: +SKIP
    """
    df = synthesize(n=n, seed=seed, ambiguous_share=ambiguous_share)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out, index=False, lineterminator="\n")
    if descriptions is not None:
        pd.DataFrame({"name": CLASSES, "description": [DESCRIPTIONS[c] for c in CLASSES]}).to_csv(
            descriptions, index=False, lineterminator="\n"
        )
    return df
