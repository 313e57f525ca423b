"""submit_bundle: storing, queueing, limits and budgets (also under concurrency)."""

from __future__ import annotations

import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bedside.auth import OWNER, Principal
from bedside.errors import AuthError, BedsideError, BundleError, LimitError, NotFoundError
from bedside.store import audit, schema
from bedside.submissions.contributors import add_contributor, get_contributor, update_contributor
from bedside.submissions.intake import get_submission, list_submissions, submit_bundle
from bedside.workspace import Workspace


@pytest.mark.parametrize("kind", ["encoder", "classifier", "causal-lm"])
def test_happy_path(cws: Workspace, make_bundle: Callable[..., Path], kind: str) -> None:
    add_contributor(cws, "acme")
    sub = submit_bundle(cws, make_bundle(kind), "acme")
    assert sub["status"] == "accepted" and sub["counted"] and not sub["duplicate"]
    assert sub["kind"] == kind and sub["contributor"] == "acme"
    assert sub["manifest"]["train"]["lora"]["r"] == 8  # defaults filled for the engine
    assert 0 < sub["estimate"]["phase1"] < sub["estimate"]["total"]
    with cws.store.read() as conn:
        jobs = (
            conn.execute(select(schema.jobs).where(schema.jobs.c.submission_id == sub["id"]))
            .mappings()
            .all()
        )
    assert [j["kind"] for j in jobs] == ["phase1", "phase2"] and sub["jobs"] == [
        j["id"] for j in jobs
    ]
    stored = cws.bundles_dir / sub["bundle_hash"]
    assert (stored / "model.safetensors").is_file()
    assert stat.S_IMODE(stored.stat().st_mode) == 0o755
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o644 for p in stored.rglob("*") if p.is_file())
    assert [e["action"] for e in audit.entries(cws.store)][-1] == "submission.accept"
    c = get_contributor(cws, "acme")
    assert c["submissions_used"] == 1 and c["reserved_pflops"] == pytest.approx(
        sub["estimate"]["total"]
    )


def test_resubmission_recognised(cws: Workspace, make_bundle: Callable[..., Path]) -> None:
    add_contributor(cws, "acme", max_submissions=1)
    add_contributor(cws, "beta", max_submissions=1)
    b = make_bundle()
    first = submit_bundle(cws, b, "acme")
    again = submit_bundle(cws, b, "acme")  # no LimitError although the limit is 1
    assert again["duplicate"] and again["id"] == first["id"]
    assert get_contributor(cws, "acme")["submissions_used"] == 1
    other = submit_bundle(cws, b, "beta")  # another contributor: a submission of their own
    assert not other["duplicate"] and other["bundle_hash"] == first["bundle_hash"]
    assert len(list(cws.bundles_dir.iterdir())) == 1  # stored once


def test_rejected_bundle_does_not_count(cws: Workspace, make_bundle: Callable[..., Path]) -> None:
    add_contributor(cws, "acme", max_submissions=1)
    bad = make_bundle()
    (bad / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(BundleError):
        submit_bundle(cws, bad, "acme")
    assert get_contributor(cws, "acme")["submissions_used"] == 0
    submit_bundle(cws, make_bundle(), "acme")
    with pytest.raises(LimitError, match="has used 1 of 1 submissions; none left"):
        submit_bundle(cws, make_bundle(name="other"), "acme")


def test_platform_failures_do_not_count(cws: Workspace, make_bundle: Callable[..., Path]) -> None:
    add_contributor(cws, "acme", max_submissions=1)
    sub = submit_bundle(cws, make_bundle(), "acme")
    with cws.store.write() as conn:  # what the worker does after a platform failure
        s = schema.submissions
        conn.execute(s.update().where(s.c.id == sub["id"]).values(status="failed", counted=False))
    assert get_contributor(cws, "acme")["submissions_left"] == 1
    assert not submit_bundle(cws, make_bundle(), "acme")["duplicate"]  # a retry of the same bundle


def test_revoked_contributor_cannot_submit(
    cws: Workspace, make_bundle: Callable[..., Path]
) -> None:
    add_contributor(cws, "acme")
    update_contributor(cws, "acme", revoked=True)
    with pytest.raises(AuthError, match="has been revoked"):
        submit_bundle(cws, make_bundle(), "acme")


def test_needs_an_active_corpus(ws: Workspace, make_bundle: Callable[..., Path]) -> None:
    add_contributor(ws, "acme")
    with pytest.raises(NotFoundError, match="the workspace has no an? ?active corpus"):
        submit_bundle(ws, make_bundle(), "acme")


def test_budget_refusal_says_by_how_much_and_what_fits(
    cws: Workspace, make_bundle: Callable[..., Path]
) -> None:
    add_contributor(cws, "probe", max_submissions=5)
    est = submit_bundle(cws, make_bundle(train={"epochs": 4}), "probe")["estimate"]
    add_contributor(cws, "acme", budget_pflops=est["total"] * 0.8)
    with pytest.raises(LimitError) as exc:
        submit_bundle(cws, make_bundle(train={"epochs": 4}), "acme")
    msg = str(exc.value)
    assert f"needs about {est['total']:.3g} PFLOPs" in msg
    assert f"over by {est['total'] * 0.2:.3g} PFLOPs" in msg
    assert "train.epochs = 3" in msg and 'train.method = "head-only"' in msg
    assert "--budget-pflops" in msg
    assert get_contributor(cws, "acme")["submissions_used"] == 0


def _race(n: int, fn: Callable[[int], Any]) -> tuple[list[Any], list[BaseException]]:
    results: list[Any] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)
    lock = threading.Lock()

    def run(i: int) -> None:
        barrier.wait()
        try:
            r = fn(i)
            with lock:
                results.append(r)
        except BedsideError as e:
            with lock:
                errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


def test_concurrent_submissions_respect_the_limit(
    cws: Workspace, make_bundle: Callable[..., Path]
) -> None:
    add_contributor(cws, "acme", max_submissions=3)
    bundles = [make_bundle(name=f"variant-{i}") for i in range(8)]
    accepted, refused = _race(8, lambda i: submit_bundle(cws, bundles[i], "acme"))
    assert len(accepted) == 3 and len(refused) == 5
    assert all(isinstance(e, LimitError) for e in refused)
    assert len(list_submissions(cws)) == 3


def test_concurrent_submissions_respect_the_budget(
    cws: Workspace, make_bundle: Callable[..., Path]
) -> None:
    add_contributor(cws, "probe")
    one = submit_bundle(cws, make_bundle(name="probe"), "probe")["estimate"]["total"]
    add_contributor(cws, "acme", max_submissions=100, budget_pflops=one * 2.5)
    bundles = [make_bundle(name=f"variant-{i}") for i in range(6)]
    accepted, refused = _race(6, lambda i: submit_bundle(cws, bundles[i], "acme"))
    assert len(accepted) == 2 and len(refused) == 4
    assert all(isinstance(e, LimitError) and "over by" in str(e) for e in refused)


def test_concurrent_same_bundle_counted_once(
    cws: Workspace, make_bundle: Callable[..., Path]
) -> None:
    add_contributor(cws, "acme", max_submissions=5)
    b = make_bundle()
    results, errors = _race(4, lambda i: submit_bundle(cws, b, "acme"))
    assert not errors and len({r["id"] for r in results}) == 1
    assert sum(not r["duplicate"] for r in results) == 1


def test_get_submission_visibility(cws: Workspace, make_bundle: Callable[..., Path]) -> None:
    a, _ = add_contributor(cws, "acme")
    b, _ = add_contributor(cws, "beta")
    sub = submit_bundle(cws, make_bundle(), "acme")
    mine = Principal(role="contributor", name="acme", contributor_id=a["id"])
    theirs = Principal(role="contributor", name="beta", contributor_id=b["id"])
    assert get_submission(cws, sub["id"], mine)["id"] == sub["id"]
    assert get_submission(cws, sub["id"], OWNER)["jobs"] == sub["jobs"]
    with pytest.raises(NotFoundError, match=f"no submission #{sub['id']} that you can see"):
        get_submission(cws, sub["id"], theirs)
    with pytest.raises(NotFoundError):
        get_submission(cws, 999, OWNER)
    assert [s["id"] for s in list_submissions(cws, contributor_id=b["id"])] == []
    assert [s["id"] for s in list_submissions(cws, contributor_id=a["id"])] == [sub["id"]]
