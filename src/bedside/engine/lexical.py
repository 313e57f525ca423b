"""TF-IDF + logistic regression: the one recipe behind the internal baseline, the screening
comparison and phase 2's optional lexical blend.

The recipe (:data:`RECIPE`) is fixed on purpose: word 1-2-grams, sublinear tf, ``min_df=2``,
``LogisticRegression(C=4, class_weight="balanced")``. :func:`fit_tfidf` fits it and returns a
:class:`LexicalModel`: the vocabulary, the idf weights and the linear model as plain arrays, so a
phase-2 job can store it with its model as JSON + safetensors (no pickles) and the predictor can
score new texts with it without scikit-learn's objects.

**Lexical blend** (``[train] lexical_blend = w``, 0 < w < 1): the phase-2 model's class
log-probabilities and the TF-IDF model's, fitted inside the job on the same training rows, are
mixed as ``(1 - w) * log p_model + w * log p_tfidf`` before the decision rule (a weighted product
of experts). An encoder and a bag of n-grams make different mistakes; on the real dev corpus the
blend at w = 0.5 scores above both alone (docs/benchmarks.md, "Lexical blend").

Example::

    lex = fit_tfidf(train_texts, train_y, n_classes=5)
    lp = lex.log_proba(["an abstract"])          # (1, 5) log-probabilities
    scores = blend(model_logits, lp, 0.5)         # what the decision rule sees
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bedside.errors import JobError

RECIPE: dict[str, Any] = {
    "model": "tfidf+logreg",
    "ngram_range": [1, 2],
    "sublinear_tf": True,
    "min_df": 2,
    "C": 4.0,
    "class_weight": "balanced",
    "solver": "newton-cg",  # same optimum as lbfgs here, ~8x faster on 36k sparse features
    "max_iter": 2000,
}
TENSORS = ("idf", "coef", "intercept")
ABSENT = -30.0  # the intercept of a class the model never saw: it must never win


def _vectoriser(min_df: int, vocabulary: dict[str, int] | None = None) -> Any:
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

    common = {
        "ngram_range": tuple(RECIPE["ngram_range"]),
        "strip_accents": "unicode",
        "dtype": np.float64,
    }
    if vocabulary is not None:  # scoring: counts over the stored vocabulary, tf-idf below
        return CountVectorizer(vocabulary=vocabulary, **common)
    return TfidfVectorizer(sublinear_tf=RECIPE["sublinear_tf"], min_df=min_df, **common)


@dataclass
class LexicalModel:
    """A fitted TF-IDF + LR model over ``n_classes`` classes (rows of ``coef`` in class order)."""

    vocabulary: list[str]  # the n-grams, in column order
    idf: np.ndarray  # (V,)
    coef: np.ndarray  # (k, V)
    intercept: np.ndarray  # (k,)

    @property
    def n_classes(self) -> int:
        return int(self.coef.shape[0])

    def features(self, texts: Sequence[str]) -> Any:
        """Sublinear tf x idf, rows L2-normalised: what the fitted vectoriser gives."""
        from sklearn.preprocessing import normalize

        vec = _vectoriser(1, {t: i for i, t in enumerate(self.vocabulary)})
        x = vec.transform([str(t) for t in texts]).tocsr()
        x.data = 1.0 + np.log(x.data)
        x = x.multiply(self.idf.reshape(1, -1)).tocsr()
        return normalize(x, norm="l2", copy=False)

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.n_classes))
        return np.asarray(self.features(texts) @ self.coef.T) + self.intercept

    def log_proba(self, texts: Sequence[str]) -> np.ndarray:
        from bedside.engine.decision import log_softmax

        return log_softmax(self.logits(texts))

    def save(self, dest: Path) -> None:
        """``lexical.json`` (vocabulary, recipe) and ``lexical.safetensors`` (the arrays)."""
        from safetensors.numpy import save_file

        from bedside.engine.io import atomic_write

        dest.mkdir(parents=True, exist_ok=True)
        arrays = {n: np.ascontiguousarray(getattr(self, n), dtype=np.float64) for n in TENSORS}
        save_file(arrays, str(dest / "lexical.safetensors"))
        meta = {"recipe": RECIPE, "n_classes": self.n_classes, "vocabulary": self.vocabulary}
        atomic_write(dest / "lexical.json", json.dumps(meta))

    @classmethod
    def load(cls, src: Path) -> LexicalModel:
        from safetensors.numpy import load_file

        try:
            t = load_file(str(src / "lexical.safetensors"))
            meta = json.loads((src / "lexical.json").read_text())
            vocab = [str(v) for v in meta["vocabulary"]]
            model = cls(vocab, *(np.asarray(t[n], dtype=np.float64) for n in TENSORS))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise JobError(
                f"{src}: the lexical model (lexical.json + lexical.safetensors) could not be "
                f"read ({e}); expected the files a phase-2 job with lexical_blend writes.",
                error_class="invalid_input",
            ) from e
        v, (k, vc) = len(vocab), model.coef.shape
        if model.idf.shape != (v,) or vc != v or model.intercept.shape != (k,):
            raise JobError(
                f"{src}: the lexical model's arrays do not fit together (vocabulary {v}, idf "
                f"{model.idf.shape}, coef {model.coef.shape}, intercept {model.intercept.shape}).",
                error_class="invalid_input",
            )
        return model


def fit_tfidf(
    texts: Sequence[str], y: Sequence[int], n_classes: int, seed: int = 0
) -> LexicalModel:
    """Fit the recipe on ``texts`` with class indices ``y`` (0..n_classes-1; at least two
    distinct). ``min_df`` falls back to 1 on corpora where no term occurs twice."""
    from sklearn.linear_model import LogisticRegression

    texts = [str(t) for t in texts]
    labels = np.asarray(y, dtype=np.int64)
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} training texts but {len(labels)} labels.")
    vec = _vectoriser(int(RECIPE["min_df"]))
    try:
        x = vec.fit_transform(texts)
    except ValueError:  # tiny corpora: no term occurs twice
        vec = _vectoriser(1)
        x = vec.fit_transform(texts)
    lr = LogisticRegression(
        C=RECIPE["C"],
        class_weight=RECIPE["class_weight"],
        solver=RECIPE["solver"],
        max_iter=RECIPE["max_iter"],
        random_state=seed,
    )
    lr.fit(x, labels)
    v = len(vec.vocabulary_)
    coef = np.zeros((n_classes, v))
    icpt = np.full(n_classes, ABSENT)
    seen = np.asarray(lr.classes_, dtype=np.int64)
    if len(seen) == 2:  # sklearn keeps one row for a binary problem: +/- half of it
        coef[seen[1]], coef[seen[0]] = lr.coef_[0] / 2, -lr.coef_[0] / 2
        icpt[seen[1]], icpt[seen[0]] = lr.intercept_[0] / 2, -lr.intercept_[0] / 2
    else:
        coef[seen], icpt[seen] = lr.coef_, lr.intercept_
    vocab = [""] * v
    for term, col in vec.vocabulary_.items():
        vocab[col] = term
    return LexicalModel(vocab, np.asarray(vec.idf_, dtype=np.float64), coef, icpt)


def blend(model_scores: np.ndarray, lexical_log_proba: np.ndarray, weight: float) -> np.ndarray:
    """``(1 - weight) * log_softmax(model_scores) + weight * lexical_log_proba``."""
    from bedside.engine.decision import log_softmax

    if weight <= 0:
        return np.asarray(model_scores, dtype=np.float64)
    return (1.0 - weight) * log_softmax(model_scores) + weight * np.asarray(lexical_log_proba)


def job_lexical(
    texts: Sequence[str],
    y: np.ndarray,
    tr_idx: np.ndarray,
    va_idx: np.ndarray,
    fit_idx: np.ndarray,
    val_scores: np.ndarray,
    weight: float,
    n_classes: int,
    seed: int,
) -> tuple[np.ndarray, LexicalModel | None]:
    """Phase 2's side of the blend: the validation scores the decision rule is fitted on
    (blended with a lexical model fitted on the training part ``tr_idx`` only, so the
    validation rows stay unseen) and the lexical model refitted on ``fit_idx`` (what the phase-2
    model learned from) that is saved and applied to the holdout. Off, or fewer than two
    classes to learn from: ``(val_scores, None)``."""
    ys = np.asarray(y)
    if weight <= 0 or len(set(ys[fit_idx].tolist())) < 2:
        return val_scores, None
    if len(va_idx) and len(set(ys[tr_idx].tolist())) > 1:
        part = fit_tfidf([texts[i] for i in tr_idx], ys[tr_idx], n_classes, seed)
        val_scores = blend(val_scores, part.log_proba([texts[i] for i in va_idx]), weight)
    return val_scores, fit_tfidf([texts[i] for i in fit_idx], ys[fit_idx], n_classes, seed)
