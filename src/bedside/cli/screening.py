"""`bedside deploy`, `bedside screen`, `bedside export` and `bedside screening ...` (owner only:
the CLI runs with the workspace's files, which only the owner can read)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from bedside.cli.common import (
    FORMAT_OPTION,
    Format,
    console,
    emit,
    new_group,
    print_json,
    safe,
    workspace,
)

screening_app = new_group(
    "Screening models: recall targets, runs, shadow comparison, realised recall, model card."
)


def _f(v: Any, d: int = 3) -> str:
    return "-" if v is None else f"{float(v):.{d}f}"


def _ci(ci: Any) -> str:
    return "-" if not ci else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def _print_points(view: dict[str, Any]) -> None:
    ops = view.get("operating_points")
    if not ops:
        console.print("no recall targets yet: bedside screening targets --target 'CLASS=0.9'")
        return
    console.print(
        f"thresholds picked on the tuning half ({ops['n_tuning']} rows), every number below "
        f"measured on the reporting half ({ops['n_reporting']} rows)",
        highlight=False,
    )
    emit(
        Format.table,
        None,
        ["class", "target", "threshold", "expected recall", "95% CI", "precision", "per 1,000"],
        [
            [
                p["class_name"],
                _f(p["target"], 2),
                _f(p["threshold"], 4),
                _f(p["expected_recall"]),
                _ci(p["recall_ci"]),
                _f(p["precision"]),
                _f(p["workload_per_1000"], 1),
            ]
            for p in ops["points"]
        ],
    )
    for p in ops["points"]:
        if not p["reached"] or "only" in p["message"]:
            console.print(f"[yellow]{escape(p['message'])}[/]", highlight=False)


def deploy_cmd(
    ctx: typer.Context,
    submission: int = typer.Argument(..., help="Submission id (see `bedside submissions`)."),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Promote a submission's phase-2 model to the workspace's screening model (audited)."""
    from bedside.screening.models import deploy

    m = deploy(workspace(ctx), submission)
    if fmt == Format.json:
        print_json(m.view())
        return
    console.print(
        f"screening model {m.id}: {escape(m.name)} (submission {m.submission_id}), bundle "
        f"{m.bundle_hash[:12]}, corpus {m.corpus_hash[:12]}, decision rule "
        f"{m.decision.get('rule')}. Next: bedside screening targets --target 'CLASS=0.9'",
        highlight=False,
    )


def _parse_targets(values: list[str]) -> dict[str, float]:
    from bedside.errors import ConfigError

    out: dict[str, float] = {}
    for v in values:
        name, sep, num = v.rpartition("=")
        if not sep or not name.strip():
            raise ConfigError(
                f"a target is CLASS=RECALL, got {v!r}.",
                hint="e.g. --target 'digestive system diseases=0.9'",
            )
        try:
            out[name.strip()] = float(num)
        except ValueError:
            raise ConfigError(
                f"target recall for {name.strip()!r} must be a number, got {num!r}."
            ) from None
    return out


def _resolve_class(name: str, classes: list[str]) -> str:
    """A class by its full name or a unique prefix ('digestive')."""
    if name in classes:
        return name
    hits = [c for c in classes if c.lower().startswith(name.lower())]
    return hits[0] if len(hits) == 1 else name


@screening_app.command("targets")
def targets_cmd(
    ctx: typer.Context,
    target: list[str] = typer.Option(
        ..., "--target", "-t", help="CLASS=RECALL, repeatable; a unique prefix names a class."
    ),
    max_workload: float = typer.Option(
        None, "--max-workload", help="Refuse thresholds flagging more than this per 1,000."
    ),
    model: int = typer.Option(
        None, "--model", help="Screening model id (default: the active one)."
    ),
    plot: Path = typer.Option(
        None, "--plot", help="Write the recall-vs-workload chart (SVG) here."
    ),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Set per-class recall targets; shows threshold, expected recall (CI), precision, workload."""
    from bedside.screening.models import get_model, set_targets

    ws = workspace(ctx)
    classes = get_model(ws, model).decision.get("classes") or []
    goals = {_resolve_class(k, classes): v for k, v in _parse_targets(target).items()}
    m = set_targets(ws, model, goals, max_workload=max_workload)
    if plot is not None:
        from bedside.web.charts import recall_workload_svg

        plot.write_text(recall_workload_svg(m.points.to_dict() if m.points else {}))
    if fmt == Format.json:
        print_json(m.view())
        return
    _print_points(m.view())


@screening_app.command("models")
def models_cmd(ctx: typer.Context, fmt: Format = FORMAT_OPTION) -> None:
    """Deployed screening models (the active one is used by `bedside screen`)."""
    from bedside.screening.models import list_models

    ms = [m.view() for m in list_models(workspace(ctx))]
    emit(
        fmt,
        ms,
        ["id", "name", "submission", "rule", "targets", "active", "onnx"],
        [
            [
                m["id"],
                m["name"],
                m["submission_id"],
                m["decision_rule"],
                m["targets"],
                m["active"],
                bool(m["onnx"]),
            ]
            for m in ms
        ],
    )


def _print_run(view: dict[str, Any]) -> None:
    s = view["summary"]
    console.print(
        f"run {view['id']} ({view['state']}): {view['input'].get('n_rows')} abstracts from "
        f"{escape(str(view['input'].get('file_name')))}",
        highlight=False,
    )
    if view["state"] != "done" or not s:
        if view.get("error_class"):
            console.print(f"[red]failed: {view['error_class']}[/]")
        return
    console.print(
        f"needs review: {s['needs_review']} ({_f(s['review_per_1000'], 1)} per 1,000; the "
        f"operating points expected {s['expected_per_1000']} per class) - "
        f"{s['runtime']} runtime, tier {s['tier']}, {_f(s['wall_s'], 1)} s",
        highlight=False,
    )
    console.print(f"predicted: {safe(s['predicted'])}", highlight=False)
    console.print(f"flagged: {safe(s['flagged'])}", highlight=False)
    sh = s.get("shadow")
    if sh:
        console.print(
            f"shadow vs {sh['source']}: agreement {_f(sh['agreement'])} on {sh['n']}; flagged by "
            f"the new model, missed by the current one: {sh['missed_by_current']}",
            highlight=False,
        )


def screen_cmd(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="CSV of new abstracts (a text column; row_id optional)."),
    out: Path = typer.Option(None, "--out", "-o", help="Write the per-abstract results CSV here."),
    model: int = typer.Option(
        None, "--model", help="Screening model id (default: the active one)."
    ),
    text_col: str = typer.Option("text", "--text-col", help="Column with the abstracts."),
    id_col: str = typer.Option("row_id", "--id-col", help="Column with ids (else line numbers)."),
    shadow_col: str = typer.Option(
        None, "--shadow-col", help="Column with the current classifier's labels (shadow mode)."
    ),
    shadow: str = typer.Option(
        None, "--shadow", help="'baseline': compare with the internal TF-IDF baseline instead."
    ),
    runtime: str = typer.Option(
        "torch", "--runtime", help="torch, or onnx (after bedside export)."
    ),
    queue_only: bool = typer.Option(
        False, "--queue", help="Only queue the run for `bedside worker`; do not run it here."
    ),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Screen new abstracts with the deployed model, in the sandbox, with a progress bar."""
    from bedside.screening.runs import create_run, get_run, run_now, write_copy

    ws = workspace(ctx)
    run = create_run(
        ws,
        file,
        model_id=model,
        text_column=text_col,
        id_column=id_col,
        shadow_column=shadow_col,
        shadow=shadow,
        runtime=runtime,
    )
    if not queue_only:
        run_now(ws, run.id, progress=fmt != Format.json)
    view = get_run(ws, run.id).view()
    if out is not None and view["state"] == "done":
        write_copy(ws, run.id, out)
    if fmt == Format.json:
        print_json(view)
    else:
        _print_run(view)
        if out is not None and view["state"] == "done":
            console.print(f"results: {safe(out)}", highlight=False)
    if view["state"] == "failed":
        raise typer.Exit(9)


@screening_app.command("runs")
def runs_cmd(ctx: typer.Context, fmt: Format = FORMAT_OPTION) -> None:
    """Screening runs, oldest first."""
    from bedside.screening.runs import list_runs

    rs = [r.view() for r in list_runs(workspace(ctx))]
    emit(
        fmt,
        rs,
        ["run", "model", "state", "file", "rows", "needs review", "per 1,000"],
        [
            [
                r["id"],
                r["model_id"],
                r["state"],
                r["input"].get("file_name"),
                r["input"].get("n_rows"),
                r["summary"].get("needs_review"),
                r["summary"].get("review_per_1000"),
            ]
            for r in rs
        ],
    )


@screening_app.command("show")
def show_cmd(
    ctx: typer.Context,
    run: int = typer.Argument(..., help="Run id."),
    out: Path = typer.Option(None, "--out", "-o", help="Copy its results CSV here."),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """One run: state, workload, shadow comparison."""
    from bedside.screening.runs import get_run, write_copy

    ws = workspace(ctx)
    view = get_run(ws, run).view()
    if out is not None:
        write_copy(ws, run, out)
    if fmt == Format.json:
        print_json(view)
    else:
        _print_run(view)


@screening_app.command("realised")
def realised_cmd(
    ctx: typer.Context, run: int = typer.Argument(..., help="Run id."), fmt: Format = FORMAT_OPTION
) -> None:
    """Realised recall on screened abstracts reviewers have labelled (`data add --append`)."""
    from bedside.screening.runs import realised_for_run

    rep = realised_for_run(workspace(ctx), run)
    emit(
        fmt,
        rep,
        ["class", "promised", "promised CI", "realised", "positives", "flagged", "precision"],
        [
            [
                c["class_name"],
                _f(c["promised"]),
                _ci(c["promised_ci"]),
                _f(c["realised"]),
                c["positives"],
                c["flagged"],
                _f(c["precision"]),
            ]
            for c in rep["classes"]
        ],
        title=f"run {run}: {rep['labelled']} of {rep['screened']} screened abstracts labelled",
    )


@screening_app.command("card")
def card_cmd(
    ctx: typer.Context,
    out: Path = typer.Option(None, "--out", "-o", help="Write README.md here (default: stdout)."),
    model: int = typer.Option(
        None, "--model", help="Screening model id (default: the active one)."
    ),
) -> None:
    """The model card (Hugging Face layout) of a screening model."""
    from bedside.screening.card import card_text
    from bedside.screening.models import get_model

    ws = workspace(ctx)
    text = card_text(ws, get_model(ws, model))
    if out is None:
        print(text)
    else:
        out.write_text(text)


def export_cmd(
    ctx: typer.Context,
    submission: int = typer.Argument(..., help="Submission id of a deployed model."),
    onnx: bool = typer.Option(False, "--onnx", help="Export to ONNX (the only format for now)."),
    out: Path = typer.Option(None, "--out", "-o", help="Also copy the export (and card) here."),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Export a deployed model (ONNX, checked against torch) with its model card as README.md."""
    from bedside.errors import ConfigError
    from bedside.screening.export import copy_export, export_onnx

    if not onnx:
        raise ConfigError("choose a format: --onnx.")
    ws = workspace(ctx)
    info = export_onnx(ws, submission)
    if out is not None:
        copy_export(ws, submission, out)
    if fmt == Format.json:
        print_json(info)
        return
    console.print(
        f"ONNX export of submission {submission}: {info['path']} ({info['bytes']:,} bytes, "
        f"opset {info['opset']}); max abs difference vs torch {info['max_abs_diff']:.2e} on "
        f"{info['checked_texts']} holdout texts",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("deploy")(deploy_cmd)
    app.command("screen")(screen_cmd)
    app.command("export")(export_cmd)
    app.add_typer(screening_app, name="screening")
