"""A stand-in for the hospital's current classifier: a keyword rule, as many teams run today.

The demo has no real in-house classifier to register, so it builds an honest simple one: for each
class, the words most specific to it (chi-squared on word presence) in a third of the training
split only; a text goes to the class whose keywords it contains most (ties: the larger class).
Its holdout predictions are written as the CSV the owner would export, and registered with
``bedside baseline add`` like a real one. The holdout is only predicted, never used to fit.

Example::

    path = write_current_predictions(ws, Path("current.csv"))
    # then: bedside baseline add "current classifier (keyword rule stand-in)" current.csv
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from bedside.workspace import Workspace

NAME = "current classifier (keyword rule stand-in)"
TRAIN_SHARE = 1 / 3
KEYWORDS_PER_CLASS = 25


def fit_keywords(
    texts: list[str], labels: list[str], classes: list[str], k: int = KEYWORDS_PER_CLASS
) -> dict[str, list[str]]:
    """The ``k`` words most associated with each class (present more often in it than elsewhere)."""
    from sklearn.feature_extraction.text import CountVectorizer

    vec = CountVectorizer(binary=True, stop_words="english", min_df=3, token_pattern=r"[a-z]{3,}")
    x = vec.fit_transform([t.lower() for t in texts])
    vocab = np.array(vec.get_feature_names_out())
    y = np.array(labels)
    out: dict[str, list[str]] = {}
    n = x.shape[0]
    df_all = np.asarray(x.sum(axis=0)).ravel()
    for c in classes:
        mask = y == c
        if not mask.any():
            out[c] = []
            continue
        a = np.asarray(x[mask].sum(axis=0)).ravel()  # docs of c with the word
        b = df_all - a  # other docs with the word
        n1 = int(mask.sum())
        n0 = n - n1
        # chi-squared of the 2x2 table, kept only where the word is over-represented in c
        exp = df_all * n1 / n
        chi = (a - exp) ** 2 * n**3 / np.maximum(df_all * (n - df_all) * n1 * n0, 1)
        chi[a / n1 <= b / max(n0, 1)] = 0
        out[c] = [str(vocab[i]) for i in np.argsort(-chi)[:k] if chi[i] > 0]
    return out


def predict_keywords(
    texts: list[str], keywords: dict[str, list[str]], fallback_order: list[str]
) -> list[str]:
    """The class whose keywords occur most in each text; ties go to the earliest in
    ``fallback_order`` (larger classes first)."""
    sets = {c: set(ws) for c, ws in keywords.items()}
    preds = []
    for t in texts:
        words = set(pd.Series([t.lower()]).str.findall(r"[a-z]{3,}")[0])
        counts = {c: len(words & sets[c]) for c in fallback_order}
        preds.append(max(fallback_order, key=lambda c: counts[c]))
    return preds


def write_current_predictions(ws: Workspace, out: Path, seed: int = 0) -> Path:
    """Fit the rule on a third of the active version's training split; write its holdout
    predictions as ``row_id,label`` to ``out``."""
    from bedside.data.corpus import load_corpus

    corpus = load_corpus(ws)
    part = corpus.train.sample(frac=TRAIN_SHARE, random_state=seed)
    classes = corpus.class_names
    keywords = fit_keywords(list(part["text"]), list(part["label"]), classes)
    order = list(part["label"].value_counts().index) + [
        c for c in classes if c not in set(part["label"])
    ]
    preds = predict_keywords(list(corpus.holdout["text"]), keywords, order)
    pd.DataFrame({"row_id": corpus.holdout["row_id"].astype(str), "label": preds}).to_csv(
        out, index=False
    )
    return out
