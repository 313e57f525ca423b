"""`bedside serve`, `publish`, `unpublish`, `leaderboard`, `status`, `impact`, `audit` and `report`.

Whoever runs the CLI on the workspace is the owner: these commands see every row.
"""

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

audit_app = new_group("Inspect the hash-chained audit log.")


def _f3(x: Any) -> str:
    return "-" if x is None else f"{x:.3f}"


def serve(
    ctx: typer.Context,
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Interface to listen on (default: this machine only)."
    ),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    origin: list[str] = typer.Option(
        [],
        "--origin",
        help="A further origin the browser uses for this server, e.g. https://bedside.example "
        "behind a TLS proxy (form posts from any other origin are refused).",
    ),
) -> None:
    """Run the web app and the HTTP API (uvicorn) until interrupted."""
    from bedside.web.app import serve as run

    ws = workspace(ctx)
    console.print(
        f"bedside serving {ws.root} on http://{host}:{port}  (log in with an API token; Ctrl+C stops)"
    )
    run(ws, host=host, port=port, origins=tuple(origin))


def publish(ctx: typer.Context) -> None:
    """Publish the leaderboard: every contributor then sees every row."""
    from bedside.leaderboard import set_published

    out = set_published(workspace(ctx), True)
    console.print(
        "leaderboard published"
        + ("" if out["changed"] else " (it already was)")
        + f": {out['rows']} rows"
    )


def unpublish(ctx: typer.Context) -> None:
    """Withdraw the leaderboard: contributors see only their own rows again."""
    from bedside.leaderboard import set_published

    out = set_published(workspace(ctx), False)
    console.print("leaderboard unpublished" + ("" if out["changed"] else " (it was not published)"))


def show_leaderboard(ctx: typer.Context, fmt: Format = FORMAT_OPTION) -> None:
    """Print the leaderboard (all rows, with the internal baseline and ties)."""
    from bedside.auth import OWNER
    from bedside.leaderboard import build_leaderboard

    board = build_leaderboard(workspace(ctx), OWNER)
    rows = [
        [
            "-" if r["kind"] == "baseline" else r["rank_label"],
            r["model"],
            r["vendor"],
            _f3(r.get("claimed_macro_f1")),
            _f3(r["phase1_macro_f1"]),
            ("-" if r.get("claim_gap") is None else f"{r['claim_gap']:+.3f}")
            + (" (!)" if r.get("claim_flagged") else ""),
            _f3(r["macro_f1"]),
            f"[{_f3(r['macro_f1_ci'][0])}, {_f3(r['macro_f1_ci'][1])}]"
            if r["macro_f1_ci"]
            else "-",
            "-" if r["delta"] is None else f"{r['delta']:+.3f}",
            " ".join(_f3(pc["recall"]) for pc in r["per_class"] if pc["small"]),
            _f3(r["worst_gap"]),
            "-" if r["compute_pflops"] is None else f"{r['compute_pflops']:.3g}",
        ]
        for r in board["rows"]
    ]
    small = ", ".join(board["small_classes"])
    title = "leaderboard" + ("" if board["published"] else " (not published)")
    cols = [
        "rank",
        "model",
        "vendor",
        "claimed",
        "phase 1",
        "claim gap",
        "macro-F1",
        "95% CI",
        "phase 1->2",
        f"recall: {small}",
        "worst gap",
        "PFLOPs",
    ]
    emit(fmt, board, cols, rows, title=title)
    if fmt == Format.table:
        for r in board["rows"]:
            if r.get("claim_flagged"):
                console.print(
                    f"  (!) {escape(str(r['model']))}: {escape('; '.join(r['claim_reasons']))}",
                    highlight=False,
                )
        if board.get("frozen"):
            console.print(f"  final ranking recorded at the close ({board['frozen']['closes_at']})")


def status(ctx: typer.Context, fmt: Format = FORMAT_OPTION) -> None:
    """The workspace header: evaluation window and end date, participants, submissions."""
    from bedside.auth import OWNER
    from bedside.submissions.header import workspace_header
    from bedside.submissions.window import fmt_when, utc_now

    ws = workspace(ctx)
    head = workspace_header(ws, OWNER, utc_now())
    if fmt == Format.json:
        print_json(head.to_dict())
        return
    w = head.window
    console.print(" · ".join(head.lines()), highlight=False)
    console.print(f"  window: {fmt_when(w.opens)} to {fmt_when(w.closes)} ({w.state})")
    from bedside.submissions.contributors import list_contributors

    rows = [
        [
            c["name"],
            f"{c['submissions_used']}/{c['max_submissions']}",
            f"{float(c['used_pflops']):.3g}/{float(c['budget_pflops']):.3g}",
            "revoked" if c["revoked"] else "",
        ]
        for c in list_contributors(ws)
    ]
    emit(
        fmt,
        [],
        ["contributor", "submits", "PFLOPs used/budget", "state"],
        rows,
        title="participants",
    )


def impact(
    ctx: typer.Context,
    fmt: Format = FORMAT_OPTION,
    abstracts_per_year: int = typer.Option(None, "--abstracts-per-year", help="Abstracts a year."),
    cost_per_missed_paper: float = typer.Option(
        None, "--cost-per-missed-paper", help="Cost of one missed paper."
    ),
    reviewer_cost_per_fte: float = typer.Option(
        None, "--reviewer-cost-per-fte", help="Yearly cost of one reviewer."
    ),
    reviewer_fte: float = typer.Option(None, "--reviewer-fte", help="Reviewer FTE still needed."),
    ai_cost_per_year: float = typer.Option(
        None, "--ai-cost-per-year", help="Default yearly AI cost per vendor."
    ),
    ai_cost: list[str] = typer.Option(
        [], "--ai-cost", help="VENDOR=AMOUNT, a vendor's own yearly cost (repeatable)."
    ),
    baseline_cost: float = typer.Option(
        0.0, "--baseline-cost", help="Yearly cost of running the internal baseline."
    ),
    currency: str = typer.Option(None, "--currency", help="Currency code, e.g. EUR."),
) -> None:
    """Estimate missed papers and annual cost per model from its per-class recall."""
    from bedside.auth import OWNER
    from bedside.leaderboard import impact_rows
    from bedside.web.api import parse_ai_costs

    values = {
        "abstracts_per_year": abstracts_per_year,
        "cost_per_missed_paper": cost_per_missed_paper,
        "reviewer_cost_per_fte": reviewer_cost_per_fte,
        "reviewer_fte": reviewer_fte,
        "ai_cost_per_year": ai_cost_per_year,
        "currency": currency,
    }
    out = impact_rows(workspace(ctx), OWNER, values, parse_ai_costs(ai_cost), baseline_cost)
    rows = [
        [
            r["model"],
            r["vendor"],
            f"{r['missed_per_year']:,.0f}",
            f"{r['miss_cost']:,.0f}",
            f"{r['miss_cost_range'][0]:,.0f}-{r['miss_cost_range'][1]:,.0f}",
            f"{r['total_cost']:,.0f}",
            "status quo"
            if r["status_quo"]
            else ("-" if r["vs_status_quo"] is None else f"{r['vs_status_quo']:+,.0f}"),
            "-"
            if r["kind"] == "baseline" or r["vs_baseline"] is None
            else f"{r['vs_baseline']:+,.0f}",
        ]
        for r in out["rows"]
    ]
    cur = out["currency"]
    emit(
        fmt,
        out,
        [
            "model",
            "vendor",
            "missed/yr",
            f"miss cost ({cur})",
            "range (recall CIs)",
            f"total/yr ({cur})",
            "vs status quo",
            "vs baseline",
        ],
        rows,
    )
    if fmt == Format.table:
        for s in out["statements"]:
            console.print(f"  - {escape(s)}", highlight=False)


@audit_app.command("verify")
def audit_verify(ctx: typer.Context) -> None:
    """Check the audit log's hash chain; exits 1 and names the first bad entry when broken."""
    from bedside.store import audit

    ok, message = audit.verify(workspace(ctx).store)
    if ok:
        console.print(f"ok: {safe(message)}")
        return
    console.print(f"[bold red]broken:[/] {escape(message)}", highlight=False)
    raise typer.Exit(1)


@audit_app.command("list")
def audit_list(
    ctx: typer.Context,
    limit: int = typer.Option(20, "--limit", "-n", help="How many of the latest entries."),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Show the latest audit-log entries."""
    import json

    from bedside.store import audit

    entries = audit.entries(workspace(ctx).store, limit=limit)
    if fmt == Format.json:
        print_json(entries)
        return
    rows = [
        [e["id"], e["ts"], e["actor"], e["action"], json.dumps(e["payload"])[:80], e["hash"][:12]]
        for e in entries
    ]
    emit(
        fmt, entries, ["id", "time", "actor", "action", "payload", "hash"], rows, title="audit log"
    )


def report(
    ctx: typer.Context,
    out: Path = typer.Argument(..., help="Where to write the HTML file."),
) -> None:
    """Write a self-contained HTML report: leaderboard, EDA and business impact (inline SVG charts)."""
    from bedside.web.report import render_report

    html = render_report(workspace(ctx))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    console.print(f"report written to {safe(out)} ({len(html) // 1024} KiB)")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("publish")(publish)
    app.command("unpublish")(unpublish)
    app.command("leaderboard")(show_leaderboard)
    app.command("status")(status)
    app.command("impact")(impact)
    app.command("report")(report)
    app.add_typer(audit_app, name="audit")
