"""A real browser on another origin (another port of 127.0.0.1, so the same *site*) auto-submits
a form to bedside's publish endpoint while the owner is logged in: bedside must refuse it."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bedside.leaderboard import is_published
from bedside.testing.browser import CHROMIUM
from bedside.testing.browser import CHROMIUM_ARGS as ARGS
from tests.web.test_browser import _require_browser, server  # noqa: F401  (fixture)
from tests.web.webdata import Populated

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def attacker() -> Iterator[tuple[str, dict[str, str]]]:
    """A second origin serving one page; ``page["html"]`` is set by the test."""
    content: dict[str, str] = {"html": ""}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = content["html"].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", content
    httpd.shutdown()
    httpd.server_close()


def test_cross_origin_form_post_is_refused(
    server: str,  # noqa: F811
    attacker: tuple[str, dict[str, str]],
    pop: Populated,
) -> None:
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    evil, content = attacker
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            page = browser.new_context().new_page()
            page.goto(f"{server}/login")
            page.fill("#token", pop.owner)
            page.click("button[type=submit]")
            expect(page.locator("h1")).to_have_text("Leaderboard")
            # even with the owner's real form token, another origin is refused
            page.goto(f"{server}/admin")
            token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.content())
            assert token
            content["html"] = (
                f'<form id="f" method="post" action="{server}/admin/publish">'
                f'<input name="publish" value="1"><input name="csrf_token" value="{token.group(1)}">'
                "</form><script>document.getElementById('f').submit()</script>"
            )
            with page.expect_response(f"{server}/admin/publish") as info:
                page.goto(evil)
            assert info.value.status == 403
            expect(page.locator("body")).to_contain_text("origin")
            assert not is_published(pop.ws)
            # the same form from bedside's own page works
            page.goto(f"{server}/admin")
            page.click("text=Publish leaderboard")
            expect(page.locator("body")).to_contain_text("Unpublish")
            assert is_published(pop.ws)
        finally:
            browser.close()
