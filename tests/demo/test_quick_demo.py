"""`bedside demo --quick` end to end: real workspace, sandboxed jobs, published leaderboard.

It runs on 400 of the embedded real abstracts with tiny random models; four vendors with claims,
the TF-IDF baseline and the current-classifier stand-in, inside an evaluation window.
"""

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
    baselines = [r for r in board["rows"] if r["kind"] == "baseline"]
    # the internal TF-IDF baseline and the owner's current classifier (the keyword stand-in)
    assert len(baselines) == 2
    assert any(r.get("baseline_kind") == "current" for r in baselines)
    subs = [r for r in board["rows"] if r["kind"] == "submission"]
    vendors = {r["vendor"] for r in subs}
    assert vendors == {"acme-clinical-ai", "northwind-nlp", "helix-health", "lumen-labs"}
    claims = {r["vendor"]: r["claimed_macro_f1"] for r in subs}
    assert claims["acme-clinical-ai"] == 0.92
    assert max(claims.values()) == 0.92  # the loudest claim, far above anything measured here
    assert all(r["claim_flagged"] for r in subs if r["vendor"] == "acme-clinical-ai")
    for r in board["rows"]:
        assert 0.0 <= r["macro_f1"] <= 1.0
    assert res.plan.corpus == "embedded" and res.plan.n_docs == 400
    assert res.report is not None and res.report.stat().st_size > 10_000
    html = res.report.read_text()
    assert "<svg" in html
    # self-contained: nothing is loaded from elsewhere (namespace URIs inside SVG are not loads)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    log = (tmp_path / "demo.log").read_text()
    assert "sandbox tier on this machine" in log and "leaderboard" in log
    assert "real abstracts" in log and "CC BY-SA 3.0" in log  # says which corpus, from where
    assert "evaluation window:" in log
    # A second run into the same directory is refused unless --force.
    with pytest.raises(WorkspaceError, match="--force"):
        run_demo(tmp_path / "demo", quick=True, console=console)


def test_corpus_options_conflict(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="--synthetic and --corpus"):
        run_demo(tmp_path / "d", synthetic=True, corpus=tmp_path / "x.csv")
    with pytest.raises(WorkspaceError, match="without --corpus"):
        run_demo(tmp_path / "d", labels=tmp_path / "labels.csv")


def test_plans_say_which_corpus() -> None:
    from bedside.demo.run import make_plan

    real = make_plan(quick=False, corpus=None)
    assert real.corpus == "embedded" and real.n_docs is None
    assert "1888 real abstracts" in real.describe() and "CC BY-SA 3.0" in real.describe()
    assert (
        make_plan(quick=False, corpus=None, synthetic=True)
        .describe()
        .startswith("corpus: 1500 synthetic abstracts")
    )
    quick = make_plan(quick=True, corpus=None)
    assert quick.checkpoint == "tiny" and quick.n_docs == 400 and quick.mpnet
