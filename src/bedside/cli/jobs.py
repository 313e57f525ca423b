"""`bedside worker`, `bedside run`, `bedside jobs` and `bedside sandbox probe`."""

from __future__ import annotations

import json
from typing import Any

import typer

from bedside.cli.common import (
    CONTEXT,
    FORMAT_OPTION,
    Format,
    console,
    emit,
    new_group,
    print_json,
    workspace,
)
from bedside.errors import ConfigError

jobs_app = typer.Typer(
    help="List, inspect and cancel jobs (`bedside jobs` alone lists them).",
    context_settings=CONTEXT,
    invoke_without_command=True,
    pretty_exceptions_enable=False,
)
sandbox_app = new_group("Isolation of jobs: which tier this host supports.")


def _progress_text(p: dict[str, Any] | None) -> str:
    if not p:
        return ""
    s = f"{p.get('stage', '')} {p.get('step', '')}/{p.get('total', '')}"
    if p.get("loss") is not None:
        s += f" loss {p['loss']:.4f}"
    return s


def _list(ctx: typer.Context, fmt: Format) -> None:
    from bedside.jobs.queue import SqlQueue

    rows = SqlQueue(workspace(ctx).store).list()
    data = [{k: v for k, v in r.items() if k not in ("error_message", "spec")} for r in rows]
    table = [
        (
            r["id"],
            r["submission_id"],
            r["kind"],
            r["state"],
            f"{r['attempts']}/{r['max_attempts']}",
            _progress_text(r["progress"]),
            r["error_class"] or "",
        )
        for r in rows
    ]
    emit(
        fmt,
        data,
        ["id", "submission", "kind", "state", "attempts", "progress", "error"],
        table,
        title="jobs",
    )


@jobs_app.callback()
def jobs_root(ctx: typer.Context, fmt: Format = FORMAT_OPTION) -> None:
    """List jobs with their state, progress and attempts."""
    if ctx.invoked_subcommand is None:
        _list(ctx, fmt)


@jobs_app.command("list")
def jobs_list(ctx: typer.Context, fmt: Format = FORMAT_OPTION) -> None:
    """List jobs with their state, progress and attempts."""
    _list(ctx, fmt)


@jobs_app.command("show")
def jobs_show(
    ctx: typer.Context,
    job_id: int = typer.Argument(..., help="Job id."),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """One job in full, including the owner-only failure log."""
    from sqlalchemy import select

    from bedside.errors import NotFoundError
    from bedside.store import schema

    ws = workspace(ctx)
    t = schema.jobs
    with ws.store.read() as conn:
        row = conn.execute(select(t).where(t.c.id == job_id)).mappings().first()
        events = (
            conn.execute(
                select(schema.job_events.c.data).where(schema.job_events.c.job_id == job_id)
            )
            .scalars()
            .all()
        )
    if row is None:
        raise NotFoundError(f"no job {job_id}.", hint="List jobs with `bedside jobs`.")
    data = dict(row)
    data["events"] = len(events)
    if fmt == Format.json:
        print_json(data)
        return
    for k, v in data.items():
        if k in ("error_message", "spec"):
            continue
        console.print(
            f"[bold]{k}[/]: {json.dumps(v, default=str) if isinstance(v, dict) else v}",
            highlight=False,
        )
    if data["error_message"]:
        console.print("[bold]error message (owner only):[/]")
        console.print(data["error_message"], markup=False, highlight=False)


@jobs_app.command("cancel")
def jobs_cancel(ctx: typer.Context, job_id: int = typer.Argument(..., help="Job id.")) -> None:
    """Cancel a job; a running one is killed by its worker within a heartbeat."""
    from bedside.jobs.queue import SqlQueue

    state = SqlQueue(workspace(ctx).store).cancel(job_id)
    console.print(f"job {job_id}: {state}")


@sandbox_app.command("probe")
def sandbox_probe(fmt: Format = FORMAT_OPTION) -> None:
    """Try each isolation primitive with a tiny launch and report the tier (A best, C least)."""
    from bedside.sandbox.probe import probe

    rep = probe()
    if fmt == Format.json:
        print_json(rep.to_dict())
        return
    rows = [(f"tier {k}", "yes" if c.ok else "no", c.detail) for k, c in sorted(rep.tiers.items())]
    rows += [(k, "yes" if c.ok else "no", c.detail) for k, c in rep.checks.items()]
    emit(
        fmt,
        rep.to_dict(),
        ["primitive", "works", "detail"],
        rows,
        title=f"isolation tier: {rep.tier or 'none'}",
    )


def worker(
    ctx: typer.Context,
    concurrency: int = typer.Option(1, "--concurrency", "-c", help="Jobs run at the same time."),
    once: bool = typer.Option(False, "--once", help="Exit when no runnable job is left."),
    lease_seconds: float = typer.Option(
        60.0, "--lease-seconds", help="Lease length; a dead worker's job is rerun after it."
    ),
    ray_address: str = typer.Option(
        None,
        "--ray",
        flag_value="auto",
        is_flag=False,
        metavar="[ADDRESS]",
        help="Run each job as a task on a Ray cluster (ADDRESS, default: the local one); "
        "needs the cluster extra. --concurrency defaults to what the cluster holds.",
    ),
) -> None:
    """Claim queued jobs and run them in the sandbox the policy requires (until Ctrl-C)."""
    from bedside.jobs.worker import Worker

    if concurrency < 1 or lease_seconds < 2:
        raise ConfigError(
            f"expected --concurrency >= 1 and --lease-seconds >= 2; got {concurrency} and {lease_seconds}."
        )
    ws = workspace(ctx)

    def report(o: Any) -> None:
        extra = (
            f" result {o.result_id}"
            if o.result_id
            else f" ({o.error_class})"
            if o.error_class
            else ""
        )
        console.print(f"job {o.job_id}: {o.state}{extra}", highlight=False)

    from bedside.jobs.progressbar import progress_bar

    # A live bar per job on a terminal; plain lines in logs and pipes.
    launcher = None
    if ray_address is not None:
        from bedside.jobs.raylaunch import RayLauncher

        launcher = RayLauncher(ws.policy(), address=ray_address)
        if concurrency == 1:
            concurrency = launcher.slots(ws.policy().limits)
    with progress_bar(console.is_terminal) as hook:
        w = Worker(
            ws,
            launcher=launcher,
            concurrency=concurrency,
            lease_s=lease_seconds,
            on_outcome=report,
            on_progress=hook,
        )
        console.print(
            f"worker: tier {w.launcher.tier}, concurrency {concurrency}, lease {lease_seconds:g} s"
        )
        w.run(once=once)


def run(
    ctx: typer.Context,
    submission_id: int = typer.Argument(..., help="Submission id."),
    phase: str = typer.Option("both", "--phase", help="1, 2 or both."),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Run a submission's jobs now, in the foreground, with a progress bar."""
    from bedside.jobs.foreground import run_submission

    phases = {"1": (1,), "2": (2,), "both": (1, 2)}.get(phase)
    if phases is None:
        raise ConfigError(f"--phase must be 1, 2 or both; got {phase!r}.")
    outcomes = run_submission(
        workspace(ctx), submission_id, phases=phases, progress=fmt == Format.table
    )
    data = [o.__dict__ for o in outcomes]
    rows = [
        (o.job_id, o.state, o.error_class or "", o.result_id or "", o.tier or "", o.wall_s or "")
        for o in outcomes
    ]
    emit(
        fmt,
        data,
        ["job", "state", "error", "result", "tier", "wall s"],
        rows,
        title=f"submission {submission_id}",
    )


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
    app.command("run")(run)
    app.add_typer(jobs_app, name="jobs")
    app.add_typer(sandbox_app, name="sandbox")
