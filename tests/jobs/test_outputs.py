"""What a job leaves behind is never trusted: hostile outputs run through the real tier-A
launcher and worker (the job command replaced by test code), each refused as the job's own
failure (``invalid_output``, counted) while the worker moves on to the next job."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bedside.errors import JobError
from bedside.jobs.outputs import (
    ENTRY_BYTES,
    check_tree,
    footprint,
    inspect,
    read_bytes,
    read_json,
    read_tail,
)
from bedside.jobs.queue import JobState, enqueue_for_submission
from bedside.jobs.worker import Worker
from bedside.sandbox.launch import BwrapLauncher
from bedside.store import schema
from bedside.store.store import utcnow
from bedside.web.queries import job_log_tail
from bedside.workspace import Workspace
from tests.jobs import support
from tests.jobs.support import job_row, make_workspace, submission_row
from tests.sandbox.conftest import require_tier

# Test-only job code. Every job writes uniform predictions, except the job whose id is in argv[2]:
# that one runs the hostile snippet in argv[3] instead (with ``out`` its output directory).
JOB = """
import json, os, sys
job, hostile, snippet = sys.argv[1], int(sys.argv[2]), sys.argv[3]
spec = json.load(open(job + '/spec.json'))
out = job + '/out'
if spec['job_id'] == hostile:
    exec(snippet)
else:
    from bedside.jobs.spec import JobSpec
    from bedside.sandbox.launch import write_uniform_predictions
    write_uniform_predictions(job, JobSpec.from_dict(spec))
"""

PREDICTIONS = """
import pandas as pd
ids = [str(r) for r in pd.read_parquet(job + '/inputs/holdout_texts.parquet')['row_id']]
names = [c['name'] for c in spec['classes']]
doc = {'classes': names, 'row_ids': ids, 'probs': [[1.0 / len(names)] * len(names)] * len(ids)}
"""


def _add_submission(ws: Workspace, like: int) -> list[int]:
    """Another submission of the same contributor and bundle, with its two jobs queued."""
    s = schema.submissions
    with ws.store.write() as conn:
        row = dict(conn.execute(select(s).where(s.c.id == like)).mappings().one())
        row.pop("id")
        row.update(created_at=utcnow(), name=row["name"] + "-2")
        sub = int(conn.execute(s.insert().values(**row)).inserted_primary_key[0])
        return enqueue_for_submission(conn, sub, int(row["corpus_version_id"]))


def _drain(ws: Workspace, hostile: int, snippet: str, timeout_s: float = 120) -> list[Any]:
    """Run every job with the real tier-A launcher; fails (instead of hanging) when the worker
    does not come back within ``timeout_s``."""
    launcher = BwrapLauncher(
        test_command=[sys.executable, "-c", JOB, "{job}", str(hostile), snippet]
    )
    w = Worker(ws, launcher=launcher, lease_s=10, poll_s=0.1, baselines=False)
    got: list[Any] = []
    t = threading.Thread(target=lambda: got.append(w.run(once=True)), daemon=True)
    t0 = time.monotonic()
    t.start()
    t.join(timeout_s)
    if t.is_alive():
        w.stop.set()
        pytest.fail(f"the worker was still busy after {timeout_s} s (blocked on a job's output?)")
    assert time.monotonic() - t0 < timeout_s
    return got[0]


def _result_jobs(ws: Workspace) -> set[int]:
    with ws.store.read() as conn:
        return {int(x) for x in conn.execute(select(schema.results.c.job_id)).scalars()}


def _assert_refused(ws: Workspace, sub: int, job_id: int, *, says: str) -> dict[str, Any]:
    row = job_row(ws, job_id)
    assert row["state"] == JobState.FAILED
    assert row["error_class"] == "invalid_output", row["error_message"]
    assert says in row["error_message"], row["error_message"]
    assert job_id not in _result_jobs(ws)  # nothing of it was scored
    assert submission_row(ws, sub)["counted"]  # the job's failure, not the platform's
    return row


HOSTILE = {
    "log_to_shadow": (
        PREDICTIONS
        + "json.dump(doc, open(out + '/predictions.json', 'w'))\n"
        + "os.symlink('/etc/shadow', out + '/log.txt')\n",
        "log.txt' is a symbolic link",
    ),
    "fifo": (
        "os.mkfifo(out + '/predictions.json')\n",
        "predictions.json' is a FIFO",
    ),
    "fifo_progress": (
        PREDICTIONS
        + "json.dump(doc, open(out + '/predictions.json', 'w'))\n"
        + "os.mkfifo(out + '/progress.jsonl')\n",
        "progress.jsonl' is a FIFO",
    ),
    "hard_link": (
        PREDICTIONS
        + "json.dump(doc, open(out + '/real.json', 'w'))\n"
        + "os.link(out + '/real.json', out + '/predictions.json')\n",
        "a hard link",
    ),
    "symlinked_dir": (
        PREDICTIONS
        + "os.makedirs(out + '/model')\n"
        + "json.dump(doc, open(out + '/predictions.json', 'w'))\n"
        + "os.symlink('/etc', out + '/model/etc')\n",
        "model/etc' is a symbolic link",
    ),
}


@pytest.mark.slow
@pytest.mark.sandbox
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_output_fails_its_job_and_the_worker_moves_on(tmp_path: Path, case: str) -> None:
    require_tier("A")
    ws, sub, (p1, p2) = make_workspace(tmp_path / "ws")
    good = _add_submission(ws, sub)
    snippet, says = HOSTILE[case]
    _drain(ws, p1, snippet)
    row = _assert_refused(ws, sub, p1, says=says)
    assert job_row(ws, p2)["state"] == JobState.FAILED  # it depended on the refused job
    assert [job_row(ws, j)["state"] for j in good] == [JobState.DONE, JobState.DONE]
    assert set(good) <= _result_jobs(ws)
    if case == "log_to_shadow":
        shadow = Path("/etc/shadow").read_text(errors="replace")[:40]
        assert job_log_tail(ws, p1) is None  # the owner's job page shows no host file
        assert shadow not in (row["error_message"] or "")


@pytest.mark.slow
@pytest.mark.sandbox
def test_a_relative_symlink_into_a_finished_job_is_not_scored(tmp_path: Path) -> None:
    require_tier("A")
    ws, sub, (v1, v2) = make_workspace(tmp_path / "ws")
    h1, h2 = _add_submission(ws, sub)
    victim = ws.jobs_dir / str(v1) / "out" / "predictions.json"
    snippet = (
        f"os.symlink('../../{v1}/out/predictions.json', out + '/predictions.json')\n"
        # and, from inside, the victim is not there to read, by any path
        f"for p in ('{victim}', job + '/../{v1}/out/predictions.json'):\n"
        "    try:\n"
        "        open(p).read(); print('REACHED', p)\n"
        "    except OSError as e:\n"
        "        print('UNREACHABLE', type(e).__name__)\n"
    )
    _drain(ws, h1, snippet)
    assert job_row(ws, v1)["state"] == JobState.DONE and victim.is_file()
    row = _assert_refused(ws, sub, h1, says="predictions.json' is a symbolic link")
    assert "REACHED" not in row["error_message"]
    assert row["error_message"].count("UNREACHABLE") == 2
    assert job_row(ws, h2)["state"] == JobState.FAILED
    # the finished job's directories went back to the host user: no later job can write them
    assert victim.parent.stat().st_uid == victim.stat().st_uid == 0


@pytest.mark.slow
@pytest.mark.sandbox
@pytest.mark.parametrize("what", ["dirs", "files"])
def test_an_entry_flood_is_over_a_1mb_quota(tmp_path: Path, what: str) -> None:
    require_tier("A")
    ws, sub, (p1, _p2) = make_workspace(
        tmp_path / "ws", policy=support.test_policy(output_quota_mb=1)
    )
    good = _add_submission(ws, sub)
    make = "os.mkdir(f'{out}/d{i}')" if what == "dirs" else "open(f'{out}/f{i}', 'w').close()"
    # otherwise a valid run: on a quota that counts bytes only it would be scored
    snippet = (
        PREDICTIONS
        + "json.dump(doc, open(out + '/predictions.json', 'w'))\n"
        + f"for i in range(20000):\n    {make}\n"
    )
    _drain(ws, p1, snippet)
    _assert_refused(ws, sub, p1, says="quota")
    assert [job_row(ws, j)["state"] for j in good] == [JobState.DONE, JobState.DONE]


def test_read_tail_does_not_follow_a_link(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "secret").write_text("SECRET")
    (out / "log.txt").symlink_to(tmp_path / "secret")
    assert read_tail(out, "log.txt", 100) is None


# -- the reader on its own (no sandbox) ----------------------------------------------------


def test_read_bytes_refuses_what_is_not_a_plain_file_without_blocking(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "model").mkdir(parents=True)
    (out / "ok.json").write_text('{"a": 1}')
    assert read_bytes(out, "ok.json", 100) == b'{"a": 1}'
    os.mkfifo(out / "fifo")
    (out / "link").symlink_to(out / "ok.json")
    os.link(out / "ok.json", out / "model" / "hard")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "f").write_text("x")
    (out / "dirlink").symlink_to(tmp_path / "elsewhere")
    t0 = time.monotonic()
    for rel, says in (
        ("fifo", "a FIFO"),
        ("link", "a symbolic link"),
        ("model/hard", "a hard link"),
        ("dirlink/f", "through a link"),
    ):
        with pytest.raises(JobError) as e:
            read_bytes(out, rel, 100)
        assert e.value.error_class == "invalid_output" and says in e.value.message
    assert time.monotonic() - t0 < 2  # the FIFO did not block
    assert read_json(out, "fifo") is None and read_tail(out, "link", 10) is None


def test_read_bytes_is_bounded(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(b"x" * 1000)
    with pytest.raises(JobError, match="at most 999"):
        read_bytes(tmp_path, "big", 999)
    assert read_bytes(tmp_path, "big", 10, offset=995, whole=False) == b"xxxxx"


def test_the_quota_counts_entries_and_directories(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for i in range(300):
        (out / f"d{i}").mkdir() if i % 2 else (out / f"f{i}").touch()
    assert footprint(out, 2**30) >= 300 * ENTRY_BYTES > 2**20
    with pytest.raises(JobError, match="quota"):
        check_tree(out, 2**20)


def test_check_tree_names_the_first_refused_entry(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "model").mkdir(parents=True)
    (out / "model" / "x").symlink_to("/etc/shadow")
    assert inspect(out).refused == [("model/x", "a symbolic link")]
    with pytest.raises(JobError, match="out/model/x"):
        check_tree(out, 2**20)
