"""The internal TF-IDF + LR baseline: separable data, once per corpus version, the real dev corpus."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bedside.data.corpus import group_key, load_corpus
from bedside.errors import DataError
from bedside.evaluation.baseline import (
    BASELINE_LABEL,
    ensure_baselines,
    length_edges,
    run_baseline,
    tfidf_baseline_probs,
)
from bedside.evaluation.metrics import macro_f1
from bedside.evaluation.results import baseline_results, get_result
from bedside.workspace import Workspace

from .conftest import add_corpus, synthetic_frame


def test_baseline_beats_chance_on_separable_corpus(corpus_ws: Workspace) -> None:
    rid = run_baseline(corpus_ws)
    row = get_result(corpus_ws, rid)
    m = row["metrics"]
    assert (
        row["phase"] == 0 and row["submission_id"] is None and row["model_label"] == BASELINE_LABEL
    )
    assert m["macro_f1"] > 0.8  # chance is ~0.2
    assert m["n"] == 150
    assert m["robustness"]["edges"] == [20.0, 40.0]  # from the EDA report
    assert m["resamples"] == corpus_ws.policy().bootstrap_resamples
    prov = row["provenance"]
    assert prov["recipe"]["C"] == 4.0 and prov["tier"] == "trusted"
    assert prov["corpus_hash"] == "a" * 64
    assert prov["wall_s"] >= 0 and prov["peak_memory_mb"] > 0


def test_once_per_version_unless_forced(corpus_ws: Workspace) -> None:
    first = run_baseline(corpus_ws)
    assert run_baseline(corpus_ws) == first
    assert ensure_baselines(corpus_ws) == first
    forced = run_baseline(corpus_ws, force=True)
    assert forced != first
    assert [r["id"] for r in baseline_results(corpus_ws)] == [first, forced]
    assert run_baseline(corpus_ws) == forced  # the latest one


def test_ensure_baselines_follows_the_active_version(corpus_ws: Workspace) -> None:
    first = ensure_baselines(corpus_ws)
    v2 = add_corpus(
        corpus_ws, synthetic_frame(200, 5, "t"), synthetic_frame(100, 6, "h"), digest="c" * 64
    )
    second = ensure_baselines(corpus_ws)
    assert second != first
    assert get_result(corpus_ws, second)["corpus_version_id"] == v2
    assert run_baseline(corpus_ws, version=1) == first  # by id
    assert run_baseline(corpus_ws, version="ccc") == second  # by hash prefix


def test_ensure_baselines_without_corpus(ws: Workspace) -> None:
    assert ensure_baselines(ws) is None


def test_length_edges_fallback(corpus_ws: Workspace) -> None:
    add_corpus(
        corpus_ws,
        synthetic_frame(60, 7, "t"),
        synthetic_frame(90, 8, "h"),
        report={},
        digest="d" * 64,
    )
    corpus = load_corpus(corpus_ws)
    lo, hi = length_edges(corpus)
    counts = corpus.holdout["text"].str.split().str.len()
    assert (counts <= lo).mean() == pytest.approx(1 / 3, abs=0.08)
    assert (counts > hi).mean() == pytest.approx(1 / 3, abs=0.08)
    corpus.meta["report"] = {"eda": {"length_terciles": {"edges": [10, 30]}}}
    assert length_edges(corpus) == [10.0, 30.0]


def test_probs_shape_and_unseen_class() -> None:
    train = ["tumor tumor cells", "tumor mass grows", "heart beat fast", "heart valve leak"]
    probs = tfidf_baseline_probs(train, ["a", "a", "c", "c"], ["tumor", "heart"], ["a", "b", "c"])
    assert probs.shape == (2, 3)
    assert probs[:, 1].tolist() == [0.0, 0.0]  # no training rows for "b"
    assert probs.sum(axis=1) == pytest.approx([1.0, 1.0])
    assert probs[0].argmax() == 0 and probs[1].argmax() == 2


def test_probs_refuses_one_class_and_unknown_labels() -> None:
    with pytest.raises(DataError, match="at least 2 classes"):
        tfidf_baseline_probs(["x y", "y z"], ["a", "a"], ["x"], ["a", "b"])
    with pytest.raises(DataError, match="not workspace classes"):
        tfidf_baseline_probs(["x y", "y z"], ["a", "q"], ["x"], ["a", "b"])


def test_dev_corpus_group_split(shared_data: Path) -> None:
    """The real dev corpus, group-aware 80/20 split: TF-IDF + LR lands near the published ~0.55-0.60."""
    from sklearn.model_selection import GroupShuffleSplit

    names: dict[int, str] = dict(pd.read_csv(shared_data / "labels.csv").itertuples(index=False))
    df = pd.read_csv(shared_data / "dev.csv")
    df["label"] = df["condition_label"].map(names)
    groups = df["medical_abstract"].map(group_key)
    train_idx, test_idx = next(
        GroupShuffleSplit(n_splits=1, test_size=0.2, random_state=0).split(df, groups=groups)
    )
    assert not set(groups.iloc[train_idx]) & set(groups.iloc[test_idx])
    classes = list(names.values())
    probs = tfidf_baseline_probs(
        df["medical_abstract"].iloc[train_idx].tolist(),
        df["label"].iloc[train_idx].tolist(),
        df["medical_abstract"].iloc[test_idx].tolist(),
        classes,
    )
    y = np.array([classes.index(v) for v in df["label"].iloc[test_idx]])
    score = macro_f1(y, probs.argmax(axis=1), len(classes))
    print(f"TF-IDF + LR baseline on dev.csv (group 80/20 split): macro-F1 {score:.3f}")
    assert 0.45 <= score <= 0.75
