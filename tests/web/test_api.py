"""The JSON API: every endpoint for every role (owner, contributors acme and globex, anonymous)."""

from __future__ import annotations

import io
import random
import tarfile

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bedside.store import audit, schema
from tests.web.webdata import CANARY, ROW_PREFIX, Populated, count_audit, other_vendor_ids

ROLES = ("owner", "acme", "globex", None)


def assert_error(resp, status: int, code: str | None = None) -> dict:
    """The one error shape: exactly {"error": {"code", "message", "hint"}}."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "hint"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    return body["error"]


# -- meta, auth --------------------------------------------------------------------------
def test_health_needs_no_token(client: TestClient) -> None:
    assert client.get("/api/health").json()["ok"] is True


def test_me_for_each_role(client: TestClient, pop: Populated) -> None:
    assert client.get("/api/me", headers=pop.headers("owner")).json()["role"] == "owner"
    me = client.get("/api/me", headers=pop.headers("acme")).json()
    assert me["role"] == "contributor" and me["name"] == "acme"
    assert me["max_submissions"] == 5 and me["submissions_left"] == 3
    assert me["budget_pflops"] == 300.0 and 0 < me["budget_left_pflops"] < 300
    assert_error(client.get("/api/me"), 401, "auth_error")
    err = assert_error(
        client.get("/api/me", headers={"Authorization": "Bearer bsc_nope"}), 401, "auth_error"
    )
    assert "not valid" in err["message"]


def test_error_shape_for_routing_validation_and_method(client: TestClient, pop: Populated) -> None:
    h = pop.headers("owner")
    assert_error(client.get("/api/nope", headers=h), 404, "not_found")
    assert_error(client.get("/api/jobs/abc", headers=h), 422, "invalid_request")
    assert_error(client.delete("/api/leaderboard", headers=h), 405, "method_not_allowed")
    assert_error(
        client.post("/api/contributors", headers=h, json={"name": ""}), 422, "invalid_request"
    )
    assert_error(client.get("/api/impact?abstracts_per_year=-3", headers=h), 422)
    assert_error(client.get("/api/impact?ai_cost=acme", headers=h), 422, "config_error")


# -- leaderboard visibility ----------------------------------------------------------------
def _vendors(board: dict) -> set[str]:
    return {r["vendor"] for r in board["rows"]}


def test_leaderboard_before_and_after_publishing(client: TestClient, pop: Populated) -> None:
    owner = client.get("/api/leaderboard", headers=pop.headers("owner")).json()
    assert owner["published"] is False and owner["scope"] == "all"
    assert _vendors(owner) == {"acme", "globex", "initech", "internal baseline"}
    acme = client.get("/api/leaderboard", headers=pop.headers("acme")).json()
    assert _vendors(acme) == {"acme", "internal baseline"}
    assert_error(client.get("/api/leaderboard"), 401)
    assert_error(client.get("/api/impact"), 401)

    assert client.post("/api/publish", headers=pop.headers("owner")).json()["published"] is True
    for who in ROLES:
        board = client.get("/api/leaderboard", headers=pop.headers(who)).json()
        assert board["published"] is True
        assert _vendors(board) == {"acme", "globex", "initech", "internal baseline"}

    client.post("/api/unpublish", headers=pop.headers("owner"))
    globex = client.get("/api/leaderboard", headers=pop.headers("globex")).json()
    assert _vendors(globex) == {"globex", "internal baseline"}
    assert count_audit(pop.ws, "leaderboard.publish") == 1
    assert count_audit(pop.ws, "leaderboard.unpublish") == 1


def test_leaderboard_rows_ranks_and_ties(client: TestClient, pop: Populated) -> None:
    board = client.get("/api/leaderboard", headers=pop.headers("owner")).json()
    rows = board["rows"]
    scores = [r["macro_f1"] for r in rows]
    assert scores == sorted(scores, reverse=True)
    base = [r for r in rows if r["kind"] == "baseline"]
    assert len(base) == 1 and base[0]["rank"] is None and base[0]["rank_label"] == "baseline"
    ranked = [r for r in rows if r["kind"] == "submission"]
    assert ranked[0]["rank"] == 1
    # ties share the rank of the row above and are labelled "=N"
    for above, row in zip(ranked, ranked[1:], strict=False):
        if row["tied_with_above"]:
            assert row["rank"] == above["rank"] and row["rank_label"].startswith("=")
    assert board["tie_method"] == "paired_bootstrap"  # stored predictions exist
    assert board["small_classes"] == ["digestive system diseases", "nervous system diseases"]
    top = ranked[0]
    assert top["phase"] == 2 and top["delta"] is not None and top["delta_ci"]
    assert top["compute_pflops"] == pytest.approx(35.92)
    assert {pc["name"] for pc in top["per_class"] if pc["small"]} == set(board["small_classes"])
    assert all(len(str(v).split(".")[-1]) <= 3 for v in top["macro_f1_ci"])  # release precision


def test_ties_fall_back_to_ci_overlap_without_predictions(
    client: TestClient, pop: Populated
) -> None:
    import shutil

    shutil.rmtree(pop.ws.artefacts_dir / "predictions")
    board = client.get("/api/leaderboard", headers=pop.headers("owner")).json()
    assert board["tie_method"] == "ci_overlap"


def test_impact_per_model_and_baseline(client: TestClient, pop: Populated) -> None:
    q = "abstracts_per_year=20000&cost_per_missed_paper=100&ai_cost_per_year=5000&ai_cost=acme=12000"
    out = client.get(
        f"/api/impact?{q}&baseline_cost_per_year=1000", headers=pop.headers("owner")
    ).json()
    assert out["assumptions"]["abstracts_per_year"] == 20000
    rows = {r["model"]: r for r in out["rows"]}
    base = rows["internal baseline (TF-IDF + LR)"]
    assert base["ai_cost"] == 1000 and base["vs_baseline"] == 0
    assert rows["ClinBERT-small"]["ai_cost"] == 12000 and rows["MedMiniLM-LoRA"]["ai_cost"] == 5000
    for r in out["rows"]:
        assert r["total_cost"] == pytest.approx(
            r["miss_cost"] + r["reviewer_cost"] + r["ai_cost"], abs=0.05
        )
        assert r["miss_cost"] == pytest.approx(r["missed_per_year"] * 100, rel=1e-3)
    assert any("20,000 abstracts" in s for s in out["statements"])
    acme = client.get("/api/impact", headers=pop.headers("acme")).json()
    assert {r["vendor"] for r in acme["rows"]} == {"acme", "internal baseline"}


# -- submissions, jobs, results: own only, others are 404 -----------------------------------
def test_contributor_lists_only_own_submissions(client: TestClient, pop: Populated) -> None:
    acme = client.get("/api/submissions", headers=pop.headers("acme")).json()["submissions"]
    assert {s["contributor"] for s in acme} == {"acme"} and len(acme) == 2
    everything = client.get("/api/submissions", headers=pop.headers("owner")).json()["submissions"]
    assert len(everything) == 4
    only = client.get("/api/submissions?contributor=globex", headers=pop.headers("owner")).json()
    assert [s["contributor"] for s in only["submissions"]] == ["globex"]
    assert_error(client.get("/api/submissions"), 401)


def test_own_submission_detail_jobs_and_results(client: TestClient, pop: Populated) -> None:
    sid = pop.submissions["acme"][0]
    sub = client.get(f"/api/submissions/{sid}", headers=pop.headers("acme")).json()
    assert sub["name"] == "ClinBERT-small" and [j["kind"] for j in sub["jobs"]] == [
        "phase1",
        "phase2",
    ]
    assert [r["phase"] for r in sub["results"]] == [1, 2]
    m = sub["results"][1]["metrics"]
    assert set(m) >= {
        "macro_f1",
        "macro_f1_ci",
        "per_class",
        "confusion",
        "robustness",
        "delta_vs_phase1",
    }
    assert set(sub["results"][1]["provenance"]) <= {
        "compute",
        "tier",
        "wall_s",
        "corpus_hash",
        "bundle_hash",
    }
    res = client.get(f"/api/submissions/{sid}/results", headers=pop.headers("acme")).json()[
        "results"
    ]
    assert res == sub["results"]
    rid = pop.results[sid][1]
    assert client.get(f"/api/results/{rid}", headers=pop.headers("acme")).json()["phase"] == 2
    jid = pop.jobs[sid][1]
    assert client.get(f"/api/jobs/{jid}", headers=pop.headers("acme")).json()["state"] == "done"
    events = client.get(f"/api/jobs/{jid}/events", headers=pop.headers("acme")).json()["events"]
    assert events and "loss" in events[0] and any("val_macro_f1" in e for e in events)


def test_running_job_reports_progress(client: TestClient, pop: Populated) -> None:
    jid = pop.jobs[pop.submissions["acme"][1]][1]
    job = client.get(f"/api/jobs/{jid}", headers=pop.headers("acme")).json()
    assert job["state"] == "running" and job["terminal"] is False
    assert job["fraction"] == pytest.approx(0.4) and job["progress"]["eta_s"] == 420


@pytest.mark.parametrize("who", ["acme", "globex"])
def test_others_things_are_404_exactly_like_missing_ones(
    client: TestClient, pop: Populated, who: str
) -> None:
    h = pop.headers(who)
    for sid in other_vendor_ids(pop, who):
        for path in (f"/api/submissions/{sid}", f"/api/submissions/{sid}/results"):
            err = assert_error(client.get(path, headers=h), 404, "not_found")
            assert all(v not in err["message"] for v in pop.tokens)  # no vendor named
        for jid in pop.jobs[sid]:
            assert_error(client.get(f"/api/jobs/{jid}", headers=h), 404, "not_found")
            assert_error(client.get(f"/api/jobs/{jid}/events", headers=h), 404, "not_found")
        for rid in pop.results[sid]:
            assert_error(client.get(f"/api/results/{rid}", headers=h), 404, "not_found")
    missing = client.get("/api/submissions/9999", headers=h).json()["error"]
    other = client.get(f"/api/submissions/{other_vendor_ids(pop, who)[0]}", headers=h).json()[
        "error"
    ]
    assert missing["hint"] == other["hint"] and missing["code"] == other["code"]
    assert_error(client.get("/api/jobs/1", headers=h), 404)  # the baseline job is owner-only


def test_job_errors_owner_sees_message_contributor_sees_class(
    client: TestClient, pop: Populated
) -> None:
    jid = pop.jobs[pop.submissions["initech"][0]][0]
    owner = client.get(f"/api/jobs/{jid}", headers=pop.headers("owner")).json()
    assert owner["error_class"] == "out_of_memory" and "OOM-SECRET" in owner["error_message"]
    tok = pop.tokens["initech"]
    mine = client.get(f"/api/jobs/{jid}", headers={"Authorization": f"Bearer {tok}"})
    assert mine.json()["error_class"] == "out_of_memory" and "OOM-SECRET" not in mine.text
    log = client.get(f"/api/jobs/{jid}/log", headers=pop.headers("owner")).json()
    assert "retrying" in log["log_tail"]
    assert_error(
        client.get(f"/api/jobs/{jid}/log", headers={"Authorization": f"Bearer {tok}"}), 404
    )


# -- owner-only endpoints ----------------------------------------------------------------
OWNER_GETS = (
    "/api/contributors",
    "/api/contributors/acme",
    "/api/jobs",
    "/api/corpus-versions",
    "/api/corpus-versions/1",
    "/api/audit",
    "/api/audit/verify",
)
OWNER_POSTS = ("/api/publish", "/api/unpublish", "/api/submissions/1/rerun")


@pytest.mark.parametrize("who", ["acme", None])
def test_owner_endpoints_refuse_everyone_else(
    client: TestClient, pop: Populated, who: str | None
) -> None:
    status = 401 if who is None else 404
    for path in OWNER_GETS:
        assert_error(client.get(path, headers=pop.headers(who)), status)
    for path in OWNER_POSTS:
        assert_error(client.post(path, headers=pop.headers(who)), status)
    assert_error(
        client.patch("/api/contributors/acme", headers=pop.headers(who), json={"revoked": True}),
        status,
    )
    assert client.get("/api/leaderboard", headers=pop.headers("owner")).json()["published"] is False


def test_owner_reads_everything(client: TestClient, pop: Populated) -> None:
    h = pop.headers("owner")
    names = [c["name"] for c in client.get("/api/contributors", headers=h).json()["contributors"]]
    assert names == ["acme", "globex", "initech"]
    acme = client.get("/api/contributors/acme", headers=h).json()
    assert acme["submissions_used"] == 2 and "token_hash" not in acme and "token_salt" not in acme
    jobs = client.get("/api/jobs", headers=h).json()["jobs"]
    assert len(jobs) == 9 and {"attempts", "error_class", "error_message"} <= set(jobs[0])
    cvs = client.get("/api/corpus-versions", headers=h).json()["corpus_versions"]
    assert cvs[0]["active"] and cvs[0]["n_holdout"] > 0
    one = client.get(f"/api/corpus-versions/{cvs[0]['id']}", headers=h).json()
    assert "eda" in one["report_keys"]
    assert_error(client.get("/api/corpus-versions/99", headers=h), 404)
    eda = client.get("/api/eda", headers=pop.headers("acme")).json()
    assert eda["eda"]["classes"][0]["name"] == "neoplasms" and eda["eda"]["k"] == 10


def test_contributor_lifecycle_is_audited(client: TestClient, pop: Populated) -> None:
    h = pop.headers("owner")
    created = client.post(
        "/api/contributors", headers=h, json={"name": "umbrella", "max_submissions": 2}
    )
    assert created.status_code == 201
    token = created.json()["token"]
    assert token.startswith("bsc_") and created.json()["contributor"]["max_submissions"] == 2
    mine = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/me", headers=mine).json()["submissions_left"] == 2
    assert "token" not in client.get("/api/contributors/umbrella", headers=h).json()
    upd = client.patch(
        "/api/contributors/umbrella", headers=h, json={"max_submissions": 4, "budget_pflops": 10}
    )
    assert upd.json()["max_submissions"] == 4 and upd.json()["budget_pflops"] == 10
    client.patch("/api/contributors/umbrella", headers=h, json={"revoked": True})
    assert "revoked" in assert_error(client.get("/api/me", headers=mine), 401)["message"]
    assert_error(client.patch("/api/contributors/nobody", headers=h, json={"revoked": True}), 404)
    dup = client.post("/api/contributors", headers=h, json={"name": "umbrella"})
    assert_error(dup, 422, "config_error")
    actions = [e["action"] for e in client.get("/api/audit", headers=h).json()["entries"]]
    assert actions[-3:] == ["contributor.add", "contributor.update", "contributor.revoke"]


def test_rerun_requeues_jobs_and_is_audited(client: TestClient, pop: Populated) -> None:
    sid = pop.submissions["acme"][1]  # phase 2 still running
    out = client.post(f"/api/submissions/{sid}/rerun", headers=pop.headers("owner")).json()
    assert len(out["jobs"]) == 2 and out["cancelled_jobs"] == [pop.jobs[sid][1]]
    sub = client.get(f"/api/submissions/{sid}", headers=pop.headers("acme")).json()
    states = [j["state"] for j in sub["jobs"]]
    assert states == ["done", "cancelled", "queued", "queued"] and sub["status"] == "accepted"
    assert count_audit(pop.ws, "submission.rerun") == 1
    assert_error(client.post("/api/submissions/999/rerun", headers=pop.headers("owner")), 404)


# -- audit ---------------------------------------------------------------------------------
def test_audit_verify_detects_an_edit(client: TestClient, pop: Populated) -> None:
    h = pop.headers("owner")
    client.post("/api/publish", headers=h)
    assert client.get("/api/audit/verify", headers=h).json()["ok"] is True
    t = schema.audit_log
    with pop.ws.store.write() as conn:
        first = conn.execute(select(t.c.id).where(t.c.action == "leaderboard.publish")).scalar()
        conn.execute(t.update().where(t.c.id == first).values(payload={"rows": 0}))
    out = client.get("/api/audit/verify", headers=h).json()
    assert out["ok"] is False and f"entry {first}" in out["message"]
    assert audit.verify(pop.ws.store)[0] is False


# -- upload --------------------------------------------------------------------------------
def _tarball(size: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        data = random.Random(0).randbytes(size)  # incompressible
        info = tarfile.TarInfo("bedside.toml")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_upload_over_the_limit_is_413(client: TestClient, pop: Populated) -> None:
    h = pop.headers("acme")
    big = _tarball(64_000)
    err = assert_error(
        client.post("/api/submissions", headers=h, files={"bundle": ("b.tar.gz", big)}), 413
    )
    assert err["code"] == "upload_too_large" and "max_bundle_mb" in err["hint"]

    def chunks():  # no Content-Length: the streamed byte count still stops it
        for i in range(0, len(big), 1000):
            yield big[i : i + 1000]

    boundary = "bedsideboundary"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="bundle"; filename="b.tgz"\r\n\r\n'.encode()

    def body():
        yield head
        yield from chunks()
        yield f"\r\n--{boundary}--\r\n".encode()

    resp = client.post(
        "/api/submissions",
        headers={**h, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        content=body(),
    )
    assert_error(resp, 413, "upload_too_large")
    assert not list((pop.ws.root / "uploads").glob("*"))  # partial files are removed


def test_upload_must_be_a_multipart_archive(client: TestClient, pop: Populated) -> None:
    h = pop.headers("acme")
    assert_error(client.post("/api/submissions", headers=h, content=b"xx"), 422, "bundle_error")
    wrong = client.post("/api/submissions", headers=h, files={"bundle": ("model.exe", b"MZ")})
    assert "expected a bundle archive" in assert_error(wrong, 422, "bundle_error")["message"]
    other = client.post("/api/submissions", headers=h, files={"weights": ("b.tar.gz", b"x")})
    assert_error(other, 422, "bundle_error")
    assert_error(client.post("/api/submissions", files={"bundle": ("b.tar.gz", b"x")}), 401)
    owner = client.post(
        "/api/submissions", headers=pop.headers("owner"), files={"bundle": ("b.tar.gz", b"x")}
    )
    assert_error(owner, 422, "config_error")


def test_upload_reaches_intake(client: TestClient, pop: Populated) -> None:
    """A small archive that is not a valid bundle is refused by intake (not by the upload)."""
    resp = client.post(
        "/api/submissions",
        headers=pop.headers("acme"),
        files={"bundle": ("b.tar.gz", _tarball(100))},
    )
    err = assert_error(resp, 422, "bundle_error")
    assert "larger than" not in err["message"]
    assert not list((pop.ws.root / "uploads").glob("*"))


# -- nothing per record ------------------------------------------------------------------
def _all_gets(pop: Populated, who: str) -> list[str]:
    paths = ["/api/me", "/api/leaderboard", "/api/impact", "/api/eda", "/api/submissions"]
    for sid in (
        pop.submissions[who]
        if who != "owner"
        else [s for ids in pop.submissions.values() for s in ids]
    ):
        paths += [f"/api/submissions/{sid}", f"/api/submissions/{sid}/results"]
        for jid in pop.jobs[sid]:
            paths += [f"/api/jobs/{jid}", f"/api/jobs/{jid}/events"]
        paths += [f"/api/results/{rid}" for rid in pop.results[sid]]
    if who == "owner":
        paths += list(OWNER_GETS)
        paths += [f"/api/jobs/{j}/log" for ids in pop.jobs.values() for j in ids]
    return paths


@pytest.mark.parametrize("who", ["owner", "acme"])
def test_no_endpoint_returns_corpus_text_or_row_ids(
    client: TestClient, pop: Populated, who: str
) -> None:
    h = pop.headers(who)
    client.post("/api/publish", headers=pop.headers("owner"))
    for path in _all_gets(pop, who):
        resp = client.get(path, headers=h)
        assert resp.status_code == 200, (path, resp.text)
        assert CANARY not in resp.text, path
        assert ROW_PREFIX not in resp.text, path
        assert '"probs"' not in resp.text and '"row_ids"' not in resp.text, path
