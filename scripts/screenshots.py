"""Screenshots of a live workspace's pages (for the README and docs), as the owner sees them.

    python scripts/screenshots.py WORKSPACE OUT_DIR [--port 8770]

Starts `bedside serve` on 127.0.0.1, logs in with a freshly rotated owner token (the old one stops
working), and saves leaderboard.png, data.png, impact.png and submission.png.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from bedside.testing.browser import CHROMIUM, CHROMIUM_ARGS
from bedside.workspace import Workspace


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("workspace", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--port", type=int, default=8770)
    a = ap.parse_args()
    token = Workspace.open(a.workspace).rotate_owner_token()
    a.out.mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen(
        ["bedside", "-w", str(a.workspace), "serve", "--port", str(a.port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ.copy(),
    )
    base = f"http://127.0.0.1:{a.port}"
    try:
        time.sleep(4)
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            page.goto(f"{base}/login")
            page.fill("#token", token)
            page.keyboard.press("Enter")
            page.wait_for_load_state("networkidle")
            for name, path in (
                ("leaderboard", "/leaderboard"),
                ("data", "/data"),
                ("impact", "/impact"),
                ("submission", "/submissions/1"),
            ):
                page.goto(base + path)
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(a.out / f"{name}.png"), full_page=True)
                print(a.out / f"{name}.png")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
