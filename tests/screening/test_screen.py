"""Deploy, screen through the real sandbox (torch and onnxruntime), shadow mode, ONNX vs torch,
and every bad input the issue names."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from bedside.errors import ConfigError, DataError, NotFoundError
from bedside.jobs.queue import SqlQueue
from bedside.sandbox.launch import BwrapLauncher
from bedside.screening.inputs import stage_input
from bedside.screening.models import deploy, set_targets
from bedside.screening.runs import create_run, get_run, realised_for_run, results_path, run_now
from bedside.store import audit, schema
from tests.jobs.support import CLASSES, make_workspace
from tests.sandbox.conftest import require_tier
from tests.screening.conftest import Finished, write_csv

DIG = "digestive system diseases"


def _holdout(f: Finished) -> tuple[list[str], list[str], list[str]]:
    from bedside.data.corpus import load_corpus

    c = load_corpus(f.ws)
    return list(c.holdout["row_id"].astype(str)), list(c.holdout["text"]), list(c.holdout["label"])


def _deployed(f: Finished, target: float = 0.9) -> int:
    m = deploy(f.ws, f.submission_id)
    return set_targets(f.ws, m.id, {DIG: target}).id


def test_deploy_pins_bundle_corpus_and_rule_and_is_audited(finished: Finished) -> None:
    m = deploy(finished.ws, finished.submission_id)
    assert m.bundle_hash == "classifier-bundle-hash" and m.decision["rule"] == "argmax"
    assert (
        m.corpus_hash.startswith("c0ffee") and (m.model_dir(finished.ws) / "config.json").is_file()
    )
    assert [e["action"] for e in audit.entries(finished.ws.store)][-1] == "screening.deploy"


def test_deploy_refuses_unknown_and_failed_submissions(tmp_path: Path) -> None:
    ws, sub, jobs = make_workspace(tmp_path / "ws")
    with pytest.raises(NotFoundError, match="no submission 99"):
        deploy(ws, 99)
    q = SqlQueue(ws.store)
    assert q.claim_job(jobs[0], "t", 60) is not None
    q.fail(jobs[0], "t", "out_of_memory", "boom")
    assert q.claim("t", 60) is None  # phase 2 fails with its dependency
    with pytest.raises(ConfigError, match=r"phase 2 of submission 1 is failed \(out_of_memory\)"):
        deploy(ws, sub)


def test_targets_report_on_the_half_they_did_not_tune_on(finished: Finished) -> None:
    mid = _deployed(finished)
    from bedside.screening.models import get_model

    m = get_model(finished.ws, mid)
    assert m.points is not None
    (p,) = m.points.points
    assert p.n_report == m.points.n_reporting == 30 and m.points.n_tuning == 30
    assert p.threshold is not None and p.workload_per_1000 is not None


def test_bad_screening_files_are_refused_whole(finished: Finished, tmp_path: Path) -> None:
    _deployed(finished)
    ws = finished.ws
    nocol = tmp_path / "nocol.csv"
    nocol.write_text("abstract\nsome text\n")
    with pytest.raises(DataError, match="no text column 'text'; its columns are: abstract"):
        create_run(ws, nocol)
    empty = write_csv(tmp_path / "empty.csv", ["fine text", "", "   ", "more"])
    with pytest.raises(
        DataError, match=r"2 of 4 rows have a missing or empty 'text' \(lines 3, 4\)"
    ):
        create_run(ws, empty)
    dup = write_csv(tmp_path / "dup.csv", ["a", "b", "c"], ["1", "2", "1"])
    with pytest.raises(DataError, match=r"ids occur more than once.*lines 2, 4"):
        create_run(ws, dup)
    bad_label = write_csv(tmp_path / "lab.csv", ["a", "b"], ["1", "2"], old=["neoplasms", "flu"])
    with pytest.raises(DataError, match="'flu' \\(1 rows\\)"):
        create_run(ws, bad_label, shadow_column="old")
    header_only = tmp_path / "h.csv"
    header_only.write_text("text,row_id\n")
    with pytest.raises(DataError, match="no rows"):
        create_run(ws, header_only)
    with pytest.raises(DataError, match="no screening file"):
        create_run(ws, tmp_path / "missing.csv")
    with ws.store.read() as conn:  # nothing half-accepted: no run, no job left behind
        assert conn.execute(select(schema.screening_runs)).first() is None
        assert (
            conn.execute(select(schema.jobs).where(schema.jobs.c.kind == "screen")).first() is None
        )


def test_screening_needs_targets_and_a_model(tmp_path: Path, finished: Finished) -> None:
    f = write_csv(tmp_path / "x.csv", ["a"])
    with pytest.raises(NotFoundError, match="no screening model deployed"):
        create_run(finished.ws, f)
    deploy(finished.ws, finished.submission_id)
    with pytest.raises(ConfigError, match="no recall targets"):
        create_run(finished.ws, f)


def test_a_large_file_is_staged_in_bounded_chunks(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    n = 25_000
    src = tmp_path / "big.csv"
    with src.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text"])
        w.writerows([f"abstract number {i} about the liver"] for i in range(n))
    staged = stage_input(src, tmp_path / "run", classes=list(CLASSES), chunk_rows=4_000)
    pf = pq.ParquetFile(staged.paths["screen"])
    assert staged.n_rows == n and staged.chunks == 7 and pf.metadata.num_row_groups == 7
    assert pf.read_row_group(6).num_rows == n - 6 * 4_000
    assert pf.read_row_group(0).column("row_id")[0].as_py() == "line-2"


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_screening_in_the_sandbox_with_shadow_and_onnx(finished: Finished, tmp_path: Path) -> None:
    require_tier("A")
    from bedside.engine.inference import load_predictor
    from bedside.screening.export import export_onnx
    from bedside.screening.models import get_model

    ws = finished.ws
    mid = _deployed(finished)
    ids, texts, labels = _holdout(finished)
    old = ["neoplasms"] * len(ids)  # the current classifier puts everything in one class
    src = write_csv(tmp_path / "new.csv", texts, ids, old=old)
    launcher = BwrapLauncher()
    run = create_run(ws, src, shadow_column="old")
    outcome = run_now(ws, run.id, launcher=launcher, progress=False)
    assert outcome.state == "done" and outcome.tier == "A"
    done = get_run(ws, run.id)
    rows = _rows(results_path(ws, run.id))
    assert [r["row_id"] for r in rows] == ids
    m = get_model(ws, mid)
    pred = load_predictor(m.model_dir(ws), ws.bundles_dir / m.bundle_hash)
    expect = pred.predict_proba(texts)
    got = np.array([[float(r[f"p_{c}"]) for c in CLASSES] for r in rows])
    assert np.abs(got - expect).max() < 1e-5  # the sandbox ran the same model
    t = m.thresholds()[DIG]
    need = [int(r["needs_review"]) for r in rows]
    assert need == [int(p >= t) for p in got[:, 1]]
    assert done.summary["needs_review"] == sum(need) and done.summary["n"] == len(ids)
    sh = done.summary["shadow"]
    pred_cls = [r["predicted_class"] for r in rows]
    assert sh["agree"] == sum(p == "neoplasms" for p in pred_cls)
    assert sh["missed_by_current"][DIG] == sum(need)  # the current one never says digestive

    info = export_onnx(ws, finished.submission_id)
    assert info["max_abs_diff"] < 1e-4 and info["checked_texts"] == len(ids)
    card = (m.onnx_dir(ws) / "README.md").read_text()
    assert card.startswith("---\n") and "## Operating points" in card and "## Intended use" in card
    run2 = create_run(ws, src, runtime="onnx", shadow="baseline")
    assert run_now(ws, run2.id, launcher=launcher, progress=False).state == "done"
    got2 = np.array(
        [[float(r[f"p_{c}"]) for c in CLASSES] for r in _rows(results_path(ws, run2.id))]
    )
    assert np.abs(got2 - expect).max() < 1e-4
    assert get_run(ws, run2.id).summary["shadow"]["source"] == "internal baseline"

    # reviewers label the screened abstracts: their rows are the holdout's, so all are labelled
    rep = realised_for_run(ws, run.id)
    assert rep["labelled"] == len(ids)
    (c,) = rep["classes"]
    positives = [i for i, lab in enumerate(labels) if lab == DIG]
    assert c["positives"] == len(positives)
    assert c["flagged_positives"] == sum(need[i] for i in positives)
