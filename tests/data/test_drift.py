"""Drift between corpus versions: tests that can fail, k-suppression, refusals with the reason."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bedside.data.corpus import ClassInfo, load_corpus, write_version_files
from bedside.data.drift import corpus_drift, js_divergence
from bedside.errors import DataError
from bedside.store import schema
from bedside.store.store import utcnow
from bedside.workspace import Workspace
from tests.evaluation.conftest import CLASSES, add_corpus, synthetic_frame


def _appended(ws: Workspace, extra: pd.DataFrame, digest: str) -> int:
    """A new active version: the active one plus ``extra`` (all in the holdout)."""
    v1 = load_corpus(ws)
    return add_corpus(
        ws, v1.train, pd.concat([v1.holdout, extra], ignore_index=True), digest=digest
    )


@pytest.fixture
def v1(ws: Workspace) -> Workspace:
    add_corpus(ws, synthetic_frame(300, 1, "t"), synthetic_frame(150, 2, "h"))
    return ws


def test_a_like_batch_shows_no_significant_drift(v1: Workspace) -> None:
    v2 = _appended(v1, synthetic_frame(200, 3, "n"), "b" * 64)
    d = corpus_drift(load_corpus(v1, 1), load_corpus(v1, v2), k=10)
    assert d["compared"] == "added rows" and d["rows_compared"] == {"a": 450, "b": 200}
    assert not d["shares"]["significant"] and not d["lengths"]["significant"]
    assert d["vocabulary"]["ratio_to_noise"] < 3
    assert "did not change significantly" in d["reading"][0]
    json.dumps(d, allow_nan=False)  # strict JSON for the API


def test_a_skewed_longer_batch_is_flagged_in_words(v1: Workspace) -> None:
    extra = synthetic_frame(200, 4, "n")
    extra["label"] = CLASSES[0].name  # every new abstract is a neoplasm ...
    extra["text"] = extra["text"] + " oncology tumour resection margin " * 12  # ... and long
    v2 = _appended(v1, extra, "c" * 64)
    d = corpus_drift(load_corpus(v1, 1), load_corpus(v1, v2), k=10)
    assert d["shares"]["significant"] and d["shares"]["p_value"] < 1e-6
    assert d["lengths"]["significant"] and d["lengths"]["b"]["p50"] > d["lengths"]["a"]["p50"]
    assert d["vocabulary"]["ratio_to_noise"] > 3
    assert d["vocabulary"]["rising"][0]["term"] in {"oncology", "tumour", "resection", "margin"}
    assert "changed significantly" in d["reading"][0] and "neoplasms" in d["reading"][0]
    # the new side has no row of the other classes: zero is shown as 0, not hidden
    assert {c["b"] for c in d["shares"]["classes"][1:]} == {0}


def test_small_counts_are_suppressed_and_too_few_rows_refused(v1: Workspace) -> None:
    extra = synthetic_frame(40, 5, "n")
    extra.loc[:3, "label"] = CLASSES[1].name
    extra.loc[4:, "label"] = CLASSES[0].name
    v2 = _appended(v1, extra, "d" * 64)
    d = corpus_drift(load_corpus(v1, 1), load_corpus(v1, v2), k=10)
    digestive = next(c for c in d["shares"]["classes"] if c["name"] == CLASSES[1].name)
    assert digestive["b"] == "<10" and digestive["share_b_pct"] is None
    for t in d["vocabulary"]["rising"] + d["vocabulary"]["falling"]:
        assert isinstance(t["term"], str)
    tiny = _appended(v1, synthetic_frame(5, 6, "z"), "e" * 64)
    with pytest.raises(DataError, match="has <10 rows; drift is shown for k = 10"):
        corpus_drift(load_corpus(v1, v2), load_corpus(v1, tiny), k=10)


def test_versions_with_different_class_sets_are_refused_with_the_classes(ws: Workspace) -> None:
    add_corpus(ws, synthetic_frame(100, 1, "t"), synthetic_frame(60, 2, "h"))
    train, hold = synthetic_frame(100, 7, "u"), synthetic_frame(60, 8, "w")
    other = [*CLASSES[:4], ClassInfo("9", "other conditions", "")]
    for df in (train, hold):
        df.loc[df["label"] == CLASSES[4].name, "label"] = "other conditions"
    write_version_files(ws.root / "corpora/x", train, hold, other)
    with ws.store.write() as conn:
        conn.execute(schema.corpus_versions.update().values(active=False))
        vid = conn.execute(
            schema.corpus_versions.insert().values(
                hash="f" * 64,
                created_at=utcnow(),
                path="corpora/x",
                n_train=100,
                n_holdout=60,
                classes=[c.to_dict() for c in other],
                split={},
                source={},
                report={},
                active=True,
            )
        ).inserted_primary_key[0]
    with pytest.raises(DataError, match="different class sets.*'general pathological conditions'"):
        corpus_drift(load_corpus(ws, 1), load_corpus(ws, int(vid)))


def test_js_divergence_known_values() -> None:
    assert js_divergence([1, 0], [0, 1]) == 1.0
    assert js_divergence([1, 1], [1, 1]) == 0.0
    assert 0 < js_divergence([3, 1], [1, 3]) < 1
    assert np.isfinite(js_divergence([1e-9, 1], [1, 1e-9]))
