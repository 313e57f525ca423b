"""Browser guards: same-origin check, CSRF tokens, login rate limit (see ``bedside.web.guard``)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from bedside.leaderboard import is_published
from bedside.store import audit
from bedside.web.guard import LoginLimiter, LoginRateLimited
from tests.web.conftest import ORIGIN, form_token, post_form
from tests.web.webdata import Populated


def _login(client: TestClient, token: str) -> None:
    resp = post_form(client, "/login", data={"token": token}, follow_redirects=False)
    assert resp.status_code == 303, resp.text


def _refused_page(resp) -> None:  # type: ignore[no-untyped-def]
    assert resp.status_code == 403, resp.text
    assert "text/html" in resp.headers["content-type"]
    assert "forbidden" in resp.text


def _refused_json(resp) -> None:  # type: ignore[no-untyped-def]
    assert resp.status_code == 403, resp.text
    err = resp.json()["error"]
    assert err["code"] == "forbidden" and err["message"] and "Bearer" in err["hint"]


def test_every_post_form_on_every_page_carries_the_token(
    client: TestClient, pop: Populated
) -> None:
    _login(client, pop.owner)
    sid = pop.submissions["initech"][0]
    token = form_token(client, "/admin")
    for path in ("/admin", f"/submissions/{sid}", "/leaderboard", "/login"):
        html = client.get(path).text
        forms = re.findall(r"<form [^>]*method=\"post\"[^>]*>(.*?)</form>", html, re.S)
        assert forms, path
        for body in forms:
            assert f'name="csrf_token" value="{token}"' in body, (path, body[:200])


def test_form_without_or_with_a_forged_token_is_refused(client: TestClient, pop: Populated) -> None:
    _login(client, pop.owner)
    h = {"Origin": ORIGIN}
    _refused_page(client.post("/admin/publish", data={"publish": "1"}, headers=h))
    forged = {"publish": "1", "csrf_token": "0" * 64}
    _refused_page(client.post("/admin/publish", data=forged, headers=h))
    # a token of another session (before login) does not fit this one
    other = TestClient(client.app)
    stale = form_token(other)
    _refused_page(
        client.post("/admin/publish", data={"publish": "1", "csrf_token": stale}, headers=h)
    )
    assert not is_published(pop.ws)
    ok = post_form(client, "/admin/publish", data={"publish": "1"}, follow_redirects=False)
    assert ok.status_code == 303 and is_published(pop.ws)


def test_foreign_origin_and_cross_site_fetch_are_refused(
    client: TestClient, pop: Populated
) -> None:
    _login(client, pop.owner)
    token = form_token(client, "/admin")
    data = {"publish": "1", "csrf_token": token}
    for headers in (
        {"Origin": "http://127.0.0.1:9999"},
        {"Origin": "http://testserver.evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "cross-site"},
        {},  # the cookie but neither header
    ):
        _refused_page(client.post("/admin/publish", data=data, headers=headers))
        _refused_json(client.post("/api/publish", headers=headers))
    assert not is_published(pop.ws)
    # a browser that sends only Sec-Fetch-Site: same-origin is let through
    ok = client.post(
        "/admin/publish",
        data=data,
        headers={"Sec-Fetch-Site": "same-origin"},
        follow_redirects=False,
    )
    assert ok.status_code == 303 and is_published(pop.ws)


def test_api_with_the_cookie_needs_the_origin(client: TestClient, pop: Populated) -> None:
    _login(client, pop.owner)
    _refused_json(client.post("/api/unpublish", headers={"Origin": "http://localhost:8001"}))
    ok = client.post("/api/publish", headers={"Origin": ORIGIN})
    assert ok.status_code == 200 and ok.json()["published"]


def test_bearer_tokens_are_not_cookie_auth_and_still_work(
    client: TestClient, pop: Populated
) -> None:
    # no Origin, no Sec-Fetch-Site: scripts and the CLI; even a foreign Origin cannot have set
    # an Authorization header without CORS, which bedside does not grant
    r = client.post("/api/publish", headers=pop.headers("owner"))
    assert r.status_code == 200 and r.json()["published"]
    r = client.post("/api/unpublish", headers={**pop.headers("owner"), "Origin": "http://e"})
    assert r.status_code == 200 and not r.json()["published"]


def test_login_is_rate_limited_per_address_and_every_failure_audited(
    client: TestClient, pop: Populated
) -> None:
    before = len(audit.entries(pop.ws.store))
    for _ in range(5):
        bad = post_form(client, "/login", data={"token": "bsc_wrong_token_123"})
        assert bad.status_code == 401
    limited = post_form(client, "/login", data={"token": pop.owner}, follow_redirects=False)
    assert limited.status_code == 429, limited.text
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert "too many failed logins" in limited.text and "Wait" in limited.text
    rows = audit.entries(pop.ws.store)[before:]
    assert [r["action"] for r in rows] == ["login.failed"] * 5
    assert all(r["payload"]["client"] == "testclient" for r in rows)
    assert rows[-1]["payload"]["limited"] and "bsc_wrong" not in str(rows)
    assert audit.verify(pop.ws.store)[0]
    # the API is bearer-authenticated and not affected by the form's limit
    assert client.get("/api/me", headers=pop.headers("owner")).status_code == 200


def test_limiter_window_slides() -> None:
    now = [1000.0]
    lim = LoginLimiter(max_failures=2, window_s=60, clock=lambda: now[0])
    lim.failed("a")
    now[0] += 30
    lim.failed("a")
    with pytest.raises(LoginRateLimited) as e:
        lim.check("a")
    assert e.value.retry_after == 30 and e.value.http_status == 429
    lim.check("b")  # per address
    now[0] += 30.5
    lim.check("a")  # the first failure aged out


def test_limiter_memory_is_bounded() -> None:
    lim = LoginLimiter(max_clients=3)
    for i in range(10):
        lim.failed(f"10.0.0.{i}")
    assert len(lim._fails) == 3
