"""Tiny random Llama- and Qwen2-style LLMs through the whole story: intake, phase 1 (calibrated
label log-likelihood; Qwen2 through its chat template) and phase 2 (LoRA on a classification
head, gradient checkpointing), each job in the tier-A sandbox, scored outside it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from bedside.jobs.worker import Worker
from bedside.sandbox.launch import BwrapLauncher
from bedside.store import schema
from bedside.submissions.contributors import add_contributor
from bedside.submissions.intake import submit_bundle
from bedside.testing.tinydecoders import CHATML, make_tiny_decoder
from bedside.workspace import Workspace
from tests.jobs import support
from tests.sandbox.conftest import require_tier
from tests.submissions.helpers import add_corpus

pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.torch]


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_a_tiny_decoder_goes_from_intake_through_both_phases_in_tier_a(
    arch: str, tmp_path: Path
) -> None:
    require_tier("A")
    ws, _token = Workspace.init(tmp_path / "ws")
    ws.set_policy(support.test_policy(memory_gb=3.0, wall_time_s=300))
    add_corpus(ws, n_train_per_class=10, n_holdout_per_class=3)
    add_contributor(ws, "acme")
    chat = arch == "qwen2"
    bundle = make_tiny_decoder(
        tmp_path / arch,
        arch,
        chat_template=CHATML if chat else None,
        manifest_overrides={
            "phase1": {"chat_template": chat},
            "train": {
                "method": "lora",
                "epochs": 2,
                "batch_size": 8,
                "max_length": 48,
                "learning_rate": 5e-3,
                "lora": {"r": 4, "alpha": 8},
            },
        },
    )
    sub = submit_bundle(ws, bundle, "acme")
    assert not sub["duplicate"] and sub["kind"] == "causal-lm"
    outcomes = Worker(ws, launcher=BwrapLauncher(), lease_s=60, poll_s=0.2, baselines=False).run(
        once=True
    )
    assert sorted(o.state for o in outcomes) == ["done", "done"], outcomes
    with ws.store.read() as conn:
        jobs = {
            r.kind: r
            for r in conn.execute(
                select(schema.jobs).where(schema.jobs.c.submission_id == sub["id"])
            )
        }
        results = {
            r.job_id: r
            for r in conn.execute(
                select(schema.results).where(
                    schema.results.c.job_id.in_([j.id for j in jobs.values()])
                )
            )
        }
    p1, p2 = jobs["phase1"], jobs["phase2"]
    assert results[p1.id].metrics["n"] == 15 and results[p2.id].metrics["n"] == 15
    assert "delta_vs_phase1" in results[p2.id].metrics  # the leaderboard's phase-1 -> 2 delta
    assert results[p1.id].provenance["tier"] == "A"
    info = json.loads((ws.jobs_dir / str(p1.id) / "out" / "compute.json").read_text())["info"]
    assert info["calibration"] == "content-free" and info["chat_template"] is chat
    assert len(info["content_free_prior"]) == 5
    model = ws.jobs_dir / str(p2.id) / "out" / "model"
    assert (model / "model.safetensors").is_file()  # LoRA merged, safetensors only
    assert not list(model.glob("*.bin")) and not list(model.glob("adapter_*"))
