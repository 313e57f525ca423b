"""How bedside's browser test and screenshot script start Debian's chromium.

The background-networking flags matter on machines with a closed network: without them chromium
keeps opening connections that are refused.
"""

from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
