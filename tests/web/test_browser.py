"""The pages in a real browser: Debian's chromium driven by Playwright against a live server.

Runs in CI (``CI=true``); skipped locally when /usr/bin/chromium or playwright is missing.
Screenshots go to the test's tmp dir, and to docs/screenshots/ when BEDSIDE_SCREENSHOTS is set.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bedside.store import schema
from bedside.testing.browser import CHROMIUM
from bedside.testing.browser import CHROMIUM_ARGS as ARGS
from tests.web.webdata import CANARY, Populated

DOCS_SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PNG = b"\x89PNG\r\n\x1a\n"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _require_browser() -> None:
    in_ci = os.environ.get("CI", "").lower() == "true"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        if in_ci:
            raise
        pytest.skip("playwright is not installed")
    if not CHROMIUM.exists():
        if in_ci:
            pytest.fail(f"{CHROMIUM} is missing; the browser test must run in CI")
        pytest.skip(f"{CHROMIUM} is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(pop: Populated) -> Iterator[str]:
    import uvicorn

    from bedside.web.app import create_app

    port = _free_port()
    srv = uvicorn.Server(
        uvicorn.Config(create_app(pop.ws), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the test server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


def test_pages_in_a_browser(server: str, pop: Populated, tmp_path: Path) -> None:
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    shots = tmp_path / "screenshots"
    shots.mkdir()

    def shot(page, name: str) -> None:
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            owner = browser.new_context(viewport={"width": 1360, "height": 900}).new_page()
            vendor = browser.new_context(viewport={"width": 1360, "height": 900}).new_page()
            for page, token in ((owner, pop.owner), (vendor, pop.tokens["acme"])):
                page.goto(f"{server}/leaderboard")
                expect(page.locator("#token")).to_be_visible()  # sent to the login form
                page.fill("#token", token)
                page.click("button[type=submit]")
                expect(page.locator("h1")).to_have_text("Leaderboard")

            # before publishing: the owner sees everything with a banner, acme only its rows
            expect(owner.locator("#not-published")).to_contain_text("Not published")
            expect(owner.locator("#leaderboard")).to_contain_text("MedMiniLM-LoRA")
            expect(vendor.locator("#not-published")).to_be_visible()
            expect(vendor.locator("#leaderboard")).to_contain_text("ClinBERT-small")
            expect(vendor.locator("#leaderboard")).not_to_contain_text("globex")
            expect(vendor.locator("#leaderboard")).to_contain_text("internal baseline")
            shot(vendor, "leaderboard-contributor-unpublished")
            expect(vendor.locator("nav.main")).not_to_contain_text("Admin")

            # a running job: the bar is live (JS polls /api/jobs/ID with the session cookie)
            running_sid = pop.submissions["acme"][1]
            vendor.goto(f"{server}/submissions/{running_sid}")
            expect(vendor.locator("#jobs")).to_contain_text("about 7 min left")  # written by the JS
            job_id = pop.jobs[running_sid][1]
            with pop.ws.store.write() as conn:
                conn.execute(
                    schema.jobs.update()
                    .where(schema.jobs.c.id == job_id)
                    .values(
                        progress={
                            "stage": "train",
                            "step": 270,
                            "total": 300,
                            "loss": 0.41,
                            "eta_s": 60,
                        }
                    )
                )
            expect(vendor.locator(f"tr[data-job-id='{job_id}'] .job-meta")).to_contain_text(
                "step 270 / 300"
            )

            vendor.goto(f"{server}/submissions/{pop.submissions['acme'][0]}")
            expect(vendor.locator("h1")).to_contain_text("ClinBERT-small")
            expect(vendor.locator("svg").first).to_be_visible()
            expect(vendor.get_by_text("Training curve")).to_have_count(1)
            shot(vendor, "submission")
            vendor.goto(f"{server}/submissions/{pop.submissions['globex'][0]}")
            expect(vendor.locator("h1")).to_contain_text("404")

            vendor.goto(f"{server}/data")
            expect(vendor.locator("h1")).to_have_text("Exploratory Data Analysis")
            assert CANARY not in vendor.content()
            shot(vendor, "data")

            owner.goto(f"{server}/impact")
            owner.fill("#abstracts_per_year", "25000")
            owner.fill("#ai_cost_per_year", "15000")
            owner.fill("#baseline_cost_per_year", "2000")
            owner.click("#impact-form button[type=submit]")
            expect(owner.locator(".assumptions")).to_contain_text("25,000 abstracts a year")
            expect(owner.locator("#impact")).to_contain_text("MiniLM head-only")
            shot(owner, "impact")

            # publish from the admin page; acme then sees every vendor
            owner.goto(f"{server}/admin")
            owner.click("#publishing button[type=submit]")
            expect(owner.locator("#publishing")).to_contain_text("published")
            expect(owner.locator("#publishing button")).to_have_text("Unpublish")
            shot(owner, "admin")
            vendor.goto(f"{server}/leaderboard")
            expect(vendor.locator("#not-published")).to_have_count(0)
            expect(vendor.locator("#leaderboard")).to_contain_text("globex")
            expect(vendor.locator("#leaderboard")).to_contain_text("initech")
            owner.goto(f"{server}/leaderboard")
            expect(owner.locator("#not-published")).to_have_count(0)
            shot(owner, "leaderboard")

            # log out: the cookie is gone and pages need a login again
            vendor.click("text=Log out")
            vendor.goto(f"{server}/submissions")
            expect(vendor.locator("#token")).to_be_visible()
        finally:
            browser.close()

    names = [
        "leaderboard",
        "leaderboard-contributor-unpublished",
        "submission",
        "data",
        "impact",
        "admin",
    ]
    for name in names:
        data = (shots / f"{name}.png").read_bytes()
        assert data.startswith(PNG), name
        assert len(data) > 5 * 1024, name
    if os.environ.get("BEDSIDE_SCREENSHOTS"):
        DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copyfile(shots / f"{name}.png", DOCS_SHOTS / f"{name}.png")
