"""Results in the store: predictions kept owner-only, audited, a job scored once."""

from __future__ import annotations

import stat
from collections.abc import Callable

import numpy as np
import pytest

from bedside.data.corpus import load_corpus
from bedside.errors import DataError, NotFoundError
from bedside.evaluation.results import (
    baseline_results,
    compare_results,
    get_result,
    load_result_predictions,
    predictions_path,
    record_result,
    results_for_submission,
)
from bedside.evaluation.robustness import word_counts
from bedside.evaluation.scorer import score
from bedside.store import audit
from bedside.workspace import Workspace


def _probs(corpus, accuracy: float, seed: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    names = corpus.class_names
    t = np.array([names.index(v) for v in corpus.holdout["label"]])
    pred = np.where(rng.random(t.size) < accuracy, t, rng.integers(0, len(names), t.size))
    probs = np.full((t.size, len(names)), 0.05)
    probs[np.arange(t.size), pred] = 0.8
    return probs


def _record(ws: Workspace, probs: np.ndarray, **kw):  # type: ignore[no-untyped-def]
    corpus = load_corpus(ws)
    metrics = score(
        list(corpus.holdout["label"]),
        probs,
        corpus.class_names,
        word_counts(corpus.holdout["text"]),
        [20, 40],
        resamples=100,
    )
    ids = list(corpus.holdout["row_id"])
    rid = record_result(
        ws,
        corpus=corpus,
        model_label="m",
        metrics=metrics,
        probs=probs,
        row_ids=ids,
        provenance={"bundle_hash": "b" * 64, "tier": "A"},
        **kw,
    )
    return rid, corpus, metrics


def test_record_and_read_back(
    corpus_ws: Workspace, make_submission: Callable[[int], tuple[int, int]]
) -> None:
    corpus = load_corpus(corpus_ws)
    sid, jid = make_submission(corpus.version_id)
    probs = _probs(corpus, 0.8, 0)
    rid, corpus, metrics = _record(
        corpus_ws, probs, phase=1, submission_id=sid, job_id=jid, actor="worker"
    )

    row = get_result(corpus_ws, rid)
    assert row["macro_f1"] == metrics["macro_f1"]
    assert row["metrics"] == metrics
    assert row["provenance"]["corpus_hash"] == corpus.hash
    assert row["provenance"]["bundle_hash"] == "b" * 64
    assert (row["phase"], row["submission_id"], row["job_id"]) == (1, sid, jid)
    assert [r["id"] for r in results_for_submission(corpus_ws, sid)] == [rid]
    assert baseline_results(corpus_ws) == []

    path = predictions_path(corpus_ws, rid)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    ids, stored = load_result_predictions(corpus_ws, rid)
    assert ids == list(corpus.holdout["row_id"])
    assert np.array_equal(stored, probs)
    rev = ids[::-1]
    _, reordered = load_result_predictions(corpus_ws, rid, rev)
    assert np.array_equal(reordered, probs[::-1])

    entry = audit.entries(corpus_ws.store)[-1]
    assert entry["action"] == "result.recorded" and entry["actor"] == "worker"
    assert entry["payload"]["result_id"] == rid
    assert "per_class" not in entry["payload"]  # aggregate only
    assert audit.verify(corpus_ws.store)[0]


def test_a_job_is_scored_once(
    corpus_ws: Workspace, make_submission: Callable[[int], tuple[int, int]]
) -> None:
    corpus = load_corpus(corpus_ws)
    sid, jid = make_submission(corpus.version_id)
    first, _, _ = _record(corpus_ws, _probs(corpus, 0.8, 0), phase=1, submission_id=sid, job_id=jid)
    n_audit = len(audit.entries(corpus_ws.store))
    second, _, _ = _record(
        corpus_ws, _probs(corpus, 0.3, 1), phase=1, submission_id=sid, job_id=jid
    )
    assert second == first
    assert len(results_for_submission(corpus_ws, sid)) == 1
    assert len(audit.entries(corpus_ws.store)) == n_audit
    assert sorted(p.name for p in predictions_path(corpus_ws, first).parent.iterdir()) == [
        f"{first}.npz"
    ]


def test_compare_results(corpus_ws: Workspace) -> None:
    corpus = load_corpus(corpus_ws)
    weak, _, _ = _record(corpus_ws, _probs(corpus, 0.3, 0), phase=0)
    strong, _, _ = _record(corpus_ws, _probs(corpus, 0.95, 1), phase=0)
    r = compare_results(corpus_ws, corpus, weak, strong, resamples=200)
    assert r["delta"] > 0 and r["ci"][0] > 0
    same = compare_results(corpus_ws, corpus, weak, weak, resamples=200)
    assert same["delta"] == 0.0


def test_errors(corpus_ws: Workspace) -> None:
    corpus = load_corpus(corpus_ws)
    with pytest.raises(NotFoundError, match="no result with id 99"):
        get_result(corpus_ws, 99)
    with pytest.raises(NotFoundError, match="no stored predictions"):
        load_result_predictions(corpus_ws, 99)
    rid, _, _ = _record(corpus_ws, _probs(corpus, 0.5, 0), phase=0)
    with pytest.raises(DataError, match="do not match"):
        load_result_predictions(corpus_ws, rid, ["x"])
    with pytest.raises(ValueError, match="phase"):
        _record(corpus_ws, _probs(corpus, 0.5, 0), phase=3)
