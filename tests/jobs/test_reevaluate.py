"""Re-evaluation on a new corpus version: re-queue per policy, skips with reasons, budget, no mixing."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import select

from bedside.config import Policy
from bedside.data.corpus import ClassInfo, load_corpus, write_version_files
from bedside.errors import ConfigError
from bedside.jobs.spec import JobSpec
from bedside.jobs.worker import drain
from bedside.reevaluate import list_reevaluations, on_activation, reevaluate
from bedside.sandbox.launch import FakeLauncher, write_uniform_predictions
from bedside.store import audit, schema
from bedside.store.store import utcnow
from bedside.submissions.contributors import counted_submissions
from bedside.workspace import Workspace
from tests.jobs.support import (
    CLASSES,
    contributor_used,
    corpus_frames,
    make_workspace,
    submission_row,
)
from tests.jobs.support import (
    test_policy as policy_for_tests,
)
from tests.store.seed import insert_contributor


def add_version(ws: Workspace, extra: int = 12, classes: tuple[str, ...] = CLASSES) -> int:
    """Append ``extra`` train and holdout rows to the active version as a new active version."""
    v1 = load_corpus(ws)
    new_train, new_hold = corpus_frames(extra, extra, seed=7)
    for df in (new_train, new_hold):
        df["row_id"] = "n" + df["row_id"]
    train = pd.concat([v1.train, new_train], ignore_index=True)
    hold = pd.concat([v1.holdout, new_hold], ignore_index=True)
    infos = [ClassInfo(str(i), c, f"about {c}") for i, c in enumerate(classes)]
    if classes != CLASSES:
        train["label"] = [classes[i % len(classes)] for i in range(len(train))]
        hold["label"] = [classes[i % len(classes)] for i in range(len(hold))]
    n = v1.version_id + 1
    rel = f"corpora/v{n}"
    write_version_files(ws.root / rel, train, hold, infos)
    with ws.store.write() as conn:
        conn.execute(schema.corpus_versions.update().values(active=False))
        return int(
            conn.execute(
                schema.corpus_versions.insert().values(
                    hash=f"{n:02d}" * 32,
                    parent_id=v1.version_id,
                    created_at=utcnow(),
                    path=rel,
                    n_train=len(train),
                    n_holdout=len(hold),
                    classes=[c.to_dict() for c in infos],
                    split={},
                    source={},
                    report={},
                    active=True,
                )
            ).inserted_primary_key[0]
        )


def _jobs(ws: Workspace, **where: Any) -> list[dict[str, Any]]:
    t = schema.jobs
    q = select(t).order_by(t.c.id)
    for k, v in where.items():
        q = q.where(t.c[k] == v)
    with ws.store.read() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


def _results(ws: Workspace) -> list[dict[str, Any]]:
    r = schema.results
    with ws.store.read() as conn:
        return [dict(x) for x in conn.execute(select(r).order_by(r.c.id)).mappings()]


def _set(ws: Workspace, **changes: Any) -> None:
    ws.set_policy(Policy.from_dict({**ws.policy().to_dict(), **changes}))


@pytest.fixture
def done_ws(tmp_path: Path) -> tuple[Workspace, int]:
    """One submission with both phases done on version 1."""
    ws, sub, _jobs_ = make_workspace(tmp_path / "ws")
    drain(ws, FakeLauncher())
    assert submission_row(ws, sub)["status"] == "done"
    return ws, sub


def test_published_submissions_rerun_on_activation_without_using_a_submission(
    done_ws: tuple[Workspace, int],
) -> None:
    ws, sub = done_ws
    with ws.store.read() as conn:
        counted_before = counted_submissions(conn, 1)
    used_before = contributor_used(ws)
    v2 = add_version(ws)
    out = on_activation(ws, v2, previous_id=1)
    assert out["policy"] == "published" and out["skipped"] == []
    [q] = out["queued"]
    assert q["submission_id"] == sub and q["phases"] == ["phase1", "phase2"]
    jobs = _jobs(ws, corpus_version_id=v2)
    assert [j["kind"] for j in jobs] == ["phase1", "phase2"]
    assert jobs[1]["depends_on"] == jobs[0]["id"]
    assert all(j["spec"]["reevaluation_id"] == out["reevaluation_id"] for j in jobs)
    assert submission_row(ws, sub)["status"] == "done"  # queued re-runs leave it alone
    outcomes = drain(ws, FakeLauncher())
    assert [o.state for o in outcomes] == ["done", "done"]
    # phase 2 re-trained on the new training split
    spec = JobSpec.read(ws.jobs_dir / str(jobs[1]["id"]))
    assert spec.kind == "phase2"
    train = pd.read_parquet(ws.jobs_dir / str(jobs[1]["id"]) / "inputs" / "train.parquet")
    assert len(train) == 48 + 12
    by_version = {(r["corpus_version_id"], r["phase"]) for r in _results(ws)}
    assert by_version == {(1, 1), (1, 2), (v2, 1), (v2, 2)}
    row = submission_row(ws, sub)
    assert row["status"] == "done" and row["counted"]
    with ws.store.read() as conn:
        assert counted_submissions(conn, 1) == counted_before  # not a new submission
    assert contributor_used(ws) > used_before  # but the compute is charged
    [batch] = list_reevaluations(ws)
    assert batch["trigger"] == "activation" and batch["queued"][0]["jobs"] == [
        j["id"] for j in jobs
    ]
    assert any(e["action"] == "reevaluation.queued" for e in audit.entries(ws.store))
    # activating again (or asking again) queues nothing twice
    again = reevaluate(ws, v2)
    assert again["queued"] == [] and "already has jobs" in again["skipped"][0]["reason"]


def test_policy_none_queues_nothing_and_all_includes_failed(tmp_path: Path) -> None:
    ws, sub, _ = make_workspace(tmp_path / "ws", policy=policy_for_tests())
    drain(ws, FakeLauncher(lambda d, s: "model_error"))
    assert submission_row(ws, sub)["status"] == "failed"
    v2 = add_version(ws)
    _set(ws, reevaluate="none")
    assert on_activation(ws, v2, 1)["queued"] == [] and _jobs(ws, corpus_version_id=v2) == []
    _set(ws, reevaluate="published")
    assert on_activation(ws, v2, 1)["queued"] == []  # a failed one is not on the board
    _set(ws, reevaluate="all")
    assert [q["submission_id"] for q in on_activation(ws, v2, 1)["queued"]] == [sub]
    with pytest.raises(ConfigError, match="reevaluate must be one of"):
        _set(ws, reevaluate="sometimes")


def test_revoked_contributor_and_deleted_bundle_are_skipped_with_the_reason(
    done_ws: tuple[Workspace, int],
) -> None:
    ws, sub = done_ws
    v2 = add_version(ws)
    with ws.store.write() as conn:
        conn.execute(schema.contributors.update().values(revoked=True))
    out = reevaluate(ws, v2)
    assert out["queued"] == [] and "contributor 'vendor' is revoked" in out["skipped"][0]["reason"]
    with pytest.raises(ConfigError, match="nothing was queued.*revoked"):
        reevaluate(ws, v2, [sub])
    with ws.store.write() as conn:
        conn.execute(schema.contributors.update().values(revoked=False))
    shutil.rmtree(ws.bundles_dir / "fake-bundle-hash")
    with pytest.raises(ConfigError, match="bundle fake-bundle- is no longer stored"):
        reevaluate(ws, v2, [sub])
    assert _jobs(ws, corpus_version_id=v2) == []


def test_a_version_with_other_classes_is_refused_with_the_reason(
    done_ws: tuple[Workspace, int],
) -> None:
    ws, sub = done_ws
    v2 = add_version(ws, classes=("neoplasms", "digestive system diseases", "other"))
    out = on_activation(ws, v2, 1)
    assert out["queued"] == []
    reason = out["skipped"][0]["reason"]
    assert "class sets differ" in reason and "'cardiovascular diseases'" in reason
    assert "'other'" in reason


def test_budget_left_for_phase_1_only_then_none(tmp_path: Path) -> None:
    # estimate: phase 1 0.001, phase 2 0.01 PF; the fake jobs spend 0.001 PF each
    ws, sub, _ = make_workspace(tmp_path / "ws", budget_pflops=0.006)
    drain(ws, FakeLauncher())
    v2 = add_version(ws)
    out = on_activation(ws, v2, 1)
    [q] = out["queued"]
    assert q["phases"] == ["phase1"] and "phase 2 not queued" in q["note"]
    drain(ws, FakeLauncher())
    v3 = add_version(ws)
    with ws.store.write() as conn:
        conn.execute(schema.contributors.update().values(budget_pflops=0.003))
    out = on_activation(ws, v3, v2)
    assert out["queued"] == [] and "compute budget is spent" in out["skipped"][0]["reason"]


def test_a_version_activated_while_jobs_run_mixes_nothing(tmp_path: Path) -> None:
    ws, sub, (p1, p2) = make_workspace(tmp_path / "ws")
    _set(ws, reevaluate="all")
    activated: list[int] = []

    def behaviour(job_dir: Path, spec: JobSpec) -> str | None:
        if not activated:  # while version 1's phase 1 runs, the owner adds version 2
            v2 = add_version(ws)
            activated.append(v2)
            assert on_activation(ws, v2, 1)["queued"][0]["submission_id"] == sub
        return write_uniform_predictions(job_dir, spec)

    outcomes = drain(ws, FakeLauncher(behaviour))
    assert sorted(o.state for o in outcomes) == ["done"] * 4
    v2 = activated[0]
    jobs = {j["id"]: j for j in _jobs(ws)}
    for r in _results(ws):
        assert r["corpus_version_id"] == jobs[r["job_id"]]["corpus_version_id"]
        assert r["provenance"]["corpus_version_id"] == r["corpus_version_id"]
        n = 24 if r["corpus_version_id"] == 1 else 36
        assert r["metrics"]["n"] == n
    v1_inputs = pd.read_parquet(ws.jobs_dir / str(p2) / "inputs" / "train.parquet")
    assert len(v1_inputs) == 48  # version 1's phase 2 kept version 1's training split
    assert submission_row(ws, sub)["status"] == "done"
    assert {j["corpus_version_id"] for j in jobs.values()} == {1, v2}


@pytest.mark.slow  # intake, the CLI, drift and the history: ~10 s on a loaded machine
def test_owner_appends_a_batch_and_the_board_shows_both_versions(tmp_path: Path) -> None:
    """The issue's "done when": append newly labelled abstracts, the published model re-runs by
    itself, the board shows both versions side by side with the drift between them."""
    import json

    from typer.testing import CliRunner

    from bedside.cli.app import app
    from bedside.data.ingest import add_corpus
    from bedside.data.synthetic import write_synthetic
    from bedside.jobs.queue import enqueue_for_submission

    ws, _ = Workspace.init(tmp_path / "ws")
    ws.set_policy(policy_for_tests())
    write_synthetic(tmp_path / "first.csv", n=300, seed=1)
    write_synthetic(tmp_path / "batch.csv", n=120, seed=2)
    v1 = add_corpus(ws, tmp_path / "first.csv")["version_id"]
    (ws.bundles_dir / "h" / "bedside.toml").parent.mkdir(parents=True)
    (ws.bundles_dir / "h" / "bedside.toml").write_text('name = "m"\n')
    with ws.store.write() as conn:
        cid = insert_contributor(conn, "acme")
        sid = conn.execute(
            schema.submissions.insert().values(
                contributor_id=cid,
                bundle_hash="h",
                name="acme model",
                kind="encoder",
                status="accepted",
                counted=True,
                corpus_version_id=v1,
                created_at=utcnow(),
                manifest={"name": "m", "kind": "encoder", "train": {"method": "full"}},
                estimate={"phase1": 0.001, "phase2": 0.01, "total": 0.011},
                meta={},
            )
        ).inserted_primary_key[0]
        enqueue_for_submission(conn, int(sid), v1)
    drain(ws, FakeLauncher())
    runner = CliRunner()
    r = runner.invoke(
        app, ["-w", str(ws.root), "data", "add", str(tmp_path / "batch.csv"), "--append"]
    )
    assert r.exit_code == 0, r.output
    assert "re-evaluation on version 2 (published): 1 submission(s) queued" in r.stdout
    assert [o.state for o in drain(ws, FakeLauncher())] == ["done", "done"]
    r = runner.invoke(app, ["-w", str(ws.root), "leaderboard", "--history", "-f", "json"])
    assert r.exit_code == 0, r.output
    h = json.loads(r.stdout)
    [model] = [m for m in h["models"] if m["kind"] == "submission"]
    assert sorted(model["scores"]) == ["1", "2"]  # JSON keys: both versions side by side
    r = runner.invoke(app, ["-w", str(ws.root), "leaderboard", "--version", "1"])
    assert r.exit_code == 0 and "corpus version 1" in r.stdout and "acme model" in r.stdout
    r = runner.invoke(app, ["-w", str(ws.root), "data", "drift"])
    assert r.exit_code == 0, r.output
    assert "drift from version 1 to version 2 (added rows" in r.stdout
    assert "Class shares" in r.stdout and "Vocabulary" in r.stdout
    r = runner.invoke(app, ["-w", str(ws.root), "reevaluate", "--list"])
    assert r.exit_code == 0 and "activation" in r.stdout
    r = runner.invoke(app, ["-w", str(ws.root), "reevaluate", "--submissions", "x"])
    assert r.exit_code != 0
