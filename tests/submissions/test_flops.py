"""Compute estimates against numbers worked out by hand."""

from __future__ import annotations

import math
from typing import Any

import pytest

from bedside.submissions.flops import estimate_pflops, token_counts, what_fits, words_to_tokens
from bedside.submissions.manifest import parse_manifest


def _m(kind: str = "encoder", **train: Any) -> dict[str, Any]:
    lines = "\n".join(f"{k} = {v!r}".replace("'", '"') for k, v in train.items())
    labels = '\n[labels]\nA = "x"' if kind == "classifier" else ""
    return parse_manifest(f'name = "m"\nkind = "{kind}"\n[train]\n{lines}{labels}').to_dict()


N = 1_000_000  # parameters
TRAIN = [100] * 10  # 1,000 train tokens
HOLD = [100] * 5  # 500 holdout tokens


def test_full_by_hand() -> None:
    est = estimate_pflops(N, _m(method="full", epochs=2, validation_fraction=0.1), TRAIN, HOLD)
    phase1 = 2 * N * 500
    # per epoch: 6·N·900 (fit) + 2·N·100 (validation); then the holdout once
    phase2 = 2 * (6 * N * 900 + 2 * N * 100) + 2 * N * 500
    assert est["phase1"] == pytest.approx(phase1 / 1e15)
    assert est["phase2"] == pytest.approx(phase2 / 1e15)
    assert est["total"] == pytest.approx((phase1 + phase2) / 1e15)
    assert est["train_tokens"] == 1000 and est["holdout_tokens"] == 500


def test_lora_and_head_only_by_hand() -> None:
    lora = estimate_pflops(N, _m(method="lora", epochs=3, validation_fraction=0.0), TRAIN, HOLD)
    assert lora["phase2"] == pytest.approx((3 * 4 * N * 1000 + 2 * N * 500) / 1e15)
    head = estimate_pflops(N, _m(method="head-only", epochs=3), TRAIN, HOLD)
    assert head["phase2"] == pytest.approx(2 * N * (1000 + 500) / 1e15)  # epochs do not matter
    full = estimate_pflops(N, _m(method="full", epochs=3, validation_fraction=0.0), TRAIN, HOLD)
    assert head["phase2"] < lora["phase2"] < full["phase2"]


def test_max_length_caps_tokens() -> None:
    est = estimate_pflops(N, _m(max_length=64), [100, 10], [100])
    assert est["train_tokens"] == 64 + 10 and est["holdout_tokens"] == 64


def test_causal_lm_phase1_reads_a_prompt() -> None:
    est = estimate_pflops(N, _m("causal-lm", max_length=128), TRAIN, [10, 100])
    assert est["phase1"] == pytest.approx(2 * N * (74 + 128) / 1e15)  # +64 prompt tokens, capped


def test_tokens_from_words() -> None:
    assert words_to_tokens(10) == 13 and words_to_tokens(0) == 1
    assert token_counts(["one two three", ""]) == [math.ceil(3 * 1.3), 1]


def test_what_fits() -> None:
    m = _m(method="full", epochs=4, max_length=128, validation_fraction=0.0)
    per_epoch = 6 * N * 1000 / 1e15
    fixed = (2 * N * 500 + 2 * N * 500) / 1e15  # phase 1 + holdout prediction
    available = fixed + 2.5 * per_epoch  # two epochs fit, three do not
    fits = what_fits(N, m, TRAIN, HOLD, available)
    assert fits[0].startswith("train.epochs = 2 ")
    # max_length 64: 640 N phase 1 + 4·6·640 N + 2·320 N = 16,640 N <= 17,000 N
    assert any(f.startswith("train.max_length = 64 ") for f in fits)
    assert any(f.startswith('train.method = "head-only"') for f in fits)
    assert not any("lora" in f for f in fits)  # 1,000 N + 4·4·1,000 N + 1,000 N = 18,000 N
    assert what_fits(N, m, TRAIN, HOLD, 0.0) == []
