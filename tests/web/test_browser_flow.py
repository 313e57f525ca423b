"""The web app as its users have it, in Debian's chromium: a vendor uploads a bundle and watches it
reach "done"; the owner's new token survives a reload; every page passes axe-core (no serious or
critical violation) and has no horizontal overflow at 390 px.

axe-core comes from the npm registry (``scripts/setup.sh --dev`` puts it in build/npm/); the
test injects it into each page of a context that bypasses the page's CSP (only the test does).
Screenshots go to docs/screenshots/ when BEDSIDE_SCREENSHOTS is set.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from bedside.testing.browser import CHROMIUM
from bedside.testing.browser import CHROMIUM_ARGS as ARGS
from tests.web.test_browser import DOCS_SHOTS, _require_browser, server  # noqa: F401
from tests.web.test_vendor_flow import tiny_bundle  # noqa: F401  (fixture)
from tests.web.webdata import Populated

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "build" / "npm" / "package" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
TEST_BROWSER_SHOTS = {
    "leaderboard",
    "leaderboard-contributor-unpublished",
    "submission",
    "data",
    "impact",
    "admin",
}
DESKTOP = {"width": 1360, "height": 900}

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _require_axe() -> None:
    if AXE.exists():
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{AXE} is missing: scripts/setup.sh --dev fetches axe-core")
    pytest.skip(f"{AXE} is missing (scripts/setup.sh --dev fetches it)")


def _login(page: Any, base: str, token: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{base}/login")
    page.fill("#token", token)
    page.click("main button[type=submit]")
    expect(page.locator("h1")).to_have_text("Leaderboard")


def _shots(name: str, page: Any, out: Path) -> None:
    page.screenshot(path=str(out / f"{name}.png"), full_page=True)


def test_a_vendor_uploads_a_bundle_and_watches_it_finish(
    server: str,  # noqa: F811
    pop: Populated,
    tiny_bundle: bytes,  # noqa: F811
    tmp_path: Path,
) -> None:
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    from bedside.jobs.worker import drain
    from bedside.sandbox.launch import FakeLauncher

    archive = tmp_path / "tiny.tar.gz"
    archive.write_bytes(tiny_bundle)
    shots = tmp_path / "shots"
    shots.mkdir()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            page = browser.new_context(viewport=DESKTOP).new_page()
            _login(page, server, pop.tokens["initech"])
            page.goto(f"{server}/submissions")
            page.click("#new-submission")
            expect(page.locator("h1")).to_have_text("Submit a bundle")
            expect(page.locator("#curl")).to_contain_text(f"{server}/api/uploads")
            _shots("upload", page, shots)
            page.set_input_files("#bundle", str(archive))
            page.click("#upload-form button[type=submit]")
            expect(page.locator("#check-result")).to_contain_text("Bundle OK", timeout=60_000)
            expect(page.locator("main")).to_contain_text("PFLOPs")
            _shots("upload-check", page, shots)
            page.click("#queue-it")
            expect(page.locator("#jobs")).to_contain_text("queue", timeout=30_000)
            sid = int(page.url.rstrip("/").rsplit("/", 1)[1])
            _shots("submission-queued", page, shots)

            # a worker (with the fake launcher: no sandbox) runs the queue while the page watches
            done: list[Any] = []
            worker = threading.Thread(
                target=lambda: done.extend(drain(pop.ws, FakeLauncher())), daemon=True
            )
            time.sleep(1.0)
            worker.start()
            expect(page.locator("#sub-status")).to_contain_text("done", timeout=60_000)
            worker.join(timeout=60)
            states = page.locator("#jobs tr[data-job-id] .tag").all_inner_texts()
            assert states and all("done" in s for s in states), states
            expect(page.locator("main")).to_contain_text("Phase 1 · out of the box")
            ids = {
                int(x)
                for x in page.locator("#jobs tr[data-job-id]").evaluate_all(
                    "rows => rows.map(r => r.getAttribute('data-job-id'))"
                )
            }
            assert ids and ids <= {o.job_id for o in done}, (ids, done)
            assert f"/submissions/{sid}" in page.url
        finally:
            browser.close()
    _publish(shots, ["upload", "upload-check"])


def test_the_owners_new_token_survives_a_reload(
    server: str,  # noqa: F811
    pop: Populated,
) -> None:
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            page = browser.new_context(viewport=DESKTOP).new_page()
            _login(page, server, pop.owner)
            page.goto(f"{server}/admin")
            page.fill("#new-name", "hooli")
            page.click("text=Create and show token")
            token = page.locator("#token-value")
            expect(token).to_contain_text("bsc_")
            first = token.inner_text()
            page.reload()
            expect(page.locator("#token-value")).to_have_text(first)
            expect(page.locator("#token-value")).to_have_count(1)
            assert "already exists" not in page.content()
            page.on("dialog", lambda d: d.accept())  # the rotate confirmation
            page.locator("tr", has_text="hooli").locator("text=Rotate token").click()
            expect(page.locator("#new-token")).to_contain_text("New token for hooli")
            assert page.locator("#token-value").inner_text() != first
            page.click("#dismiss-token")
            expect(page.locator("#token-value")).to_have_count(0)
        finally:
            browser.close()


def _pages(pop: Populated) -> dict[str, list[str]]:
    acme = pop.submissions["acme"]
    owner = [
        "/leaderboard",
        "/submissions",
        f"/submissions/{acme[0]}",
        f"/submissions/{acme[1]}",
        "/submissions/new",
        "/data",
        "/impact",
        "/admin",
        "/compare?a=1&b=3",
        "/docs",
        "/screening",
        "/leaderboard/history",
        "/data/drift",
    ]
    # the pages a contributor sees differently (the rest render alike for both)
    vendor = [
        "/leaderboard",
        "/submissions",
        f"/submissions/{acme[0]}",
        "/submissions/new",
        "/compare",
        "/leaderboard/history",
    ]
    return {"owner": owner, "acme": vendor}


AXE_RUN = """async () => {
  const r = await axe.run(document, {resultTypes: ["violations"]});
  return r.violations.map(v => ({id: v.id, impact: v.impact,
    nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}));
}"""


def test_every_page_passes_axe_and_fits_a_phone(
    server: str,  # noqa: F811
    pop: Populated,
    tmp_path: Path,
) -> None:
    _require_browser()
    _require_axe()
    from playwright.sync_api import sync_playwright

    shots = tmp_path / "shots"
    shots.mkdir()
    problems: list[str] = []
    tokens = {"owner": pop.owner, "acme": pop.tokens["acme"]}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            for who, paths in _pages(pop).items():
                # axe and overflow at 390 px; desktop only for the screenshots of the docs
                viewports = (PHONE, DESKTOP) if os.environ.get("BEDSIDE_SCREENSHOTS") else (PHONE,)
                for viewport in viewports:
                    ctx = browser.new_context(viewport=viewport, bypass_csp=True)
                    page = ctx.new_page()
                    _login(page, server, tokens[who])
                    for path in paths:
                        page.goto(f"{server}{path}")
                        page.wait_for_load_state("load")
                        if viewport is PHONE:
                            sw, iw = page.evaluate(
                                "() => [document.documentElement.scrollWidth, window.innerWidth]"
                            )
                            if sw > iw + 1:
                                problems.append(f"{who} {path}: {sw}px wide at {iw}px")
                        if viewport is not PHONE:
                            name = _shot_name(who, path, pop)
                            if name not in TEST_BROWSER_SHOTS:  # test_browser.py takes those
                                _shots(name, page, shots)
                            continue
                        page.add_script_tag(path=str(AXE))
                        for v in page.evaluate(AXE_RUN):
                            if v["impact"] in ("serious", "critical"):
                                problems.append(
                                    f"{who} {path} @{viewport['width']}: {v['id']} "
                                    f"({v['impact']}) at {v['nodes']}"
                                )
                        _shots(_shot_name(who, path, pop) + "-phone", page, shots)
                    ctx.close()
            # the login page itself, logged out, on a phone
            page = browser.new_context(viewport=PHONE, bypass_csp=True).new_page()
            page.goto(f"{server}/login")
            page.add_script_tag(path=str(AXE))
            problems += [
                f"login: {v['id']} ({v['impact']}) at {v['nodes']}"
                for v in page.evaluate(AXE_RUN)
                if v["impact"] in ("serious", "critical")
            ]
        finally:
            browser.close()
    assert not problems, "\n".join(problems)
    _publish(shots, [p.stem for p in shots.glob("*.png")])


def _shot_name(who: str, path: str, pop: Populated) -> str:
    acme = pop.submissions["acme"]
    names = {
        "/leaderboard": "leaderboard" if who == "owner" else "leaderboard-contributor-unpublished",
        f"/submissions/{acme[0]}": "submission",
        f"/submissions/{acme[1]}": "submission-running",
        "/submissions": "submissions",
        "/submissions/new": "upload",
        "/compare": "compare",
    }
    return names.get(path, path.strip("/").split("?")[0].replace("/", "-") or "home")


def _publish(shots: Path, names: list[str]) -> None:
    for name in names:
        data = (shots / f"{name}.png").read_bytes()
        assert data.startswith(b"\x89PNG"), name
    if os.environ.get("BEDSIDE_SCREENSHOTS"):
        DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copyfile(shots / f"{name}.png", DOCS_SHOTS / f"{name}.png")
