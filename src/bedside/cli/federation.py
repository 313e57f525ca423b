"""`bedside federation`: fine-tune one bundle across several sites' workspaces with Flower."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from bedside.cli.common import console, new_group, safe
from bedside.errors import ConfigError

group = new_group(
    "Federated fine-tuning across sites (Flower; DP-SGD with Opacus). Needs the federated "
    "extra: pip install -e '.[federated]'."
)


def _drop(value: str | None) -> dict[str, Any] | None:
    if not value:
        return None
    site, _, rnd = value.partition(":")
    if not site or not rnd.isdigit():
        raise ConfigError(f"--drop-site takes SITE:ROUND, e.g. east:2; got {value!r}.")
    return {"site": site, "round": int(rnd)}


def _show(res: dict[str, Any]) -> None:
    from bedside.federation.board import render

    console.print(safe(render(res["board"]), newlines=True))
    for rnd in res["rounds"]:
        parts = [f"round {rnd['round']}: {len(rnd['updates'])} updates"]
        if rnd["failed"]:
            parts.append("dropped " + ", ".join(f["site"] for f in rnd["failed"]))
        if rnd["rejected"]:
            parts.append("rejected " + "; ".join(r["reason"] for r in rnd["rejected"]))
        if rnd.get("void"):
            parts.append("void (too few updates; the global model carried over)")
        parts.append(f"{rnd['bytes_up'] + rnd['bytes_down']:,} bytes exchanged")
        console.print(safe(", ".join(parts)))
    console.print(safe(f"wall time (s): {json.dumps(res['wall_s'])}"))


@group.command("demo")
def demo(
    directory: Path = typer.Argument(Path("bedside-federation-demo"), help="Folder (created)."),
    rows: int = typer.Option(450, "--rows", help="Real abstracts to deal to the three sites."),
    rounds: int = typer.Option(3, "--rounds", help="Federated rounds."),
    local_epochs: int = typer.Option(2, "--local-epochs", help="Epochs per site per round."),
    epsilon: float = typer.Option(None, "--dp-epsilon", help="Train with DP-SGD to this epsilon."),
    drop_site: str = typer.Option(
        None, "--drop-site", help="SITE:ROUND: that site fails in that round (a drop-out)."
    ),
    sandbox: bool = typer.Option(
        False, "--sandbox", help="Run each site's jobs in its sandbox (slower: a process a job)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an earlier demo in DIRECTORY."),
) -> None:
    """Three sites on one machine (Flower simulation): local-only, federated and pooled
    fine-tunes of a tiny model on the real abstracts, each scored on every site's holdout."""
    from bedside.federation.demo import run_demo

    res = run_demo(
        directory,
        rows=rows,
        rounds=rounds,
        local_epochs=local_epochs,
        epsilon=epsilon,
        drop=_drop(drop_site),
        runner="sandbox" if sandbox else "inprocess",
        force=force,
    )
    _show(res)
    console.print(safe(f"results: {directory / 'out' / 'results.json'}"))


@group.command("run")
def run(
    config: Path = typer.Argument(..., help="federation.toml (see docs/federation.md)."),
    out: Path = typer.Option(Path("federation-out"), "--out", help="Results folder."),
    local_only: bool = typer.Option(
        True, "--local-only/--no-local-only", help="Also fine-tune each site alone (baseline)."
    ),
    drop_site: str = typer.Option(None, "--drop-site", help="SITE:ROUND drop-out (a drill)."),
) -> None:
    """Run a federation in Flower's simulation engine on this machine (every site's workspace
    reachable from here); `bedside federation deploy` runs it in Flower's deployment mode."""
    from bedside.federation.config import FederationConfig
    from bedside.federation.run import run_federation

    cfg = FederationConfig.load(config)
    res = run_federation(
        cfg, out, baselines=("local-only",) if local_only else (), drop=_drop(drop_site)
    )
    _show(res)
    console.print(safe(f"results: {out / 'results.json'}"))


@group.command("deploy")
def deploy(
    config: Path = typer.Argument(..., help="federation.toml (see docs/federation.md)."),
    out: Path = typer.Option(Path("federation-out"), "--out", help="Results folder."),
    local_only: bool = typer.Option(
        True, "--local-only/--no-local-only", help="Also fine-tune each site alone (baseline)."
    ),
    port: int = typer.Option(
        0, "--port", min=0, max=65535, help="The SuperLink's port on 127.0.0.1 (0: a free one)."
    ),
    drop_site: str = typer.Option(None, "--drop-site", help="SITE:ROUND drop-out (a drill)."),
) -> None:
    """Run a federation in Flower's deployment mode on this machine: a SuperLink and one
    SuperNode per site as separate processes on 127.0.0.1, TLS on (a fresh CA), the run
    submitted with `flwr run`; every process is stopped afterwards."""
    from bedside.federation.config import FederationConfig
    from bedside.federation.run import run_federation

    cfg = FederationConfig.load(config)
    res = run_federation(
        cfg,
        out,
        baselines=("local-only",) if local_only else (),
        drop=_drop(drop_site),
        engine="deployment",
        port=port,
    )
    _show(res)
    dep = res["deployment"]
    nodes = ", ".join(f"{s} {a}" for s, a in dep["supernodes"].items())
    console.print(
        safe(
            f"Flower run {dep['run_id']} {dep['status']}: SuperLink {dep['superlink']}, "
            f"SuperNodes {nodes} (TLS); logs: {dep['logs']}"
        )
    )
    console.print(safe(f"results: {out / 'results.json'}"))


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="federation")
