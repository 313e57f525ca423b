from __future__ import annotations

import time
from pathlib import Path

import pytest

from bedside.data.synthetic import CLASSES, SHARES, class_counts, synthesize, write_synthetic
from bedside.errors import ConfigError


@pytest.fixture(scope="module")
def default_df():  # type: ignore[no-untyped-def]
    return synthesize()


def test_class_shares(default_df) -> None:  # type: ignore[no-untyped-def]
    assert sorted(default_df["label"].unique()) == sorted(CLASSES)
    shares = default_df["label"].value_counts(normalize=True)
    for c in CLASSES:
        assert abs(shares[c] - SHARES[c]) < 0.001
    assert class_counts(1000) == {
        "neoplasms": 219,
        "digestive system diseases": 103,
        "nervous system diseases": 133,
        "cardiovascular diseases": 211,
        "general pathological conditions": 334,
    }


def test_length_shape(default_df) -> None:  # type: ignore[no-untyped-def]
    words = default_df["text"].str.split().str.len()
    assert 170 <= words.mean() <= 195
    assert words.min() >= 24 and words.max() <= 600
    assert 60 <= words.std() <= 95
    by = words.groupby(default_df["label"]).mean()
    assert by["cardiovascular diseases"] > by["neoplasms"] > by["nervous system diseases"]
    assert by["cardiovascular diseases"] - by["nervous system diseases"] > 25


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    write_synthetic(a, n=300, seed=5)
    write_synthetic(b, n=300, seed=5)
    write_synthetic(c, n=300, seed=6)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_ambiguous_share_matters() -> None:
    clean = synthesize(n=300, seed=1, ambiguous_share=0.0)
    mixed = synthesize(n=300, seed=1, ambiguous_share=1.0)
    assert list(clean["label"]) == list(mixed["label"])
    assert list(clean["text"]) != list(mixed["text"])


@pytest.mark.parametrize("kw", [{"n": 3}, {"ambiguous_share": 1.5}])
def test_bad_arguments(kw: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError):
        synthesize(**kw)


@pytest.mark.slow
def test_tfidf_macro_f1_in_band(default_df) -> None:  # type: ignore[no-untyped-def]
    """Hard enough to be interesting, easy enough to learn: 0.75 <= macro-F1 <= 0.92."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import train_test_split

    start = time.perf_counter()
    tr, te = train_test_split(
        default_df, test_size=0.2, stratify=default_df["label"], random_state=0
    )
    vec = TfidfVectorizer(sublinear_tf=True, min_df=2)
    model = LogisticRegression(class_weight="balanced", max_iter=2000)
    model.fit(vec.fit_transform(tr["text"]), tr["label"])
    f1 = f1_score(te["label"], model.predict(vec.transform(te["text"])), average="macro")
    assert 0.75 <= f1 <= 0.92, f1
    assert time.perf_counter() - start < 30
