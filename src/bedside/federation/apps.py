"""Flower's ServerApp and ClientApp for a bedside federation.

The ClientApp runs at a site: it finds its site (``partition-id`` in simulation, the
``site`` node-config key of a SuperNode in deployment), runs the round through
:class:`~bedside.federation.worker.SiteWorker`, and replies with the trained tensors, a
MetricRecord (``num-examples``, FedAvg's weight) and a ConfigRecord ``site`` naming itself with a
JSON report of aggregate numbers. The ServerApp runs Flower's FedAvg/FedProx
(:mod:`bedside.federation.strategy`) from the initial state and writes ``federated.json`` and
``global.safetensors`` into its output folder.

Example (simulation)::

    server, client = server_app(plan, out_dir, initial), client_app(plan)
    run_simulation(server, client, num_supernodes=3, backend_config=...)

In deployment the same apps are built by :func:`aggregator_app` and :func:`site_app` from the
plan file the run config names (:mod:`bedside.federation.flower_app`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from bedside.federation.exchange import State, from_record, nbytes, save_state, to_record
from bedside.federation.strategy import SITE_KEY, final_state, make_strategy
from bedside.federation.worker import Plan, SiteWorker


def site_name(plan: Plan, context: Context) -> str:
    """This ClientApp's site: ``site`` from the SuperNode's node config, else the simulation's
    ``partition-id`` as an index into the config's sites."""
    node = context.node_config
    if "site" in node:
        return str(node["site"])
    return str(plan.config["sites"][int(node["partition-id"])]["name"])


def _reply(msg: Message, site: str, report: dict[str, Any], state: State | None) -> Message:
    content = RecordDict(
        {
            "metrics": MetricRecord(
                {"num-examples": int(report.get("examples", report.get("n", 1)))}
            ),
            SITE_KEY: ConfigRecord({"name": site, "report": json.dumps(report)}),
        }
    )
    if state is not None:
        content["arrays"] = to_record(state)
    return Message(content, reply_to=msg)


def client_app(plan: Plan, drop: dict[str, Any] | None = None) -> ClientApp:
    """The site side. ``drop = {"site": NAME, "round": N}`` makes that site fail in round N (the
    demo's and tests' drop-out)."""
    return site_app(lambda _context: (plan, drop))


def site_app(
    plan_of: Callable[[Context], tuple[Plan, dict[str, Any] | None]],
) -> ClientApp:
    """The ClientApp, its plan (and drop-out drill) found per message by ``plan_of(context)``:
    a fixed plan in simulation, the plan file named by the run config in deployment
    (:mod:`bedside.federation.flower_app`)."""
    app = ClientApp()
    workers: dict[tuple[str, str], SiteWorker] = {}

    def worker(context: Context) -> tuple[str, SiteWorker, dict[str, Any] | None]:
        plan, drop = plan_of(context)
        name = site_name(plan, context)
        if (plan.run, name) not in workers:
            workers[plan.run, name] = SiteWorker(plan, name)
        return name, workers[plan.run, name], drop

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        name, w, drop = worker(context)
        server_round = int(str(msg.content.config_records["config"]["server-round"]))
        if drop and drop.get("site") == name and int(drop.get("round", 0)) == server_round:
            raise RuntimeError(f"site {name!r} dropped out of round {server_round}")
        update, report = w.train_round(
            from_record(msg.content.array_records["arrays"]), server_round
        )
        return _reply(msg, name, report, update)

    @app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        name, w, _ = worker(context)
        report = w.evaluate(from_record(msg.content.array_records["arrays"]))
        return _reply(msg, name, report, None)

    return app


def server_app(plan: Plan, out_dir: Path, initial: State) -> ServerApp:
    """The aggregator: FedAvg or FedProx over ``rounds`` rounds from ``initial``."""
    return aggregator_app(lambda _context: (plan, out_dir, initial))


def aggregator_app(plan_of: Callable[[Context], tuple[Plan, Path, State]]) -> ServerApp:
    """The ServerApp, its plan, output folder and initial state found by ``plan_of(context)``
    when the run starts (a fixed plan in simulation, the plan file in deployment)."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        plan, out_dir, initial = plan_of(context)
        cfg = plan.cfg
        strategy = make_strategy(
            cfg.strategy, len(cfg.sites), int(cfg.min_sites or 2), cfg.rounds, cfg.proximal_mu
        )
        t0 = time.monotonic()
        result = strategy.start(
            grid=grid,
            initial_arrays=to_record(initial),
            num_rounds=cfg.rounds,
            timeout=cfg.round_timeout_s,
        )
        final = final_state(result, initial)
        out_dir.mkdir(parents=True, exist_ok=True)
        save_state(final, out_dir / "global.safetensors")
        (out_dir / "federated.json").write_text(
            json.dumps(
                {
                    "rounds": strategy.log,
                    "evaluations": strategy.evaluations,
                    "state_bytes": nbytes(initial),
                    "tensors": len(initial),
                    "wall_s": round(time.monotonic() - t0, 2),
                },
                indent=1,
            )
        )

    return app
