"""Pure leaderboard functions: release rules, ranking and ties, rows, shares, the bounded cache."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bedside.auth import OWNER, Principal
from bedside.errors import AuthError
from bedside.leaderboard import (
    build_row,
    ci_overlap_tie,
    compute_pflops,
    rank_rows,
    round_released,
    scope_for,
    shares_from_eda,
    shares_from_metrics,
    small_classes,
    tie_method,
)
from bedside.leaderboard.ties import BoundedCache

VENDOR = Principal(role="contributor", name="acme", contributor_id=7)


def sub(model: str, f1: float, ci: list[float] | None = None) -> dict[str, Any]:
    return {"kind": "submission", "model": model, "macro_f1": f1, "macro_f1_ci": ci}


# -- release rules ------------------------------------------------------------------------
def test_round_released_rounds_recursively_and_drops_non_finite() -> None:
    out = round_released({"a": 0.123456, "b": [math.nan, math.inf, -math.inf, 1], "c": True}, 3)
    assert out == {"a": 0.123, "b": [None, None, None, 1], "c": True}


@given(st.recursive(st.floats() | st.integers() | st.none(), lambda c: st.lists(c, max_size=3)))
def test_released_figures_always_serialise_as_strict_json(x: Any) -> None:
    json.dumps(round_released(x, 3), allow_nan=False)  # raises on NaN/inf


def test_scope_rules() -> None:
    assert scope_for(OWNER, published=False) is True
    assert scope_for(VENDOR, published=False) == 7
    assert scope_for(VENDOR, published=True) is True
    assert scope_for(None, published=True) is True
    with pytest.raises(AuthError, match="not published"):
        scope_for(None, published=False)


# -- ranking and ties ---------------------------------------------------------------------
def test_rank_rows_orders_best_first_and_baseline_unranked() -> None:
    rows = [
        sub("c", 0.5),
        {"kind": "baseline", "model": "tfidf", "macro_f1": 0.6},
        sub("a", 0.9),
        sub("b", 0.6),
    ]
    out = rank_rows(rows, tied=lambda a, b: False)
    assert [r["model"] for r in out] == ["a", "b", "tfidf", "c"]
    assert [r.get("rank_label") for r in out] == ["1", "2", None, "3"]
    assert "rank" not in out[2]


def test_ties_share_the_rank_above_and_every_shared_rank_is_labelled() -> None:
    rows = [sub("a", 0.9), sub("b", 0.89), sub("c", 0.88), sub("d", 0.5)]
    out = rank_rows(rows, tied=lambda above, below: below["macro_f1"] > 0.8)
    assert [(r["model"], r["rank"], r["rank_label"]) for r in out] == [
        ("a", 1, "=1"),
        ("b", 1, "=1"),
        ("c", 1, "=1"),
        ("d", 4, "4"),
    ]
    assert [r["tied_with_above"] for r in out] == [False, True, True, False]


def test_rank_rows_survives_a_missing_score() -> None:
    out = rank_rows(
        [{"kind": "submission", "model": "x", "macro_f1": None}, sub("y", 0.1)],
        tied=lambda a, b: False,
    )
    assert [r["model"] for r in out] == ["y", "x"]


def test_ci_overlap_tie() -> None:
    assert ci_overlap_tie(sub("a", 0.8, [0.75, 0.85]), sub("b", 0.7, [0.65, 0.76]))
    assert not ci_overlap_tie(sub("a", 0.8, [0.75, 0.85]), sub("b", 0.7, [0.65, 0.74]))
    assert ci_overlap_tie(sub("a", 0.8), sub("b", 0.8))  # no intervals: equal scores tie
    assert not ci_overlap_tie(sub("a", 0.8), sub("b", 0.7))


def test_tie_method() -> None:
    assert tie_method([]) is None
    assert tie_method(["ci_overlap", "ci_overlap"]) == "ci_overlap"
    assert tie_method(["ci_overlap", "paired_bootstrap"]) == "mixed"


# -- rows ---------------------------------------------------------------------------------
def result(phase: int, f1: float, prov: dict[str, Any], sub_id: int | None = 3) -> dict[str, Any]:
    return {
        "id": 10 + phase,
        "submission_id": sub_id,
        "submission_name": "MiniLM",
        "model_label": "label",
        "vendor": "acme",
        "phase": phase,
        "macro_f1": f1,
        "provenance": prov,
        "metrics": {"per_class": [{"name": "rare", "f1": 0.12345, "recall": 0.5}], "n": 40},
    }


def test_build_row_sums_phase_compute_and_computes_delta() -> None:
    p1 = result(1, 0.61234, {"compute": {"actual_pflops": 0.5}})
    p2 = result(2, 0.71234, {"compute": {"estimated_pflops": 1.25}})
    row = build_row(p2, p1, p2, small={"rare"}, decimals=3)
    assert row["macro_f1"] == 0.712 and row["phase1_macro_f1"] == 0.612
    assert row["delta"] == 0.1
    assert row["compute_pflops"] == 1.75 and row["compute_estimated"] is True
    assert row["per_class"][0] == {
        "name": "rare",
        "f1": 0.123,
        "recall": 0.5,
        "recall_ci": None,
        "precision": None,
        "share": None,
        "small": True,
    }
    assert row["kind"] == "submission" and row["model"] == "MiniLM"


def test_build_row_for_the_baseline() -> None:
    base = result(0, 0.5, {"flops": 2e15}, sub_id=None)
    row = build_row(base, None, None, small=set(), decimals=2)
    assert row["kind"] == "baseline" and row["vendor"] == "internal baseline"
    assert row["model"] == "label" and row["compute_pflops"] == 2.0
    assert row["delta"] is None


def test_compute_pflops_ignores_non_finite_and_text() -> None:
    assert compute_pflops({"pflops": "inf", "estimated_pflops": 3}) == (3.0, True)
    assert compute_pflops({"compute": {"actual_pflops": "nan"}, "pflops": "x"}) == (None, False)
    assert compute_pflops({"compute": "not a mapping", "pflops_actual": 1}) == (1.0, False)


# -- shares -------------------------------------------------------------------------------
def test_shares_from_eda_prefers_percentages_then_counts() -> None:
    eda = {"classes": [{"name": "a", "share_pct": 75.0}, {"name": "b", "share_pct": 25.0}]}
    assert shares_from_eda(eda) == {"a": 0.75, "b": 0.25}
    eda = {"classes": [{"name": "a", "count": 3}, {"name": "b", "total": 1}, "junk"]}
    assert shares_from_eda(eda) == {"a": 0.75, "b": 0.25}
    assert shares_from_eda({"classes": "nope"}) == {}


def test_shares_from_metrics_and_small_classes() -> None:
    m = {
        "per_class": [
            {"name": "a", "support": 6},
            {"name": "b", "support": 3},
            {"name": "c", "support": 1},
        ]
    }
    shares = shares_from_metrics(m)
    assert shares == {"a": 0.6, "b": 0.3, "c": 0.1}
    assert small_classes(shares) == ["c", "b"]
    assert shares_from_metrics({"per_class": [{"name": "a", "support": 0}]}) == {}


# -- bounded cache ------------------------------------------------------------------------
def test_bounded_cache_evicts_least_recently_used() -> None:
    c = BoundedCache(maxsize=2)
    c.put("a", True)
    c.put("b", False)
    assert c.get("a") is True  # a is now most recent
    c.put("c", True)
    assert c.get("b") is None and c.get("a") is True and c.get("c") is True
    assert len(c) == 2
    for i in range(1000):
        c.put(i, True)
    assert len(c) == 2
    with pytest.raises(ValueError, match="at least 1"):
        BoundedCache(maxsize=0)


def test_the_shared_paired_cache_is_bounded() -> None:
    from bedside.leaderboard.ties import PAIRED_CACHE

    assert 0 < PAIRED_CACHE.maxsize <= 100_000
