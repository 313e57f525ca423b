"""`bedside baseline` and `bedside results` through typer, on a test app holding only these commands."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from bedside.cli import runs
from bedside.data.corpus import load_corpus
from bedside.errors import NotFoundError
from bedside.evaluation.results import record_result
from bedside.evaluation.robustness import word_counts
from bedside.evaluation.scorer import score
from bedside.workspace import Workspace


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context, workspace: Path = typer.Option(None, "--workspace", "-w")) -> None:
        ctx.obj = {"workspace": workspace}

    runs.register(app)
    return app


def invoke(ws: Workspace, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(_app(), ["--workspace", str(ws.root), *args])


@pytest.mark.parametrize("command", ["baseline", "results"])
def test_help(command: str) -> None:
    result = CliRunner().invoke(_app(), [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_baseline_json_and_table(corpus_ws: Workspace) -> None:
    result = invoke(corpus_ws, "baseline", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["model_label"] == "internal baseline (TF-IDF + LR)"
    decimals = corpus_ws.policy().score_decimals
    assert data["metrics"]["macro_f1"] == round(data["metrics"]["macro_f1"], decimals)

    table = invoke(corpus_ws, "baseline")
    assert table.exit_code == 0, table.output
    assert "macro-F1" in table.output and "worst length gap" in table.output
    # small classes first: digestive (10 %) is listed before neoplasms (30 %)
    assert table.output.index("digestive") < table.output.index("neoplasms")


def test_results(corpus_ws: Workspace, make_submission: Callable[[int], tuple[int, int]]) -> None:
    corpus = load_corpus(corpus_ws)
    sid, jid = make_submission(corpus.version_id)
    empty = invoke(corpus_ws, "results", str(sid))
    assert empty.exit_code == 0 and "no results yet" in empty.output

    probs = [[0.2] * 5 for _ in range(len(corpus.holdout))]
    for phase in (1, 2):
        metrics = score(
            list(corpus.holdout["label"]),
            probs,
            corpus.class_names,
            word_counts(corpus.holdout["text"]),
            [20, 40],
            resamples=100,
            phase1_probs=probs if phase == 2 else None,
        )
        record_result(
            corpus_ws,
            corpus=corpus,
            phase=phase,
            model_label="tiny model",
            metrics=metrics,
            provenance={},
            probs=probs,
            row_ids=list(corpus.holdout["row_id"]),
            submission_id=sid,
            job_id=jid if phase == 1 else None,
        )
    data = json.loads(invoke(corpus_ws, "results", str(sid), "-f", "json").output)
    assert [r["phase"] for r in data["results"]] == [1, 2]
    assert "delta_vs_phase1" in data["results"][1]["metrics"]
    table = invoke(corpus_ws, "results", str(sid))
    assert "phase 1" in table.output and "phase 2" in table.output and "vs phase 1" in table.output


def test_results_unknown_submission(corpus_ws: Workspace) -> None:
    result = invoke(corpus_ws, "results", "42")
    assert isinstance(result.exception, NotFoundError)
