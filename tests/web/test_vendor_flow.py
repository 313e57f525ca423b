"""The vendor's flow and the run pages: stage and check an upload, queue or discard it, withdraw
a queued submission, follow it (queue position, ETA, server-sent events), compare results;
decisions in words and hidden ranks on the leaderboard; token rotation in the API."""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bedside.store import schema
from bedside.web import runs
from tests.web.conftest import post_form
from tests.web.test_pages import login
from tests.web.webdata import CLASSES, Populated


def _targz(src: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for f in sorted(src.iterdir()):
            tf.add(f, arcname=f.name)
    return buf.getvalue()


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A valid tiny encoder bundle for the populated corpus's classes, as .tar.gz bytes."""
    from bedside.testing.tinymodels import make_tiny_bundle

    d = make_tiny_bundle(
        tmp_path_factory.mktemp("bundle") / "b",
        kind="encoder",
        classes=CLASSES,
        manifest_overrides={"name": "Tiny-Web", "train": {"epochs": 1, "max_length": 32}},
        hidden=16,
        layers=1,
    )
    return _targz(d)


@pytest.fixture
def big_client(pop: Populated) -> Iterator[TestClient]:
    from bedside.web.app import create_app

    app = create_app(pop.ws)
    app.state.sse_every_s = 0.05
    with TestClient(app) as c:
        yield c


def _bad_tarball() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        data = b'name = "x"\n'
        info = tarfile.TarInfo("bedside.toml")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_a_refused_bundle_is_staged_with_the_intake_message_and_nothing_queued(
    client: TestClient, pop: Populated
) -> None:
    h = pop.headers("acme")
    before = client.get("/api/submissions", headers=h).json()["submissions"]
    resp = client.post("/api/uploads", headers=h, files={"bundle": ("b.tar.gz", _bad_tarball())})
    assert resp.status_code == 201, resp.text
    staged = resp.json()
    assert staged["check"]["ok"] is False
    err = staged["check"]["error"]
    assert err["code"] == "bundle_error" and err["message"] and "hint" in err
    assert client.get("/api/submissions", headers=h).json()["submissions"] == before
    # only the one who staged it sees it
    assert (
        client.get(f"/api/uploads/{staged['id']}", headers=pop.headers("globex")).status_code == 404
    )
    assert client.get(f"/api/uploads/{staged['id']}", headers=h).json()["id"] == staged["id"]
    gone = client.delete(f"/api/uploads/{staged['id']}", headers=h)
    assert gone.json() == {"id": staged["id"], "discarded": True}
    assert client.get(f"/api/uploads/{staged['id']}", headers=h).status_code == 404
    assert not list((pop.ws.root / "uploads").glob("*"))
    # the owner must say for whom
    owner = client.post(
        "/api/uploads", headers=pop.headers("owner"), files={"bundle": ("b.tar.gz", b"x")}
    )
    assert owner.status_code == 422 and "contributor" in owner.json()["error"]["hint"]


def test_the_upload_page_has_a_labelled_file_input_and_curl_for_this_server(
    client: TestClient, pop: Populated
) -> None:
    login(client, pop.tokens["acme"])
    html = client.get("/submissions/new").text
    assert '<label for="bundle">' in html and 'id="bundle"' in html
    assert "http://testserver/api/uploads" in html and "bedside submit" not in html
    # the no-JS form posts multipart with its CSRF token in the query string
    action = re.search(r'action="(/submissions/new\?csrf_token=[0-9a-f]+)"', html)
    assert action
    refused = client.post(
        "/submissions/new?csrf_token=wrong",
        files={"bundle": ("b.tar.gz", _bad_tarball())},
        headers={"Origin": "http://testserver"},
    )
    assert refused.status_code == 403
    resp = client.post(
        action.group(1),
        files={"bundle": ("b.tar.gz", _bad_tarball())},
        headers={"Origin": "http://testserver"},
        follow_redirects=False,
    )
    assert resp.status_code == 303 and resp.headers["location"].startswith("/submissions/new/")
    page = client.get(resp.headers["location"]).text
    assert "does not pass intake" in page and "Queue for evaluation" not in page


@pytest.mark.slow
def test_a_vendor_uploads_checks_queues_and_withdraws(
    client: TestClient, pop: Populated, tiny_bundle: bytes
) -> None:
    from bedside.web.app import create_app

    h = pop.headers("initech")
    with TestClient(create_app(pop.ws)) as c:  # no tiny upload limit here
        staged = c.post("/api/uploads", headers=h, files={"bundle": ("t.tar.gz", tiny_bundle)})
        assert staged.status_code == 201, staged.text
        check = staged.json()["check"]
        assert check["ok"] is True, check
        assert check["bundle"]["name"] == "Tiny-Web" and check["estimate"]["total"] > 0
        assert check["fits_budget"] is True
        sub = c.post(f"/api/uploads/{staged.json()['id']}/submit", headers=h)
        assert sub.status_code == 201, sub.text
        sid = sub.json()["id"]
        view = c.get(f"/api/submissions/{sid}", headers=h).json()
        assert [j["state"] for j in view["jobs"]] == ["queued", "queued"]
        assert view["jobs"][0]["queue_position"] >= 1
        # not anyone else's to withdraw
        assert (
            c.post(f"/api/submissions/{sid}/withdraw", headers=pop.headers("acme")).status_code
            == 404
        )
        left = c.get("/api/me", headers=h).json()["submissions_left"]
        out = c.post(f"/api/submissions/{sid}/withdraw", headers=h)
        assert out.status_code == 200 and out.json()["status"] == "cancelled"
        assert {j["state"] for j in out.json()["jobs"]} == {"cancelled"}
        assert c.get("/api/me", headers=h).json()["submissions_left"] == left + 1
        again = c.post(f"/api/submissions/{sid}/withdraw", headers=h)
        assert again.status_code == 409 and again.json()["error"]["code"] == "not_withdrawable"
        login(c, pop.tokens["initech"])
        page = c.get(f"/submissions/{sid}").text
        assert "was cancelled" in page and "appear here when the jobs finish" not in page


def test_queue_position_eta_and_the_no_worker_banner() -> None:
    t0 = "2026-01-01T00:00:00+00:00"
    done = [
        {"id": 1, "kind": "phase1", "state": "done", "started_at": t0,
         "finished_at": "2026-01-01T00:02:00+00:00"},
        {"id": 2, "kind": "phase2", "state": "done", "started_at": t0,
         "finished_at": "2026-01-01T00:10:00+00:00"},
    ]  # fmt: skip
    queued = [
        {"id": 5, "kind": "phase1", "state": "queued", "depends_on": None, "created_at": t0},
        {"id": 6, "kind": "phase2", "state": "queued", "depends_on": 5, "created_at": t0},
    ]
    now = runs.parse_ts(t0) + 600  # type: ignore[operator]
    info = runs.QueueInfo(queued=queued, running=[], durations=runs.mean_durations(done), now=now)
    assert info.position(5) == 1 and info.position(6) == 2 and info.position(1) is None
    assert info.eta_s(queued[0]) == pytest.approx(120)
    assert info.eta_s(queued[1]) == pytest.approx(120 + 600)
    notice = runs.worker_notice(info)
    assert notice and "No worker is running" in notice and "10 min" in notice
    # a job running under a live lease: no banner
    running = [{"id": 4, "kind": "phase1", "state": "running", "started_at": t0,
                "lease_owner": "w1", "lease_expires": now + 30, "progress": {}}]  # fmt: skip
    busy = runs.QueueInfo(queued=queued, running=running, durations=info.durations, now=now)
    assert runs.worker_notice(busy) is None and busy.live_workers == 1
    assert runs.QueueInfo(queued, [], {}, now).eta_s(queued[0]) is None  # nothing measured yet


def test_the_owner_sees_the_no_worker_banner(client: TestClient, pop: Populated) -> None:
    with pop.ws.store.write() as conn:  # the populated running job's worker is gone
        conn.execute(
            schema.jobs.update()
            .where(schema.jobs.c.state == "running")
            .values(state="queued", created_at="2020-01-01T00:00:00+00:00")
        )
    login(client, pop.owner)
    assert "No worker is running" in client.get("/admin").text
    assert "No worker is running" in client.get("/submissions").text


def test_the_stream_sends_jobs_then_ends(big_client: TestClient, pop: Populated) -> None:
    sid = pop.submissions["acme"][0]  # finished
    h = pop.headers("acme")
    with big_client.stream("GET", f"/api/submissions/{sid}/stream", headers=h) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        text = "".join(resp.iter_text())
    events = re.findall(r"event: (\w+)\ndata: (.*)\n", text)
    assert [e for e, _ in events] == ["jobs", "end"]
    snap = json.loads(events[0][1])
    assert snap["id"] == sid and snap["terminal"] is True
    assert all(j["state"] == "done" for j in snap["jobs"])
    other = big_client.get(f"/api/submissions/{pop.submissions['globex'][0]}/stream", headers=h)
    assert other.status_code == 404


def test_the_leaderboard_decides_in_words_and_hides_ranks_before_publication(
    client: TestClient, pop: Populated
) -> None:
    acme = client.get("/api/leaderboard", headers=pop.headers("acme")).json()
    subs = [r for r in acme["rows"] if r["kind"] == "submission"]
    assert subs and all(r["rank"] is None and r["rank_label"] == "–" for r in subs)
    # before publication a contributor's line speaks of their own models only
    mine = acme["decision"]["summary"]
    assert mine.startswith("None of your models") or "ahead of the internal baseline" in mine
    assert "globex" not in mine and "initech" not in mine
    owner = client.get("/api/leaderboard", headers=pop.headers("owner")).json()
    assert any(r["rank"] for r in owner["rows"] if r["kind"] == "submission")
    summary = owner["decision"]["summary"]
    for r in owner["rows"]:
        if r["kind"] == "submission":
            vb = r["vs_baseline"]
            assert (
                vb["significant"] == (vb["ci"] is not None and (vb["ci"][0] > 0 or vb["ci"][1] < 0))
                or vb["method"] == "ci_overlap"
            )
    ahead = [r for r in owner["rows"] if r.get("vs_baseline", {}).get("significant")]
    if ahead:
        assert "ahead of the internal baseline" in summary
    else:
        assert summary.startswith("No vendor is significantly above the internal baseline")
    client.post("/api/publish", headers=pop.headers("owner"))
    published = client.get("/api/leaderboard", headers=pop.headers("acme")).json()
    assert any(r["rank"] for r in published["rows"] if r["kind"] == "submission")


def test_a_delta_is_coloured_only_when_its_ci_excludes_zero(
    client: TestClient, pop: Populated
) -> None:
    login(client, pop.owner)
    html = client.get("/leaderboard").text
    assert 'id="decision"' in html
    for cell in re.findall(r'<td class="num delta">(.*?)</td>', html, re.S):
        ci = re.search(r"\[(-?[\d.]+), (-?[\d.]+)\]", cell)
        coloured = 'class="pos"' in cell or 'class="neg"' in cell
        excludes = bool(ci) and (float(ci.group(1)) > 0 or float(ci.group(2)) < 0)
        assert coloured == excludes, cell


def test_compare_two_results(client: TestClient, pop: Populated) -> None:
    h = pop.headers("acme")
    board = client.get("/api/leaderboard", headers=h).json()
    base = next(r for r in board["rows"] if r["kind"] == "baseline")
    mine = next(r for r in board["rows"] if r["kind"] == "submission")
    view = client.get(f"/api/compare?a={base['result_id']}&b={mine['result_id']}", headers=h)
    assert view.status_code == 200, view.text
    body = view.json()
    assert [c["name"] for c in body["classes"]] == CLASSES
    assert body["test"]["method"] in ("paired_bootstrap", "ci_overlap") and body["test"]["words"]
    # someone else's result before publication: the same 404 as a missing one
    theirs = pop.results[pop.submissions["globex"][0]][-1]
    assert (
        client.get(f"/api/compare?a={base['result_id']}&b={theirs}", headers=h).status_code == 404
    )
    client.post("/api/publish", headers=pop.headers("owner"))
    # once published, any row on the board
    assert (
        client.get(f"/api/compare?a={mine['result_id']}&b={theirs}", headers=h).status_code == 200
    )
    login(client, pop.tokens["acme"])
    page = client.get(f"/compare?a={base['result_id']}&b={mine['result_id']}").text
    assert 'id="compare-verdict"' in page and 'id="compare"' in page


def test_token_rotation_in_the_api(client: TestClient, pop: Populated) -> None:
    old = pop.headers("globex")
    resp = client.post("/api/contributors/globex/token", headers=pop.headers("owner"))
    assert resp.status_code == 200 and resp.json()["token"].startswith("bsc_")
    assert client.get("/api/me", headers=old).status_code == 401
    new = {"Authorization": f"Bearer {resp.json()['token']}"}
    assert client.get("/api/me", headers=new).json()["name"] == "globex"
    assert client.post("/api/contributors/globex/token", headers=new).status_code == 404
    assert (
        client.post("/api/contributors/nobody/token", headers=pop.headers("owner")).status_code
        == 404
    )


def test_the_impact_form_keeps_what_was_typed_and_names_the_field(
    client: TestClient, pop: Populated
) -> None:
    page = client.get(
        "/impact?abstracts_per_year=lots&cost_per_missed_paper=77&currency=usd",
        headers=pop.headers("owner"),
    ).text
    assert "Abstracts per year must be a number" in page and "abstracts_per_year must" not in page
    assert 'value="77"' in page and 'aria-invalid="true"' in page


def test_the_report_downloads_from_the_admin_page(client: TestClient, pop: Populated) -> None:
    login(client, pop.owner)
    assert 'href="/admin/report.html"' in client.get("/admin").text
    resp = client.get("/admin/report.html")
    assert resp.status_code == 200 and "attachment" in resp.headers["content-disposition"]
    assert "<svg" in resp.text
    post_form(client, "/logout")
    login(client, pop.tokens["acme"])
    assert client.get("/admin/report.html").status_code == 404


def test_the_owner_picks_the_vendor_before_uploading(client: TestClient, pop: Populated) -> None:
    login(client, pop.owner)
    first = client.get("/submissions/new").text
    assert 'id="vendor-form"' in first and 'id="upload-form"' not in first
    chosen = client.get("/submissions/new?contributor=globex").text
    assert re.search(
        r'action="/submissions/new\?csrf_token=[0-9a-f]+&amp;contributor=globex"', chosen
    )
    assert 'data-api="/api/uploads?contributor=globex"' in chosen
    assert client.get("/submissions/new?contributor=nobody").status_code == 404


def test_impact_ranks_are_hidden_from_contributors_before_publication(
    client: TestClient, pop: Populated
) -> None:
    rows = client.get("/api/impact", headers=pop.headers("acme")).json()["rows"]
    assert all(r["rank_label"] == "–" for r in rows if r["kind"] == "submission")
    owner = client.get("/api/impact", headers=pop.headers("owner")).json()["rows"]
    assert any(r["rank_label"] not in ("–", "") for r in owner if r["kind"] == "submission")


def test_under_the_ladder_a_contributor_gets_no_paired_test(
    client: TestClient, pop: Populated
) -> None:
    from bedside.config import Policy

    ws = pop.ws
    ws.set_policy(Policy.from_dict({**ws.policy().to_dict(), "ladder_step": 0.05}))
    h = pop.headers("acme")
    board = client.get("/api/leaderboard", headers=h).json()
    subs = [r for r in board["rows"] if r["kind"] == "submission" and r.get("vs_baseline")]
    assert subs and all(r["vs_baseline"]["ci"] is None for r in subs)
    assert all(r["vs_baseline"]["method"] == "withheld" for r in subs)
    base = next(r for r in board["rows"] if r["kind"] == "baseline")
    view = client.get(
        f"/api/compare?a={base['result_id']}&b={subs[0]['result_id']}", headers=h
    ).json()
    assert view["test"]["method"] == "withheld" and view["test"]["ci"] is None
    owner = client.get("/api/leaderboard", headers=pop.headers("owner")).json()
    assert any(r["vs_baseline"]["ci"] for r in owner["rows"] if r["kind"] == "submission")
