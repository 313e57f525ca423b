"""Server-rendered pages, the login cookie, the OpenAPI file and the CLI commands of this area."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from bedside.store import schema
from tests.web.conftest import post_form
from tests.web.webdata import CANARY, ROW_PREFIX, Populated

ROOT = Path(__file__).resolve().parents[2]


def login(client: TestClient, token: str) -> None:
    resp = post_form(
        client, "/login", data={"token": token, "next": "/submissions"}, follow_redirects=False
    )
    assert resp.status_code == 303 and resp.headers["location"] == "/submissions"


def test_login_sets_a_strict_httponly_cookie(client: TestClient, pop: Populated) -> None:
    resp = post_form(client, "/login", data={"token": pop.owner}, follow_redirects=False)
    cookie = resp.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    bad = post_form(client, "/login", data={"token": "bsc_wrong"})
    assert bad.status_code == 401 and "not valid" in bad.text
    evil = post_form(
        client,
        "/login",
        data={"token": pop.owner, "next": "//evil.example"},
        follow_redirects=False,
    )
    assert evil.headers["location"] == "/leaderboard"
    out = post_form(client, "/logout", follow_redirects=False)
    assert out.status_code == 303 and 'bedside_session=""' in out.headers["set-cookie"]


def test_a_revoked_session_goes_back_to_login_without_a_loop(
    client: TestClient, pop: Populated
) -> None:
    login(client, pop.tokens["globex"])
    client.patch("/api/contributors/globex", headers=pop.headers("owner"), json={"revoked": True})
    client.cookies.clear()
    client.cookies.set("bedside_session", pop.tokens["globex"])
    resp = client.get("/submissions", follow_redirects=False)
    assert resp.status_code == 303 and 'bedside_session=""' in resp.headers["set-cookie"]
    assert client.get("/login?next=/submissions", follow_redirects=False).status_code == 200


def test_anonymous_is_sent_to_login(client: TestClient) -> None:
    for path in ("/submissions", "/data", "/admin", "/leaderboard", "/submissions/1"):
        resp = client.get(path, follow_redirects=False)
        assert resp.status_code == 303 and resp.headers["location"].startswith("/login?next=")
    assert client.get("/login").status_code == 200


def test_owner_pages(client: TestClient, pop: Populated) -> None:
    login(client, pop.owner)
    board = client.get("/leaderboard").text
    assert "Not published." in board and "globex" in board and "initech" in board
    assert "internal baseline (TF-IDF + LR)" in board and "<svg" in board
    assert re.search(r'class="rank">=?1<', board)
    admin = client.get("/admin").text
    assert "OOM-SECRET" in admin and "Publish leaderboard" in admin
    sub = client.get(f"/submissions/{pop.submissions['initech'][0]}").text
    assert "retrying with batch size 8" in sub and "Re-run this submission" in sub
    for path in ("/data", "/impact", "/submissions"):
        assert client.get(path).status_code == 200


def test_contributor_pages_before_and_after_publishing(client: TestClient, pop: Populated) -> None:
    login(client, pop.tokens["acme"])
    board = client.get("/leaderboard").text
    assert "Not published yet." in board and "ClinBERT-small" in board
    assert "globex" not in board and "MedMiniLM" not in board
    subs = client.get("/submissions").text
    assert "submissions left" in subs and "MedMiniLM" not in subs
    sid = pop.submissions["acme"][0]
    page = client.get(f"/submissions/{sid}").text
    for marker in (
        "Confusion matrix",
        "Per class",
        "Length robustness",
        "Training curve",
        "progress.js",
    ):
        assert marker in page
    assert "Re-run" not in page
    running = client.get(f"/submissions/{pop.submissions['acme'][1]}").text
    assert 'data-terminal="0"' in running
    other = client.get(f"/submissions/{pop.submissions['globex'][0]}")
    assert other.status_code == 404 and "MedMiniLM" not in other.text
    assert client.get("/admin").status_code == 404
    assert post_form(client, "/admin/publish", data={"publish": "1"}).status_code == 404
    data = client.get("/data").text
    assert "Exploratory Data Analysis" in data and "<svg" in data and CANARY not in data

    client.cookies.clear()
    login(client, pop.owner)
    assert (
        post_form(
            client, "/admin/publish", data={"publish": "1"}, follow_redirects=False
        ).status_code
        == 303
    )
    client.cookies.clear()
    login(client, pop.tokens["acme"])
    board = client.get("/leaderboard").text
    assert "Not published" not in board and "MedMiniLM-LoRA" in board and "globex" in board


def test_impact_page_form(client: TestClient, pop: Populated) -> None:
    login(client, pop.owner)
    page = client.get("/impact?abstracts_per_year=5000&ai_cost.acme=12000&currency=usd").text
    assert 'value="5000"' in page and "USD" in page and "5,000 abstracts a year" in page
    assert 'name="ai_cost.globex"' in page and "<svg" in page
    bad = client.get("/impact?abstracts_per_year=lots").text
    assert "must be a number" in bad


def test_admin_forms(client: TestClient, pop: Populated) -> None:
    login(client, pop.owner)
    created = post_form(
        client,
        "/admin/contributors",
        data={"name": "hooli", "max_submissions": "2"},
        follow_redirects=False,
    )
    # post/redirect/get: the token waits behind the redirect, and a reload shows it again
    assert created.status_code == 303 and created.headers["location"].startswith("/admin")
    shown = client.get("/admin")
    token = re.search(r'id="token-value">(bsc_[^<]+)</div>', shown.text)
    assert token and "never shown again" in shown.text
    again_shown = client.get("/admin")
    assert again_shown.text.count(token.group(1)) == 1 and "already exists" not in again_shown.text
    # rotating issues a new token: the old one stops working, the new one logs in
    rotated = post_form(client, "/admin/contributors/hooli/rotate", follow_redirects=False)
    assert rotated.status_code == 303
    new = re.search(r'id="token-value">(bsc_[^<]+)</div>', client.get("/admin").text)
    assert new and new.group(1) != token.group(1)
    h_old = {"Authorization": f"Bearer {token.group(1)}"}
    assert client.get("/api/me", headers=h_old).status_code == 401
    h_new = {"Authorization": f"Bearer {new.group(1)}"}
    assert client.get("/api/me", headers=h_new).json()["name"] == "hooli"
    # dismissed: gone for good
    post_form(client, "/admin/token/dismiss")
    assert new.group(1) not in client.get("/admin").text
    post_form(client, "/admin/contributors/hooli", data={"budget_pflops": "12", "action": "update"})
    post_form(client, "/admin/contributors/hooli", data={"action": "revoke"})
    with pop.ws.store.read() as conn:
        row = conn.execute(
            schema.contributors.select().where(schema.contributors.c.name == "hooli")
        ).first()
    assert row is not None and row.budget_pflops == 12 and row.revoked
    again = post_form(client, "/admin/contributors", data={"name": "hooli"})
    assert again.status_code == 422 and "already exists" in again.text
    sid = pop.submissions["globex"][0]
    resp = post_form(client, f"/admin/submissions/{sid}/rerun", follow_redirects=False)
    assert resp.headers["location"] == f"/submissions/{sid}"


def test_pages_carry_security_headers_and_no_external_assets(
    client: TestClient, pop: Populated
) -> None:
    login(client, pop.owner)
    for path in (
        "/leaderboard",
        "/data",
        "/impact",
        "/admin",
        f"/submissions/{pop.submissions['acme'][0]}",
    ):
        resp = client.get(path)
        assert "script-src 'self'" in resp.headers["content-security-policy"]
        assert not re.search(r'(src|href)="(https?:)?//', resp.text), path
        assert ROW_PREFIX not in resp.text and CANARY not in resp.text, path
    assert client.get("/static/bedside.css").status_code == 200
    docs = client.get("/docs")  # the API reference, rendered here from the spec
    assert docs.status_code == 200 and "/api/uploads" in docs.text and "/openapi.json" in docs.text


def test_committed_openapi_matches_the_app(pop: Populated) -> None:
    from bedside.web.app import create_app
    from bedside.web.openapi import dumps

    committed = (ROOT / "docs" / "openapi.json").read_text()
    assert json.loads(committed) == json.loads(dumps(create_app(pop.ws).openapi())), (
        "docs/openapi.json is stale: run `python -m bedside.web.openapi docs/openapi.json`"
    )


# -- CLI --------------------------------------------------------------------------------------
@pytest.fixture
def cli(pop: Populated):
    from bedside.cli.app import app

    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, ["--workspace", str(pop.ws.root), *args])

    return run


def test_cli_leaderboard_impact_publish(cli, pop: Populated) -> None:
    out = cli("leaderboard", "--format", "json")
    assert out.exit_code == 0, out.output
    board = json.loads(out.output)
    assert board["published"] is False and len(board["rows"]) == 5
    assert "not published" in cli("leaderboard").output
    imp = cli("impact", "--format", "json", "--abstracts-per-year", "1000", "--ai-cost", "acme=7")
    assert imp.exit_code == 0, imp.output
    rows = json.loads(imp.output)["rows"]
    assert {r["ai_cost"] for r in rows if r["vendor"] == "acme"} == {7.0}
    assert "abstracts a year" in cli("impact").output
    assert cli("publish").exit_code == 0 and "published" in cli("publish").output
    assert json.loads(cli("leaderboard", "--format", "json").output)["published"] is True
    assert "unpublished" in cli("unpublish").output


def test_cli_audit_verify_and_list(cli, pop: Populated) -> None:
    cli("publish")
    ok = cli("audit", "verify")
    assert ok.exit_code == 0 and "ok" in ok.output
    listed = json.loads(cli("audit", "list", "--format", "json", "-n", "3").output)
    assert listed[-1]["action"] == "leaderboard.publish"
    t = schema.audit_log
    with pop.ws.store.write() as conn:
        conn.execute(t.update().where(t.c.id == 2).values(actor="mallory"))
    broken = cli("audit", "verify")
    assert broken.exit_code == 1 and "entry 2" in broken.output


def test_cli_report_is_self_contained(cli, pop: Populated, tmp_path: Path) -> None:
    out = tmp_path / "r" / "report.html"
    res = cli("report", str(out))
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert html.count("<svg") >= 4 and "<style>" in html and "Business impact" in html
    assert (
        not re.search(r'(src|href)="(https?:)?//', html)
        and "<link" not in html
        and "<script" not in html
    )
    assert CANARY not in html and ROW_PREFIX not in html


def test_cli_help_for_every_command(cli) -> None:
    for cmd in (
        ["serve"],
        ["publish"],
        ["unpublish"],
        ["leaderboard"],
        ["impact"],
        ["report"],
        ["audit", "verify"],
        ["audit", "list"],
    ):
        res = cli(*cmd, "--help")
        assert res.exit_code == 0 and "Usage" in res.output, cmd
