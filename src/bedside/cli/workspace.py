"""`bedside init` and `bedside policy`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from bedside.cli.common import FORMAT_OPTION, Format, console, emit, new_group, safe, workspace
from bedside.config import Policy
from bedside.errors import ConfigError
from bedside.workspace import Workspace

policy_app = new_group("Show or change the workspace policy (job limits, disclosure, defaults).")


def init(
    directory: Path = typer.Argument(
        ..., help="Directory for the new workspace (created if missing)."
    ),
    db_url: str = typer.Option(
        None,
        "--db",
        "--db-url",
        help="Store URL, e.g. postgresql://user@host/db (needs the postgres extra); default: SQLite inside the workspace.",
    ),
) -> None:
    """Create a workspace: store, folders, policy, and the owner's API token (shown once)."""
    ws, token = Workspace.init(directory, db_url=db_url)
    console.print(f"Workspace created at [bold]{safe(ws.root)}[/]")
    console.print(f"Owner API token (shown once, keep it safe): [bold]{token}[/]", soft_wrap=True)
    console.print(f"Next: `export BEDSIDE_WORKSPACE={safe(ws.root)}` and `bedside data add FILE`.")


@policy_app.command("show")
def policy_show(ctx: typer.Context, fmt: Format = FORMAT_OPTION) -> None:
    """Print the workspace policy."""
    p = workspace(ctx).policy().to_dict()
    flat = [(k, json.dumps(v) if isinstance(v, dict) else v) for k, v in p.items()]
    emit(fmt, p, ["key", "value"], flat, title="policy")


@policy_app.command("set")
def policy_set(
    ctx: typer.Context,
    assignments: list[str] = typer.Argument(
        ..., help="KEY=VALUE pairs, e.g. min_tier=B limits.memory_gb=4"
    ),
) -> None:
    """Change policy values (validated; nothing changes if one is wrong)."""
    ws = workspace(ctx)
    d = ws.policy().to_dict()
    for a in assignments:
        if "=" not in a:
            raise ConfigError(
                f"expected KEY=VALUE, got {a!r}.", hint="Example: bedside policy set k_anonymity=20"
            )
        key, raw = a.split("=", 1)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        target = d
        *parents, leaf = key.split(".")
        for p in parents:
            if not isinstance(target.get(p), dict):
                raise ConfigError(f"unknown policy section {p!r}.")
            target = target[p]
        if leaf not in target:
            raise ConfigError(f"unknown policy key {key!r}; known: {', '.join(sorted(target))}.")
        target[leaf] = value
    ws.set_policy(Policy.from_dict(d))
    console.print("policy updated")


token_app = new_group("The owner's API token.")


@token_app.command("rotate")
def token_rotate(ctx: typer.Context) -> None:
    """Make a new owner token (the old one stops working) and print it once."""
    token = workspace(ctx).rotate_owner_token()
    console.print(f"New owner API token (shown once): {token}", soft_wrap=True, highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(token_app, name="token")
    app.command("init")(init)
    app.add_typer(policy_app, name="policy")
