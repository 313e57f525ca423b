"""The engine's federated hooks (spec.extra["federated"]): start from given weights, export the
trained tensors, score given weights only, FedProx's proximal term, DP-SGD through Opacus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bedside.federation.exchange import load_state, save_state
from tests.engine.conftest import build_job, make_corpus, read_preds, run_inprocess

pytestmark = pytest.mark.torch

LEARN = {"epochs": 2, "learning_rate": 3e-3, "batch_size": 8, "early_stopping_patience": 10}


@pytest.fixture(scope="module")
def corpora() -> tuple[Any, Any]:
    return make_corpus(16, seed=1), make_corpus(4, seed=2, start=10_000)


def job(
    tmp: Path, bundle: Path, corpora: Any, fed: dict[str, Any], method: str = "lora", **train: Any
) -> Path:
    tr, ho = corpora
    d = build_job(
        tmp,
        bundle,
        "encoder",
        "phase2",
        tr,
        ho,
        {**LEARN, "method": method, **train},
        extra={"federated": fed},
    )
    return d


def distance(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    return float(sum(np.sum((a[k] - b[k]) ** 2) for k in a))


def test_round_exports_update_and_scoring_only_reuses_it(
    fed_bundle: Path, corpora: Any, tmp_path: Path, clean_env: None
) -> None:
    first = job(tmp_path / "a", fed_bundle, corpora, {"train": True})
    assert run_inprocess(first) == 0, (first / "out" / "log.txt").read_text()
    update = load_state(first / "out" / "federated" / "update.safetensors")
    info = json.loads((first / "out" / "federated" / "update.json").read_text())
    assert info["examples"] > 0 and info["steps"] > 0
    assert any("lora_A" in n for n in update) and any("classifier" in n for n in update)
    assert not (first / "out" / "model").exists()  # a round's update is not a deployable model

    # Scoring only: the job starts from the exported update and takes no step, so it predicts
    # exactly what the training job predicted with the same weights.
    save_state(update, tmp_path / "global.safetensors")
    second = job(tmp_path / "b", fed_bundle, corpora, {"train": False})
    (second / "inputs" / "global.safetensors").write_bytes(
        (tmp_path / "global.safetensors").read_bytes()
    )
    spec = json.loads((second / "spec.json").read_text())
    spec["extra"]["federated"]["init"] = "inputs/global.safetensors"
    (second / "spec.json").write_text(json.dumps(spec))
    assert run_inprocess(second) == 0, (second / "out" / "log.txt").read_text()
    np.testing.assert_allclose(
        np.array(read_preds(second)["probs"]), np.array(read_preds(first)["probs"]), atol=1e-5
    )
    again = load_state(second / "out" / "federated" / "update.safetensors")
    assert distance(again, update) == 0.0


def _with_init(d: Path, state: dict[str, np.ndarray]) -> None:
    save_state(state, d / "inputs" / "global.safetensors")
    spec = json.loads((d / "spec.json").read_text())
    spec["extra"]["federated"]["init"] = "inputs/global.safetensors"
    (d / "spec.json").write_text(json.dumps(spec))


def test_wrong_shape_init_fails_as_invalid_input(
    fed_bundle: Path, corpora: Any, tmp_path: Path, clean_env: None
) -> None:
    first = job(tmp_path / "a", fed_bundle, corpora, {"train": False})
    assert run_inprocess(first) == 0
    state = load_state(first / "out" / "federated" / "update.safetensors")
    name = next(n for n in state if "classifier" in n and n.endswith("weight"))
    state[name] = np.zeros((state[name].shape[0] + 1, state[name].shape[1]), dtype=np.float32)
    bad = job(tmp_path / "b", fed_bundle, corpora, {"train": True})
    _with_init(bad, state)
    assert run_inprocess(bad) == 1
    err = json.loads((bad / "out" / "error.json").read_text())
    assert err["error_class"] == "invalid_input" and name in err["message"]


@pytest.mark.slow  # three engine jobs
def test_proximal_term_keeps_the_update_near_the_global_weights(
    fed_bundle: Path, corpora: Any, tmp_path: Path, clean_env: None
) -> None:
    base = job(tmp_path / "g", fed_bundle, corpora, {"train": False}, method="full")
    assert run_inprocess(base) == 0
    start = load_state(base / "out" / "federated" / "update.safetensors")
    moved = {}
    for mu in (0.0, 50.0):
        d = job(
            tmp_path / f"mu{mu}",
            fed_bundle,
            corpora,
            {"train": True, "proximal_mu": mu},
            method="full",
        )
        _with_init(d, start)
        assert run_inprocess(d) == 0, (d / "out" / "log.txt").read_text()
        moved[mu] = distance(load_state(d / "out" / "federated" / "update.safetensors"), start)
    assert 0 < moved[50.0] < 0.5 * moved[0.0]


def test_dp_sgd_round_runs_poisson_steps_and_stays_finite(
    fed_bundle: Path, corpora: Any, tmp_path: Path, clean_env: None
) -> None:
    dp = {"noise_multiplier": 1.0, "max_grad_norm": 1.0, "sample_rate": 0.25}
    d = job(tmp_path / "dp", fed_bundle, corpora, {"train": True, "dp": dp}, epochs=1)
    assert run_inprocess(d) == 0, (d / "out" / "log.txt").read_text()
    info = json.loads((d / "out" / "federated" / "update.json").read_text())
    assert info["steps"] == 4  # round(1 / 0.25) Poisson-sampled steps in one epoch
    update = load_state(d / "out" / "federated" / "update.safetensors")
    assert all(np.isfinite(a).all() for a in update.values())
    plain = job(tmp_path / "plain", fed_bundle, corpora, {"train": False}, epochs=1)
    assert run_inprocess(plain) == 0
    assert distance(update, load_state(plain / "out" / "federated" / "update.safetensors")) > 0
