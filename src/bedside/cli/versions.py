"""`bedside reevaluate`, `bedside leaderboard --version/--history` and `bedside data drift`.

Thin wrappers over :mod:`bedside.reevaluate`, :mod:`bedside.leaderboard.history` and
:mod:`bedside.data.drift`. This module registers after ``web``: its ``leaderboard`` takes
``--version`` and ``--history`` and hands the plain call (active version) to the one in
``cli/web.py``, so the default output stays exactly as it was.
"""

from __future__ import annotations

from typing import Any

import typer

from bedside.cli.common import (
    FORMAT_OPTION,
    Format,
    console,
    emit,
    print_json,
    print_table,
    safe,
    workspace,
)


def _f3(x: Any) -> str:
    return "-" if x is None else f"{x:.3f}"


def _ci(ci: Any) -> str:
    return "-" if not ci or ci[0] is None else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def _ids(text: str | None) -> list[int] | None:
    if text is None:
        return None
    from bedside.errors import ConfigError

    try:
        return [int(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise ConfigError(
            f"--submissions takes submission ids separated by commas; found {text!r}.",
            hint="Example: --submissions 3,5",
        ) from None


def reevaluate(
    ctx: typer.Context,
    version: str = typer.Option(
        None, "--version", "-v", help="Corpus version id or hash prefix (default: active)."
    ),
    submissions: str = typer.Option(
        None, "--submissions", "-s", help="Only these submission ids (comma separated)."
    ),
    mode: str = typer.Option(
        None,
        "--mode",
        help="published (both phases done) or all (not cancelled); default: the policy's reevaluate.",
    ),
    list_: bool = typer.Option(False, "--list", help="List the past re-evaluation batches."),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Queue submissions again (phase 1 re-predicts, phase 2 re-trains) on a corpus version."""
    from bedside.reevaluate import list_reevaluations, summary_lines
    from bedside.reevaluate import reevaluate as run

    ws = workspace(ctx)
    if list_:
        batches = list_reevaluations(ws)
        rows = [
            (
                b["id"],
                b["created_at"],
                b["corpus_version_id"],
                b["trigger"],
                b["policy"],
                ", ".join(str(q["submission_id"]) for q in b["queued"]) or "-",
                len(b["skipped"]),
            )
            for b in batches
        ]
        cols = ["id", "created", "version", "trigger", "policy", "queued", "skipped"]
        emit(fmt, batches, cols, rows, title="re-evaluations")
        return
    out = run(ws, version, _ids(submissions), mode=mode)
    if fmt == Format.json:
        print_json(out)
        return
    for line in summary_lines(out):
        console.print(safe(line), highlight=False)


def leaderboard(
    ctx: typer.Context,
    version: str = typer.Option(
        None, "--version", "-v", help="Corpus version id or hash prefix (default: active)."
    ),
    history: bool = typer.Option(
        False, "--history", help="Every model's score on each version, and rank changes."
    ),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Print the leaderboard (all rows, with the internal baseline and ties); per version or over time."""
    if history:
        _history(ctx, fmt)
        return
    if version is None:
        from bedside.cli.web import show_leaderboard

        show_leaderboard(ctx, fmt)
        return
    from bedside.auth import OWNER
    from bedside.data.corpus import load_corpus
    from bedside.leaderboard import build_leaderboard

    ws = workspace(ctx)
    vid = load_corpus(ws, version).version_id
    board = build_leaderboard(ws, OWNER, corpus_version_id=vid)
    rows = [
        (
            "-" if r["kind"] == "baseline" else r["rank_label"],
            safe(r["model"]),
            safe(r["vendor"]),
            r["phase"],
            _f3(r["phase1_macro_f1"]),
            _f3(r["macro_f1"]),
            _ci(r["macro_f1_ci"]),
            "-" if r["delta"] is None else f"{r['delta']:+.3f}",
            r.get("n") or "-",
        )
        for r in board["rows"]
    ]
    cols = ["rank", "model", "vendor", "phase", "phase 1", "macro-F1", "95% CI", "phase 1->2", "n"]
    emit(fmt, board, cols, rows, title=f"leaderboard on corpus version {vid}")


def _history(ctx: typer.Context, fmt: Format) -> None:
    from bedside.auth import OWNER
    from bedside.leaderboard.history import history_lines, leaderboard_history

    h = leaderboard_history(workspace(ctx), OWNER)
    if fmt == Format.json:
        print_json(h)
        return
    vids = [v["id"] for v in h["versions"]]
    rows = []
    for m in h["models"]:
        cells = []
        for vid in vids:
            s = m["scores"].get(vid)
            cells.append(
                "-"
                if s is None
                else f"{_f3(s['macro_f1'])} {_ci(s['macro_f1_ci'])} ({s['rank_label'] or 'ref'})"
            )
        rows.append((safe(m["model"]), safe(m["vendor"]), *cells))
    heads = [f"v{v['id']}{' (active)' if v['active'] else ''}" for v in h["versions"]]
    print_table("leaderboard over corpus versions", ["model", "vendor", *heads], rows)
    for line in history_lines(h):
        console.print(safe(line), highlight=False)


def drift(
    ctx: typer.Context,
    a: str = typer.Argument(None, help="Older version (default: the active one's parent)."),
    b: str = typer.Argument(None, help="Newer version (default: the active one)."),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Drift between two corpus versions: class shares, lengths, vocabulary (aggregate, k-suppressed)."""
    from bedside.data.drift import versions_drift

    d = versions_drift(workspace(ctx), a, b, hint="Name both versions: `bedside data drift A B`.")
    if fmt == Format.json:
        print_json(d)
        return
    console.print(
        f"drift from version {d['a']['id']} to version {d['b']['id']} "
        f"({d['compared']}: {d['rows_compared']['a']} vs {d['rows_compared']['b']} rows; "
        f"counts below {d['k']} not shown exactly)"
    )
    print_table(
        "class shares",
        ["class", f"v{d['a']['id']}", "share %", "compared", "share %"],
        [
            (safe(c["name"]), c["a"], c["share_a_pct"] or "-", c["b"], c["share_b_pct"] or "-")
            for c in d["shares"]["classes"]
        ],
    )
    ln = d["lengths"]
    print_table(
        "length in words",
        ["", "mean", "p25", "p50", "p75"],
        [
            (f"v{d['a']['id']}", *(ln["a"][k] for k in ("mean", "p25", "p50", "p75"))),
            ("compared", *(ln["b"][k] for k in ("mean", "p25", "p50", "p75"))),
        ],
    )
    v = d["vocabulary"]
    if v["rising"]:
        print_table(
            "terms whose share rose most (abstracts containing it, %)",
            ["term", f"v{d['a']['id']}", "compared"],
            [(safe(t["term"]), t["share_a_pct"], t["share_b_pct"]) for t in v["rising"][:5]],
        )
    for line in d["reading"]:
        console.print(safe(line), highlight=False)


def register(app: typer.Typer) -> None:
    from bedside.cli.data import data_app

    app.command("reevaluate")(reevaluate)
    app.command("leaderboard")(leaderboard)  # replaces web's, which it calls for the default
    data_app.command("drift")(drift)
