"""Scored results in the store, and the owner-only per-record predictions behind them.

A result row holds the aggregate metrics (``evaluation.scorer.score``) and the provenance; the
per-record probabilities go to ``WS/artefacts/predictions/RESULT_ID.npz`` (mode 0600, arrays
``row_ids`` and ``probs``) so that paired tests can be run later. No API returns that file.

A job is scored once: ``record_result`` for a job that already has a result returns that result's
id and changes nothing. The check and the insert run in one ``BEGIN IMMEDIATE`` transaction, and the
unique constraint on ``results.job_id`` backs it up on other databases.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from bedside.errors import DataError, NotFoundError
from bedside.evaluation.paired import paired_bootstrap
from bedside.evaluation.scorer import label_indices
from bedside.store import audit, schema
from bedside.store.store import utcnow

if TYPE_CHECKING:
    from bedside.data.corpus import Corpus
    from bedside.workspace import Workspace

PREDICTIONS_DIR = "predictions"


def predictions_path(ws: Workspace, result_id: int) -> Path:
    """Where a result's per-record predictions live (owner-only)."""
    return ws.artefacts_dir / PREDICTIONS_DIR / f"{int(result_id)}.npz"


def _save_npz(dest: Path, row_ids: Sequence[str], probs: NDArray[np.float64]) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # mkstemp creates the file 0600 from the start: the predictions are never world-readable.
    fd, tmp = tempfile.mkstemp(prefix=".pred-", suffix=".npz", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(
                f, row_ids=np.asarray([str(r) for r in row_ids], dtype=np.str_), probs=probs
            )
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _existing_for_job(conn: Connection, job_id: int) -> int | None:
    t = schema.results
    found = conn.execute(select(t.c.id).where(t.c.job_id == job_id)).scalar()
    return None if found is None else int(found)


def record_result(
    ws: Workspace,
    *,
    corpus: Corpus,
    phase: int,
    model_label: str,
    metrics: dict[str, Any],
    provenance: dict[str, Any],
    probs: ArrayLike,
    row_ids: Sequence[str],
    submission_id: int | None = None,
    job_id: int | None = None,
    actor: str = "system",
    on_recorded: Callable[[Connection, int], None] | None = None,
) -> int:
    """Store a scored result, its predictions and an audit entry; returns the result id.

    ``on_recorded(conn, result_id)`` runs inside the same transaction (rows that belong to the
    result, e.g. a baseline's registration, are written with it or not at all).

    >>> rid = record_result(ws, corpus=c, phase=1, model_label="m", metrics=m, provenance={},
    ...                     probs=p, row_ids=ids, job_id=7)  # doctest: +SKIP
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] != len(row_ids):
        raise ValueError(
            f"probs must be (rows, classes) with {len(row_ids)} rows, got shape {p.shape}."
        )
    if phase not in (0, 1, 2):
        raise ValueError(f"phase must be 0 (baseline), 1 or 2, got {phase}.")
    prov = {
        "corpus_hash": corpus.hash,
        "corpus_version_id": corpus.version_id,
        **provenance,
    }
    t = schema.results
    written: Path | None = None
    try:
        with ws.store.write() as conn:
            if job_id is not None and (existing := _existing_for_job(conn, job_id)) is not None:
                return existing  # nothing is scored twice
            inserted = conn.execute(
                t.insert().values(
                    submission_id=submission_id,
                    job_id=job_id,
                    corpus_version_id=corpus.version_id,
                    phase=phase,
                    model_label=model_label,
                    macro_f1=float(metrics["macro_f1"]),
                    metrics=metrics,
                    provenance=prov,
                    created_at=utcnow(),
                )
            ).inserted_primary_key
            assert inserted is not None
            result_id = int(inserted[0])
            written = predictions_path(ws, result_id)
            _save_npz(written, row_ids, p)
            audit.append(
                conn,
                actor,
                "result.recorded",
                {
                    "result_id": result_id,
                    "submission_id": submission_id,
                    "job_id": job_id,
                    "phase": phase,
                    "model_label": model_label,
                    "corpus_hash": corpus.hash,
                    "n": metrics.get("n"),
                    "macro_f1": metrics["macro_f1"],
                },
            )
            if on_recorded is not None:
                on_recorded(conn, result_id)
    except IntegrityError:
        if written is not None:
            written.unlink(missing_ok=True)
        if job_id is not None:  # another writer scored the job first (non-SQLite databases)
            with ws.store.read() as conn:
                if (existing := _existing_for_job(conn, job_id)) is not None:
                    return existing
        raise
    except BaseException:
        if written is not None:
            written.unlink(missing_ok=True)
        raise
    return result_id


def get_result(ws: Workspace, result_id: int) -> dict[str, Any]:
    """One result row as a dict; ``NotFoundError`` if there is none."""
    t = schema.results
    with ws.store.read() as conn:
        row = conn.execute(select(t).where(t.c.id == result_id)).mappings().first()
    if row is None:
        raise NotFoundError(
            f"no result with id {result_id}.",
            hint="List results with `bedside results SUBMISSION_ID`.",
        )
    return dict(row)


def load_result_predictions(
    ws: Workspace, result_id: int, row_ids: Sequence[str] | None = None
) -> tuple[list[str], NDArray[np.float64]]:
    """The stored ``(row_ids, probs)`` of a result; with ``row_ids``, reordered to that order.

    >>> ids, probs = load_result_predictions(ws, 3)  # doctest: +SKIP
    """
    path = predictions_path(ws, result_id)
    if not path.exists():
        raise NotFoundError(
            f"no stored predictions for result {result_id} (expected {path}).",
            hint="They are written when a result is recorded; a restored store may lack its artefacts.",
        )
    with np.load(path, allow_pickle=False) as z:
        ids = [str(r) for r in z["row_ids"]]
        probs = np.asarray(z["probs"], dtype=np.float64)
    if row_ids is None:
        return ids, probs
    position = {r: i for i, r in enumerate(ids)}
    missing = [r for r in row_ids if r not in position]
    if missing or len(row_ids) != len(ids):
        raise DataError(
            f"result {result_id} has predictions for {len(ids)} rows, which do not match the {len(row_ids)} "
            f"rows asked for ({len(missing)} missing).",
            hint="Compare results scored on the same corpus version only.",
        )
    return list(row_ids), probs[[position[r] for r in row_ids]]


def _rows(ws: Workspace, *conditions: Any) -> list[dict[str, Any]]:
    t = schema.results
    with ws.store.read() as conn:
        return [
            dict(r) for r in conn.execute(select(t).where(*conditions).order_by(t.c.id)).mappings()
        ]


def results_for_submission(ws: Workspace, submission_id: int) -> list[dict[str, Any]]:
    """Every result of a submission (phase 1, phase 2), oldest first.

    >>> [r["phase"] for r in results_for_submission(ws, 1)]  # doctest: +SKIP
    [1, 2]
    """
    return _rows(ws, schema.results.c.submission_id == submission_id)


def baseline_results(
    ws: Workspace, corpus_version_id: int | None = None, kind: str | None = "tfidf"
) -> list[dict[str, Any]]:
    """Baseline results (phase 0, no submission) of one kind, oldest first; optionally of one
    corpus version. ``kind`` is the provenance's ``baseline``: ``"tfidf"`` (the internal baseline,
    the default), ``"current"`` (the owner's current classifier) or ``None`` for both.

    >>> baseline_results(ws, corpus_version_id=1)[-1]["model_label"]  # doctest: +SKIP
    'internal baseline (TF-IDF + LR)'
    """
    t = schema.results
    conds = [t.c.submission_id.is_(None), t.c.phase == 0]
    if corpus_version_id is not None:
        conds.append(t.c.corpus_version_id == corpus_version_id)
    rows = _rows(ws, *conds)
    if kind is None:
        return rows
    return [r for r in rows if ((r.get("provenance") or {}).get("baseline") or "tfidf") == kind]


def compare_results(
    ws: Workspace,
    corpus: Corpus,
    result_a: int,
    result_b: int,
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Paired bootstrap of macro-F1(b) - macro-F1(a) for two results on ``corpus``'s holdout.

    >>> compare_results(ws, corpus, 3, 5)["ci"]  # doctest: +SKIP
    [-0.01, 0.03]
    """
    for rid in (result_a, result_b):
        row = get_result(ws, rid)
        if row["corpus_version_id"] != corpus.version_id:
            raise DataError(
                f"result {rid} was scored on corpus version {row['corpus_version_id']}, not {corpus.version_id}.",
                hint="A paired test needs both results on the same holdout.",
            )
    ids = [str(r) for r in corpus.holdout["row_id"]]
    y = label_indices(list(corpus.holdout["label"]), corpus.class_names)
    _, pa = load_result_predictions(ws, result_a, ids)
    _, pb = load_result_predictions(ws, result_b, ids)
    k = len(corpus.class_names)
    return paired_bootstrap(
        y, pa.argmax(axis=1), pb.argmax(axis=1), k, resamples=resamples, seed=seed
    )
