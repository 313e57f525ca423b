"""`bedside baseline` (TF-IDF; `add` and `list` for the current classifier) and `bedside results`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from bedside.cli.common import (
    CONTEXT,
    FORMAT_OPTION,
    Format,
    console,
    emit,
    print_json,
    print_table,
    workspace,
)

baseline_app = typer.Typer(
    help="The internal TF-IDF baseline (`bedside baseline` alone scores it) and the hospital's "
    "current classifier (`bedside baseline add`).",
    context_settings=CONTEXT,
    invoke_without_command=True,
    pretty_exceptions_enable=False,
)


def _fmt(x: Any, decimals: int) -> str:
    return "-" if x is None else f"{x:.{decimals}f}"


def _ci(ci: list[float] | None, decimals: int) -> str:
    return "-" if not ci else f"[{ci[0]:.{decimals}f}, {ci[1]:.{decimals}f}]"


def result_view(row: dict[str, Any], decimals: int) -> dict[str, Any]:
    """A result row as shown to the owner: metrics rounded to the release precision."""
    from bedside.evaluation.scorer import round_floats

    return {
        "result_id": row["id"],
        "submission_id": row["submission_id"],
        "job_id": row["job_id"],
        "phase": row["phase"],
        "model_label": row["model_label"],
        "corpus_version_id": row["corpus_version_id"],
        "created_at": row["created_at"],
        "metrics": round_floats(row["metrics"], decimals),
        "provenance": row["provenance"],
    }


def print_result(view: dict[str, Any], decimals: int) -> None:
    """Summary lines, then per-class scores with the small classes first."""
    m = view["metrics"]
    phase = {0: "baseline", 1: "phase 1 (zero-shot)", 2: "phase 2 (fine-tuned)"}.get(
        view["phase"], view["phase"]
    )
    console.print(
        f"[bold]{escape(view['model_label'])}[/] - {phase}, result {view['result_id']}, "
        f"corpus version {view['corpus_version_id']}, n={m['n']}",
        highlight=False,
    )
    console.print(
        f"macro-F1 {_fmt(m['macro_f1'], decimals)} 95% CI {_ci(m['macro_f1_ci'], decimals)}   "
        f"accuracy {_fmt(m['accuracy'], decimals)}   ECE {_fmt(m['ece'], decimals)}",
        highlight=False,
    )
    rob = m["robustness"]
    bins = ", ".join(
        f"{b['name']} {_fmt(b['macro_f1'], decimals)} (n={b['n']})" for b in rob["bins"]
    )
    console.print(f"worst length gap {_fmt(rob['worst_gap'], decimals)}: {bins}", highlight=False)
    if "delta_vs_phase1" in m:
        d = m["delta_vs_phase1"]
        console.print(
            f"vs phase 1: {d['delta']:+.{decimals}f} 95% CI {_ci(d['ci'], decimals)}, p={_fmt(d.get('p_value'), decimals)}",
            highlight=False,
        )
    rows = [
        (
            c["name"],
            c["support"],
            _fmt(c["recall"], decimals),
            _ci(c["recall_ci"], decimals),
            _fmt(c["precision"], decimals),
            _fmt(c["f1"], decimals),
        )
        for c in sorted(m["per_class"], key=lambda c: c["support"])
    ]
    print_table(None, ["class", "support", "recall", "recall 95% CI", "precision", "F1"], rows)


@baseline_app.callback()
def baseline(
    ctx: typer.Context,
    version: str = typer.Option(
        None, "--version", help="Corpus version id or hash prefix (default: the active one)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Score a new baseline even if this version has one."
    ),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Train and score the internal TF-IDF + logistic regression baseline (once per corpus version)."""
    from bedside.evaluation.baseline import run_baseline
    from bedside.evaluation.results import get_result

    if ctx.invoked_subcommand is not None:
        return
    ws = workspace(ctx)
    decimals = ws.policy().score_decimals
    view = result_view(
        get_result(ws, run_baseline(ws, version, actor="owner", force=force)), decimals
    )
    if fmt == Format.json:
        print_json(view)
    else:
        print_result(view, decimals)


@baseline_app.command("add")
def baseline_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help='Name of the row, e.g. "current classifier".'),
    predictions: Path = typer.Argument(
        ..., help="CSV with row_id and the predicted class (name or id) for every holdout row."
    ),
    version: str = typer.Option(
        None, "--version", help="Corpus version id or hash prefix (default: the active one)."
    ),
    label_col: str = typer.Option(
        None, "--label-col", help="Column with the predicted class (default: label, class, ...)."
    ),
    replace: bool = typer.Option(
        False, "--replace", help="Score new predictions under a name already registered."
    ),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Register the hospital's current classifier (owner only): its holdout predictions, scored
    like any model and shown as a baseline row, never ranked."""
    from bedside.evaluation.current import add_current_baseline
    from bedside.evaluation.results import get_result

    ws = workspace(ctx)
    decimals = ws.policy().score_decimals
    rid = add_current_baseline(
        ws, name, predictions, version=version, label_col=label_col, replace=replace
    )
    view = result_view(get_result(ws, rid), decimals)
    if fmt == Format.json:
        print_json(view)
    else:
        print_result(view, decimals)


@baseline_app.command("list")
def baseline_list(ctx: typer.Context, fmt: Format = FORMAT_OPTION) -> None:
    """List the registered current-classifier baselines."""
    from bedside.evaluation.current import current_baselines

    rows = current_baselines(workspace(ctx))
    table = [
        (b["id"], b["name"], b["corpus_version_id"], b["result_id"], b["source"]["file"])
        for b in rows
    ]
    emit(fmt, rows, ["id", "name", "corpus version", "result", "file"], table, title="baselines")


def results(
    ctx: typer.Context,
    submission_id: int = typer.Argument(..., help="Submission id."),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Show the phase-1 and phase-2 results of a submission (owner view)."""
    from sqlalchemy import select

    from bedside.errors import NotFoundError
    from bedside.evaluation.results import results_for_submission
    from bedside.store import schema

    ws = workspace(ctx)
    t = schema.submissions
    with ws.store.read() as conn:
        sub = (
            conn.execute(select(t.c.id, t.c.name, t.c.status).where(t.c.id == submission_id))
            .mappings()
            .first()
        )
    if sub is None:
        raise NotFoundError(
            f"no submission with id {submission_id}.",
            hint="Check the submission id; the owner sees every submission in the web UI.",
        )
    decimals = ws.policy().score_decimals
    views = [result_view(r, decimals) for r in results_for_submission(ws, submission_id)]
    if fmt == Format.json:
        print_json(
            {
                "submission_id": submission_id,
                "name": sub["name"],
                "status": sub["status"],
                "results": views,
            }
        )
        return
    if not views:
        console.print(
            f"submission {submission_id} ({escape(sub['name'])}) has no results yet (status: {sub['status']})."
        )
        return
    for i, v in enumerate(views):
        if i:
            console.print()
        print_result(v, decimals)


def register(app: typer.Typer) -> None:
    app.add_typer(baseline_app, name="baseline")
    app.command("results")(results)
