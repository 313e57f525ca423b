"""`bedside demo --quick` end to end: real workspace, sandboxed jobs, published leaderboard."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rich.console import Console

from bedside.demo.run import run_demo
from bedside.errors import WorkspaceError


@pytest.mark.slow
def test_quick_demo_end_to_end(tmp_path: Path) -> None:
    console = Console(file=open(tmp_path / "demo.log", "w"), width=160)  # noqa: SIM115
    res = run_demo(tmp_path / "demo", quick=True, console=console)
    console.file.close()
    board = res.leaderboard
    assert board["published"]
    kinds = [r["kind"] for r in board["rows"]]
    assert kinds.count("baseline") == 1
    vendors = {r["vendor"] for r in board["rows"] if r["kind"] != "baseline"}
    assert vendors == {"acme-clinical-ai", "northwind-nlp", "helix-health"}
    for r in board["rows"]:
        assert 0.0 <= r["macro_f1"] <= 1.0
    assert res.report is not None and res.report.stat().st_size > 10_000
    html = res.report.read_text()
    assert "<svg" in html
    # self-contained: nothing is loaded from elsewhere (namespace URIs inside SVG are not loads)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    log = (tmp_path / "demo.log").read_text()
    assert "sandbox tier on this machine" in log and "leaderboard" in log
    # A second run into the same directory is refused unless --force.
    with pytest.raises(WorkspaceError, match="--force"):
        run_demo(tmp_path / "demo", quick=True, console=console)
