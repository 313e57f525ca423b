"""The Flower App entry module of deployment mode: ``server`` and ``client`` built from a plan file.

``flwr run`` ships a Flower App (FAB) to the SuperLink, which starts ``server`` in a ServerApp
process; each SuperNode starts ``client`` in a ClientApp process. Both read the plan file the run
config names (``plan``): the same :class:`~bedside.federation.worker.Plan` the simulation uses
(config, validated bundle manifest, classes, run id), the ServerApp's output folder and the
initial global state. A SuperNode may point at its own copy with ``--node-config "plan='...'"``.

The app folder that ``flwr run`` packs holds only its ``pyproject.toml`` (written by
:func:`write_app`): the code is this installed module, so every site runs bedside's own code.

Example::

    plan_file = write_plan(folder / "plan.json", plan, out_dir, initial)
    app_dir = write_app(folder / "app", plan_file)
    # flwr run <app_dir> <connection>   (bedside.federation.deploy does this)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flwr.app import Context

from bedside.federation.apps import aggregator_app, site_app
from bedside.federation.exchange import State, load_state, save_state
from bedside.federation.worker import Plan

PLAN_KEY = "plan"
APP_NAME = "bedside-federation"
ENTRY = "bedside.federation.flower_app"


def write_plan(
    path: Path,
    plan: Plan,
    out_dir: Path,
    initial: State,
    drop: dict[str, Any] | None = None,
) -> Path:
    """Write the plan file (JSON) and the initial state beside it; returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    init = path.with_name("initial.safetensors")
    save_state(initial, init)
    path.write_text(
        json.dumps(
            {
                "plan": plan.to_dict(),
                "out_dir": str(Path(out_dir).resolve()),
                "initial": str(init.resolve()),
                "drop": drop,
            },
            indent=1,
        )
    )
    return path


def read_plan(path: Path) -> tuple[Plan, Path, Path, dict[str, Any] | None]:
    """(plan, the ServerApp's output folder, the initial state's file, drop-out drill)."""
    raw = json.loads(Path(path).read_text())
    return Plan(**raw["plan"]), Path(raw["out_dir"]), Path(raw["initial"]), raw.get("drop")


def write_app(folder: Path, plan_file: Path, version: str = "1.0.0") -> Path:
    """The Flower App folder ``flwr run`` packs: a ``pyproject.toml`` naming this module's
    ``server`` and ``client``, with the plan file as the run config's ``plan``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    plan = json.dumps(str(Path(plan_file).resolve()))  # a TOML basic string
    (folder / "pyproject.toml").write_text(
        f"""[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "{APP_NAME}"
version = "{version}"
description = "bedside federated fine-tuning (the code is the installed bedside package)"
dependencies = []

[tool.flwr.app]
publisher = "bedside"

[tool.flwr.app.components]
serverapp = "{ENTRY}:server"
clientapp = "{ENTRY}:client"

[tool.flwr.app.config]
{PLAN_KEY} = {plan}
"""
    )
    return folder


def _plan_path(context: Context) -> Path:
    node = context.node_config
    if PLAN_KEY in node:  # a site's own copy of the plan
        return Path(str(node[PLAN_KEY]))
    if PLAN_KEY not in context.run_config:
        from bedside.errors import ConfigError

        raise ConfigError(
            f"the Flower run has no `{PLAN_KEY}` in its run config; start it with "
            "`bedside federation deploy`, which writes the plan file and the app folder."
        )
    return Path(str(context.run_config[PLAN_KEY]))


def _server_plan(context: Context) -> tuple[Plan, Path, State]:
    plan, out_dir, initial, _ = read_plan(_plan_path(context))
    return plan, out_dir, load_state(initial)


def _site_plan(context: Context) -> tuple[Plan, dict[str, Any] | None]:
    plan, _, _, drop = read_plan(_plan_path(context))
    return plan, drop


server = aggregator_app(_server_plan)
client = site_app(_site_plan)
