"""The worker and the pipeline with a FakeLauncher (no processes): scoring, charging, failures.
The last tests use the real tier-A launcher with test-only job code."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bedside.contracts import Provenance
from bedside.jobs.collect import collect_and_score
from bedside.jobs.executor import JobExecutor
from bedside.jobs.foreground import run_submission
from bedside.jobs.queue import SqlQueue
from bedside.jobs.spec import JobSpec
from bedside.jobs.staging import prepare_job_dir
from bedside.jobs.views import public_job_view
from bedside.jobs.worker import Worker, drain
from bedside.sandbox.launch import BwrapLauncher, FakeLauncher, write_uniform_predictions
from bedside.store import schema
from tests.jobs.support import contributor_used, job_row, make_workspace, submission_row
from tests.sandbox.conftest import require_tier

CANARY = "CANARY-93b1d7-never-leaves"


def _results(ws) -> list[dict]:  # type: ignore[no-untyped-def]
    with ws.store.read() as conn:
        return [
            dict(r)
            for r in conn.execute(select(schema.results).order_by(schema.results.c.id)).mappings()
        ]


def test_drain_runs_both_phases_scores_and_charges_once(tmp_path: Path) -> None:
    ws, sub, (p1, p2) = make_workspace(tmp_path / "ws")
    launcher = FakeLauncher()
    outcomes = drain(ws, launcher)
    assert [(o.job_id, o.state) for o in outcomes] == [(p1, "done"), (p2, "done")]
    res = _results(ws)
    assert [r["phase"] for r in res] == [1, 2] and [r["job_id"] for r in res] == [p1, p2]
    assert "delta_vs_phase1" in res[1]["metrics"]
    prov = Provenance.from_dict(res[1]["provenance"])
    assert prov.tier == "A" and prov.bundle_hash == "fake-bundle-hash"
    assert prov.compute.actual_pflops == pytest.approx(1e12 / 1e15)  # from compute.json
    assert prov.attempts == 1 and prov.recipe == {"method": "full"}
    assert prov.corpus_version == "c0ffee" * 10 + "abcd"
    assert submission_row(ws, sub)["status"] == "done"
    assert contributor_used(ws) == pytest.approx(2e12 / 1e15)
    spec = JobSpec.read(ws.jobs_dir / str(p2))
    assert spec.kind == "phase2" and spec.classes[0]["name"] == "neoplasms"
    assert spec.budget_flops == pytest.approx((300.0 - 0.001) * 1e15)
    assert (ws.jobs_dir / str(p2) / "inputs" / "train.parquet").exists()
    assert not (ws.jobs_dir / str(p1) / "inputs" / "train.parquet").exists()
    import pandas as pd

    assert list(
        pd.read_parquet(ws.jobs_dir / str(p1) / "inputs" / "holdout_texts.parquet").columns
    ) == ["row_id", "text"]
    assert drain(ws, launcher) == []  # nothing left; nothing scored twice


def test_a_crash_between_scoring_and_done_neither_rescores_nor_recharges(tmp_path: Path) -> None:
    ws, _sub, (p1, _p2) = make_workspace(tmp_path / "ws")
    q = SqlQueue(ws.store)
    job = q.claim("dead-worker", 60)
    assert job is not None
    job_dir = prepare_job_dir(ws, job.row())
    res = FakeLauncher().launch(job_dir, JobSpec.read(job_dir), ws.policy().limits)
    rid = collect_and_score(ws, job.row(), res)
    assert collect_and_score(ws, job.row(), res) == rid
    # the worker dies here; the lease expires; another worker takes over
    with ws.store.write() as conn:
        conn.execute(schema.jobs.update().where(schema.jobs.c.id == p1).values(lease_expires=0))
    launcher = FakeLauncher()
    drain(ws, launcher)
    assert launcher.calls == [2]  # phase 1 was not run again
    assert [r["job_id"] for r in _results(ws)] == [1, 2]
    assert contributor_used(ws) == pytest.approx(2e12 / 1e15)


def _bad(content: str):  # type: ignore[no-untyped-def]
    def behaviour(job_dir: Path, spec: JobSpec) -> None:
        (job_dir / "out" / "predictions.json").write_text(content)

    return behaviour


OVERSIZED = '{"classes": [], "row_ids": [], "probs": []' + " " * 200_000 + "}"


@pytest.mark.parametrize(
    "content",
    ['{"classes": [], "row_ids": [], "probs": []}', "not json", OVERSIZED],
    ids=["wrong-shape", "not-json", "oversized"],
)
def test_invalid_or_oversized_predictions_are_rejected_and_count(
    tmp_path: Path, content: str
) -> None:
    ws, sub, (p1, p2) = make_workspace(tmp_path / "ws")
    outcomes = drain(ws, FakeLauncher(_bad(content)))
    assert outcomes[0].state == "failed" and outcomes[0].error_class == "invalid_output"
    if content is OVERSIZED:
        assert "bytes" in (job_row(ws, p1)["error_message"] or "")
    assert job_row(ws, p2)["state"] == "failed"
    s = submission_row(ws, sub)
    assert s["status"] == "failed" and s["counted"] is True
    assert _results(ws) == []


def test_platform_failures_are_retried_then_not_counted(tmp_path: Path) -> None:
    ws, sub, (p1, _p2) = make_workspace(tmp_path / "ws")
    launcher = FakeLauncher(lambda d, s: "platform_error")
    drain(ws, launcher)
    assert launcher.calls == [p1, p1, p1]
    r = job_row(ws, p1)
    assert (r["state"], r["error_class"], r["attempts"]) == ("failed", "platform_error", 3)
    assert submission_row(ws, sub)["counted"] is False


@pytest.mark.parametrize("error_class", ["model_error", "out_of_memory", "timeout"])
def test_model_failures_count_and_say_so(tmp_path: Path, error_class: str) -> None:
    ws, sub, (p1, _p2) = make_workspace(tmp_path / "ws")
    launcher = FakeLauncher(lambda d, s: error_class)
    drain(ws, launcher)
    assert launcher.calls == [p1]
    assert job_row(ws, p1)["error_class"] == error_class
    assert submission_row(ws, sub)["counted"] is True


def test_progress_records_reach_the_store_cleaned(tmp_path: Path) -> None:
    ws, _sub, (p1, _p2) = make_workspace(tmp_path / "ws")

    def behaviour(job_dir: Path, spec: JobSpec) -> None:
        write_uniform_predictions(job_dir, spec)
        recs = [
            {"ts": 1.0, "stage": "train", "step": 1, "total": 4, "loss": 1.5},
            {
                "ts": 2.0,
                "stage": f"train {CANARY}",
                "step": 2,
                "total": 4,
                "text": CANARY,
                "loss": "nan",
            },
        ]
        (job_dir / "out" / "progress.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in recs) + '{"partial'
        )

    drain(ws, FakeLauncher(behaviour))
    with ws.store.read() as conn:
        events = [
            e
            for e in conn.execute(
                select(schema.job_events.c.data).where(schema.job_events.c.job_id == p1)
            ).scalars()
        ]
    assert events == [
        {"ts": 1.0, "stage": "train", "step": 1, "total": 4, "loss": 1.5},
        {"ts": 2.0, "stage": "working", "step": 2, "total": 4},
    ]
    assert job_row(ws, p1)["progress"] == events[-1]


def test_run_submission_and_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bedside.cli.app import app

    ws, sub, (p1, p2) = make_workspace(tmp_path / "ws")
    outcomes = run_submission(ws, sub, phases=(1,), launcher=FakeLauncher(), progress=False)
    assert [o.state for o in outcomes] == ["done"]
    monkeypatch.setattr(
        "bedside.sandbox.probe.launcher_for_policy", lambda policy, report=None: FakeLauncher()
    )
    runner = CliRunner()
    out = runner.invoke(
        app, ["-w", str(ws.root), "run", str(sub), "--phase", "both", "--format", "json"]
    )
    assert out.exit_code == 0, out.output
    assert [o["job_id"] for o in json.loads(out.output)] == [p2]  # phase 1 was done already
    out = runner.invoke(app, ["-w", str(ws.root), "jobs", "--format", "json"])
    assert [j["state"] for j in json.loads(out.output)] == ["done", "done"]
    assert "error_message" not in out.output
    out = runner.invoke(app, ["-w", str(ws.root), "jobs", "show", str(p2)])
    assert out.exit_code == 0 and "phase2" in out.output
    out = runner.invoke(app, ["-w", str(ws.root), "jobs", "cancel", str(p2)])
    assert out.exit_code == 0 and "done" in out.output  # too late to cancel a finished job
    out = runner.invoke(app, ["-w", str(ws.root), "jobs", "show", "99"])
    assert out.exit_code != 0
    for args in (
        ["worker", "-h"],
        ["run", "-h"],
        ["jobs", "-h"],
        ["jobs", "list", "-h"],
        ["sandbox", "probe", "-h"],
    ):
        assert runner.invoke(app, args).exit_code == 0


def test_worker_refuses_a_host_below_the_minimum_tier(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bedside.errors import SandboxError
    from bedside.sandbox import probe

    ws, _sub, _jobs = make_workspace(tmp_path / "ws")
    monkeypatch.setattr(probe, "probe", lambda refresh=False: probe.ProbeReport(tier=None))
    with pytest.raises(SandboxError):
        Worker(ws)


# -- real sandbox, test-only job code -------------------------------------------------------

LEAKY = (
    "import json, os, sys\n"
    "import pandas as pd\n"
    "job = sys.argv[1]\n"
    "texts = pd.read_parquet(job + '/inputs/holdout_texts.parquet')['text'].tolist()\n"
    "print('\\n'.join(texts)); print('\\n'.join(texts), file=sys.stderr)\n"
    "canary = [t for t in texts if 'CANARY' in t][0]\n"
    "open(job + '/out/progress.jsonl', 'w').write(json.dumps({'stage': canary, 'step': 1, 'total': 2, 'note': canary}) + '\\n')\n"
    "open(job + '/out/compute.json', 'w').write(json.dumps({'flops': 5.0, 'device': canary, 'info': canary}))\n"
    "open(job + '/out/error.json', 'w').write(json.dumps({'error_class': 'model_error', 'message': canary}))\n"
    "sys.exit(1)\n"
)


def test_a_corpus_canary_never_reaches_what_a_contributor_can_read(tmp_path: Path) -> None:
    require_tier("A")
    ws, sub, (p1, p2) = make_workspace(tmp_path / "ws", canary=CANARY)
    launcher = BwrapLauncher(test_command=[sys.executable, "-c", LEAKY, "{job}"])
    outcomes = drain(ws, launcher)
    assert outcomes[0].error_class == "model_error"
    with ws.store.read() as conn:
        jobs = [dict(r) for r in conn.execute(select(schema.jobs)).mappings()]
        events = list(conn.execute(select(schema.job_events.c.data)).scalars())
    visible = json.dumps([public_job_view(j) for j in jobs]) + json.dumps(events)
    visible += json.dumps(submission_row(ws, sub), default=str) + json.dumps(
        _results(ws), default=str
    )
    assert CANARY not in visible
    assert "model_error" in visible
    assert CANARY in (
        job_row(ws, p1)["error_message"] or ""
    )  # the owner's log keeps it, owner-only


def test_cancel_kills_a_running_job_at_the_next_heartbeat(tmp_path: Path) -> None:
    require_tier("A")
    ws, _sub, (p1, _p2) = make_workspace(tmp_path / "ws")
    launcher = BwrapLauncher(test_command=[sys.executable, "-c", "import time; time.sleep(120)"])
    q = SqlQueue(ws.store)
    job = q.claim("w", 3)
    assert job is not None
    done: list[object] = []
    t = threading.Thread(
        target=lambda: done.append(JobExecutor(ws, q, launcher, lease_s=3).run(job, "w"))
    )
    t0 = time.monotonic()
    t.start()
    time.sleep(1.5)
    assert q.cancel(p1) == "cancelled"
    t.join(timeout=30)
    assert done and done[0].state == "cancelled"  # type: ignore[attr-defined]
    assert time.monotonic() - t0 < 10
    assert job_row(ws, p1)["state"] == "cancelled"
