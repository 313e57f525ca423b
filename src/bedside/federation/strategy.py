"""Flower's FedAvg and FedProx, with the server's checks on every site's update.

The aggregation is Flower's own (``FedAvg.aggregate_train``, sample-weighted by
``num-examples``). Before it runs, each reply's tensors are checked against the global state
sent that round (:func:`bedside.federation.exchange.validate_update`): a malformed update (other
tensor names, wrong shapes, NaN or inf) is dropped and recorded with the site named. A site that
fails or drops out comes back as an error reply, which FedAvg skips; the round then completes
with the rest when at least ``min_sites`` valid updates came in, and otherwise is void (the
global model carries over unchanged). Evaluation runs once, after the last round.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg, FedProx

from bedside.federation.exchange import UpdateRejected, from_record, nbytes, validate_update

SITE_KEY = "site"  # ConfigRecord in every reply: {"name": site, "report": json}


def site_of(msg: Message, known: dict[int, str] | None = None) -> str:
    """The site a reply names; an error reply has no content, so the node's earlier name."""
    node = int(msg.metadata.src_node_id)
    if msg.has_content():
        rec = msg.content.config_records.get(SITE_KEY)
        if rec is not None and "name" in rec:
            if known is not None:
                known[node] = str(rec["name"])
            return str(rec["name"])
    return (known or {}).get(node, f"node {node}")


def report_of(msg: Message) -> dict[str, Any]:
    if not msg.has_content():
        return {}
    rec = msg.content.config_records.get(SITE_KEY)
    return json.loads(str(rec["report"])) if rec is not None and "report" in rec else {}


class CheckedMixin:
    """Validation, drop-out accounting and a per-round log on top of a Flower strategy."""

    min_sites: int
    num_rounds: int
    log: list[dict[str, Any]]
    evaluations: list[dict[str, Any]]
    _sent: dict[str, Any]
    nodes: dict[int, str]

    def _setup(self, min_sites: int, num_rounds: int) -> None:
        self.nodes = {}
        self.min_sites = min_sites
        self.num_rounds = num_rounds
        self.log = []
        self.evaluations = []
        self._sent = {}

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        msgs = list(super().configure_train(server_round, arrays, config, grid))  # type: ignore[misc]
        state = from_record(arrays)
        self._sent = {"state": state, "sites": len(msgs), "bytes": nbytes(state)}
        return msgs

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        reference = self._sent.get("state") or {}
        kept: list[Message] = []
        entry: dict[str, Any] = {
            "round": server_round,
            "sampled": self._sent.get("sites", 0),
            "bytes_down": self._sent.get("bytes", 0) * self._sent.get("sites", 0),
            "bytes_up": 0,
            "updates": [],
            "failed": [],
            "rejected": [],
        }
        for msg in replies:
            if msg.has_error():
                entry["failed"].append(
                    {"site": site_of(msg, self.nodes), "reason": str(msg.error.reason)[-300:]}
                )
                continue
            site = site_of(msg, self.nodes)
            arrays = next(iter(msg.content.array_records.values()), None)
            update = from_record(arrays) if arrays is not None else {}
            entry["bytes_up"] += nbytes(update)
            try:
                validate_update(site, update, reference)
            except UpdateRejected as e:
                entry["rejected"].append({"site": site, "reason": e.message})
                continue
            kept.append(msg)
            entry["updates"].append({"site": site, **report_of(msg)})
        if len(kept) < self.min_sites:
            entry["void"] = True  # too few good updates: keep the previous global model
            self.log.append(entry)
            return None, None
        arrays_out, metrics = super().aggregate_train(server_round, kept)  # type: ignore[misc]
        entry["void"] = arrays_out is None
        self.log.append(entry)
        return arrays_out, metrics

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        if server_round < self.num_rounds:  # every site scores the final global model once
            return []
        return super().configure_evaluate(server_round, arrays, config, grid)  # type: ignore[misc]

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        replies = list(replies)
        for msg in replies:
            if msg.has_error():
                self.evaluations.append(
                    {"site": site_of(msg, self.nodes), "error": str(msg.error.reason)[-300:]}
                )
            else:
                self.evaluations.append({"site": site_of(msg, self.nodes), **report_of(msg)})
        return super().aggregate_evaluate(server_round, replies)  # type: ignore[misc]


class CheckedFedAvg(CheckedMixin, FedAvg):
    def __init__(self, *, min_sites: int, num_rounds: int, **kw: Any) -> None:
        FedAvg.__init__(self, **kw)
        self._setup(min_sites, num_rounds)


class CheckedFedProx(CheckedMixin, FedProx):
    def __init__(self, *, min_sites: int, num_rounds: int, **kw: Any) -> None:
        FedProx.__init__(self, **kw)
        self._setup(min_sites, num_rounds)


def make_strategy(
    name: str, n_sites: int, min_sites: int, num_rounds: int, proximal_mu: float
) -> CheckedFedAvg:
    """FedAvg or FedProx sampling every site each round (``min_train_nodes = n_sites``)."""
    kw: dict[str, Any] = {
        "fraction_train": 1.0,
        "fraction_evaluate": 1.0,
        "min_train_nodes": n_sites,
        "min_evaluate_nodes": n_sites,
        "min_available_nodes": n_sites,
    }
    if name == "fedprox":
        return CheckedFedProx(  # type: ignore[return-value]
            min_sites=min_sites, num_rounds=num_rounds, proximal_mu=proximal_mu, **kw
        )
    return CheckedFedAvg(min_sites=min_sites, num_rounds=num_rounds, **kw)


def final_state(result: Any, initial: dict[str, Any]) -> dict[str, Any]:
    """The last aggregated global state; ``initial`` when every round was void (Flower's
    ``Result.arrays`` then stays empty)."""
    arrays = getattr(result, "arrays", None)
    if arrays is None or len(arrays) == 0:
        return dict(initial)
    return from_record(arrays)
