"""The root ``bedside`` command. Each module below adds its own commands via ``register``;
modules import heavy libraries (torch, transformers) only inside command bodies."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import typer

from bedside import __version__
from bedside.cli.common import CONTEXT, err_console, safe
from bedside.errors import BedsideError

app = typer.Typer(
    name="bedside",
    help="Bring language models to a hospital's private corpus: intake, sandboxed evaluation, private leaderboards.",
    context_settings=CONTEXT,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# One module per command group; each has register(app).
MODULES = (
    "workspace",
    "data",
    "submissions",
    "runs",
    "jobs",
    "web",
    "demo",
    "screening",
    "bundle",
    "versions",  # after web: its `leaderboard` adds --version and --history
    "federation",
)


def _version(value: bool) -> None:
    if value:
        print(f"bedside {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    workspace: Path = typer.Option(
        None,
        "--workspace",
        "-w",
        help="Workspace directory (default: $BEDSIDE_WORKSPACE or the current directory).",
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    ctx.obj = {"workspace": workspace}


for _name in MODULES:
    try:
        _mod = importlib.import_module(f"bedside.cli.{_name}")
    except ModuleNotFoundError as _e:  # a group not built yet, or an optional extra missing
        if _e.name and _e.name.startswith("bedside.cli"):
            continue
        raise
    _mod.register(app)


def main() -> None:
    try:
        app()
    except BedsideError as e:
        err_console.print(f"[bold red]error:[/] {safe(e.message)}", highlight=False)
        if e.hint:
            err_console.print(f"  {safe(e.hint)}", highlight=False)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
