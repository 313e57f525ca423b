"""The server's checks on Flower's FedAvg/FedProx, driven through an in-memory Grid: malformed
updates are rejected with the site named, a dropped site's round completes with the rest, too
few good updates void the round; the aggregation itself is Flower's sample-weighted mean."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pytest
from flwr.app import ConfigRecord, Error, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid

from bedside.federation.exchange import UpdateRejected, from_record, to_record, validate_update
from bedside.federation.strategy import SITE_KEY, final_state, make_strategy

Reply = Callable[[int, dict[str, np.ndarray]], dict[str, np.ndarray] | None]


class LocalGrid(Grid):
    """Nodes answered in this process by ``replies[site](round, state)`` (None: drops out)."""

    def __init__(self, replies: dict[str, Reply], examples: dict[str, int]) -> None:
        self.replies = replies
        self.examples = examples
        self.ids = {1000 + i: name for i, name in enumerate(replies)}

    def set_run(self, run: Any) -> None:  # pragma: no cover - not used by a strategy
        raise NotImplementedError

    @property
    def run(self) -> Any:  # pragma: no cover
        raise NotImplementedError

    def create_message(self, *a: Any, **kw: Any) -> Message:  # pragma: no cover
        raise NotImplementedError

    def get_node_ids(self) -> Iterable[int]:
        return list(self.ids)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:  # pragma: no cover
        raise NotImplementedError

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:  # pragma: no cover
        raise NotImplementedError

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        out = []
        for i, msg in enumerate(messages):
            msg.metadata.__dict__["_message_id"] = f"m{i}"
            site = self.ids[msg.metadata.dst_node_id]
            rnd = int(msg.content["config"]["server-round"])
            state = from_record(msg.content["arrays"])
            if msg.metadata.message_type.startswith("evaluate"):
                body = RecordDict(
                    {
                        "metrics": MetricRecord({"num-examples": 10}),
                        SITE_KEY: ConfigRecord(
                            {"name": site, "report": json.dumps({"macro_f1": 0.5, "n": 10})}
                        ),
                    }
                )
                reply = Message(body, reply_to=msg)
            else:
                new = self.replies[site](rnd, state)
                if new is None:
                    reply = Message(Error(code=0, reason=f"site {site} dropped out"), reply_to=msg)
                else:
                    body = RecordDict(
                        {
                            "arrays": to_record(new),
                            "metrics": MetricRecord({"num-examples": self.examples[site]}),
                            SITE_KEY: ConfigRecord({"name": site, "report": "{}"}),
                        }
                    )
                    reply = Message(body, reply_to=msg)
            reply.metadata.__dict__["_src_node_id"] = msg.metadata.dst_node_id
            out.append(reply)
        return out


@pytest.fixture(autouse=True)
def task_identity() -> Any:
    """Messages stamp the run and node of the process; a ServerApp process has them set."""
    from flwr.supercore.task_identity import TaskIdentity

    saved = (TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id)
    TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id = 1, 1, 0
    yield
    TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id = saved


START = {"w": np.zeros((2, 3), dtype=np.float32), "b": np.zeros(3, dtype=np.float32)}


def plus(v: float) -> Reply:
    return lambda rnd, s: {k: a + v for k, a in s.items()}


def run(
    replies: dict[str, Reply],
    rounds: int = 2,
    min_sites: int = 2,
    examples: dict[str, int] | None = None,
) -> tuple[Any, dict[str, np.ndarray]]:
    examples = examples or {s: 10 for s in replies}
    strat = make_strategy("fedavg", len(replies), min_sites, rounds, 0.0)
    res = strat.start(
        grid=LocalGrid(replies, examples), initial_arrays=to_record(START), num_rounds=rounds
    )
    return strat, final_state(res, START)


def test_fedavg_is_the_sample_weighted_mean() -> None:
    strat, final = run({"a": plus(1.0), "b": plus(4.0)}, rounds=1, examples={"a": 30, "b": 10})
    np.testing.assert_allclose(final["w"], np.full((2, 3), (30 * 1 + 10 * 4) / 40))
    assert strat.log[0]["bytes_up"] == 2 * (24 + 12) and strat.log[0]["void"] is False
    assert sorted(e["site"] for e in strat.evaluations) == [
        "a",
        "b",
    ]  # scored once, after the last round


def test_malformed_updates_are_rejected_with_the_site_named() -> None:
    def nan(rnd: int, s: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {k: a + 1 for k, a in s.items()}
        out["w"][0, 0] = np.nan
        return out

    def wrong_shape(rnd: int, s: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"w": np.ones((3, 3), dtype=np.float32), "b": s["b"]}

    strat, final = run(
        {"good": plus(2.0), "other": plus(4.0), "nanny": nan, "shapey": wrong_shape}, rounds=1
    )
    rejected = {r["site"]: r["reason"] for r in strat.log[0]["rejected"]}
    assert set(rejected) == {"nanny", "shapey"}
    assert "NaN" in rejected["nanny"] and "'nanny'" in rejected["nanny"]
    assert "shape (3, 3), expected (2, 3)" in rejected["shapey"]
    np.testing.assert_allclose(final["w"], np.full((2, 3), 3.0))  # mean of the two good ones


def test_a_site_dropping_out_mid_run_leaves_the_round_to_the_rest() -> None:
    def flaky(rnd: int, s: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
        return None if rnd == 2 else {k: a + 10 for k, a in s.items()}

    strat, final = run({"a": plus(1.0), "b": plus(1.0), "c": flaky}, rounds=2)
    assert strat.log[1]["failed"][0]["site"] == "c"  # named from its round-1 reply
    # round 1: mean(1, 1, 10) = 4; round 2: 4 + 1 from a and b only
    np.testing.assert_allclose(final["b"], np.full(3, 5.0))


def test_too_few_good_updates_void_the_round() -> None:
    strat, final = run(
        {"a": plus(1.0), "b": lambda r, s: None, "c": lambda r, s: None}, rounds=1, min_sites=2
    )
    assert strat.log[0]["void"] is True
    np.testing.assert_allclose(final["w"], START["w"])  # the global model carries over


def test_validate_update_checks_names_dtype_and_size() -> None:
    with pytest.raises(UpdateRejected, match="1 missing"):
        validate_update("x", {"w": START["w"]}, START)
    with pytest.raises(UpdateRejected, match="dtype int64"):
        validate_update("x", {"w": np.zeros((2, 3), dtype=np.int64), "b": START["b"]}, START)
    with pytest.raises(UpdateRejected, match="magnitude"):
        validate_update("x", {"w": np.full((2, 3), 1e9, dtype=np.float32), "b": START["b"]}, START)
    validate_update("x", START, START)
