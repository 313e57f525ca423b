"""The workspace's internal baseline: TF-IDF + logistic regression, scored like any submission.

Every corpus version gets one, so a vendor's number always sits beside "what a simple, free model
does on this data". The recipe is fixed on purpose (no tuning on the holdout, nor on anything held
back): word 1-2-grams, sublinear tf, ``min_df=2``, ``LogisticRegression(C=4, class_weight=
"balanced")`` so the small classes (digestive ~10 %) are not drowned by the large ones.
The baseline runs in-process (it is our own code, not a vendor's), so it needs no sandbox.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from bedside.engine import lexical
from bedside.errors import DataError, NotFoundError
from bedside.evaluation.results import baseline_results, record_result
from bedside.evaluation.robustness import check_edges, tercile_edges, word_counts
from bedside.evaluation.scorer import score

if TYPE_CHECKING:
    from bedside.data.corpus import Corpus
    from bedside.workspace import Workspace

BASELINE_LABEL = "internal baseline (TF-IDF + LR)"
# The recipe has one owner, shared with screening and phase 2's lexical blend.
RECIPE = lexical.RECIPE


def tfidf_baseline_probs(
    train_texts: Sequence[str],
    train_labels: Sequence[str],
    test_texts: Sequence[str],
    classes: Sequence[str],
    seed: int = 0,
) -> NDArray[np.float64]:
    """Fit the baseline on the training texts; return test probabilities in ``classes`` order.

    A class with no training rows gets probability 0.

    >>> p = tfidf_baseline_probs(["tumor cells", "tumor mass", "heart beat", "heart valve"],
    ...                          ["onc", "onc", "card", "card"], ["tumor growth"], ["onc", "card"])
    >>> bool(p[0, 0] > p[0, 1])
    True
    """
    if len(train_texts) != len(train_labels):
        raise ValueError(f"{len(train_texts)} training texts but {len(train_labels)} labels.")
    labels = [str(y) for y in train_labels]
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise DataError(
            f"training labels {unknown[:3]!r} are not workspace classes {list(classes)!r}."
        )
    if len(set(labels)) < 2:
        raise DataError(
            f"the baseline needs training rows of at least 2 classes, found {len(set(labels))}.",
            hint="Add a corpus with several labelled classes.",
        )
    column = {str(c): i for i, c in enumerate(classes)}
    model = lexical.fit_tfidf(train_texts, [column[y] for y in labels], len(classes), seed)
    out = np.exp(model.log_proba(list(test_texts)))
    seen = {column[y] for y in labels}
    out[:, [i for i in range(len(classes)) if i not in seen]] = 0.0
    return out / out.sum(axis=1, keepdims=True)


def length_edges(corpus: Corpus) -> list[float]:
    """Word-count tercile edges from the version's EDA, else computed on the holdout texts."""
    eda = (corpus.meta.get("report") or {}).get("eda") or {}
    raw = eda.get("length_terciles")
    if isinstance(raw, dict):
        raw = raw.get("edges")
    if isinstance(raw, list | tuple) and len(raw) == 2:
        try:
            return check_edges(raw)
        except (TypeError, ValueError):
            pass
    return tercile_edges(word_counts(corpus.holdout["text"]))


def score_on_holdout(
    corpus: Corpus, probs: NDArray[np.float64], resamples: int, seed: int = 0
) -> dict[str, Any]:
    """The trusted scorer on ``corpus``'s holdout, as every baseline row is scored.

    >>> score_on_holdout(corpus, probs, resamples=1000)["macro_f1"]  # doctest: +SKIP
    0.71
    """
    return score(
        list(corpus.holdout["label"]),
        probs,
        corpus.class_names,
        word_counts(corpus.holdout["text"]),
        length_edges(corpus),
        resamples=resamples,
        seed=seed,
    )


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (
        peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
    )  # bytes on macOS, KiB on Linux


def run_baseline(
    ws: Workspace, version: int | str | None = None, actor: str = "owner", force: bool = False
) -> int:
    """Train and score the baseline on a corpus version (default: the active one); returns the
    result id. An existing baseline for the version is returned unless ``force``.

    >>> rid = run_baseline(ws)  # doctest: +SKIP
    """
    from bedside.data.corpus import load_corpus

    return _run_on(ws, load_corpus(ws, version), actor=actor, force=force)


def _run_on(ws: Workspace, corpus: Corpus, *, actor: str, force: bool) -> int:
    if not force and (existing := baseline_results(ws, corpus.version_id)):
        return int(existing[-1]["id"])
    policy = ws.policy()
    seed = 0
    start = time.perf_counter()
    classes = corpus.class_names
    probs = tfidf_baseline_probs(
        list(corpus.train["text"]),
        list(corpus.train["label"]),
        list(corpus.holdout["text"]),
        classes,
        seed=seed,
    )
    wall_s = time.perf_counter() - start
    metrics = score_on_holdout(corpus, probs, resamples=policy.bootstrap_resamples, seed=seed)
    provenance = {
        "bundle_hash": None,
        "recipe": {**RECIPE, "seed": seed},
        "compute": {"wall_s": round(wall_s, 3), "peak_rss_mb": round(_peak_rss_mb(), 1)},
        "wall_s": round(wall_s, 3),
        "peak_memory_mb": round(_peak_rss_mb(), 1),
        "tier": "trusted",  # our own code, run in-process; no vendor code involved
        "n_train": len(corpus.train),
    }
    return record_result(
        ws,
        corpus=corpus,
        phase=0,
        model_label=BASELINE_LABEL,
        metrics=metrics,
        provenance=provenance,
        probs=probs,
        row_ids=[str(r) for r in corpus.holdout["row_id"]],
        actor=actor,
    )


def ensure_baselines(ws: Workspace, actor: str = "system") -> int | None:
    """Make sure the active corpus version has a baseline result; returns its id (``None`` when
    the workspace has no active corpus yet).

    >>> ensure_baselines(ws)  # doctest: +SKIP
    1
    """
    from bedside.data.corpus import load_corpus

    try:
        corpus = load_corpus(ws)
    except NotFoundError:
        return None
    return _run_on(ws, corpus, actor=actor, force=False)
