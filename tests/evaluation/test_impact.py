"""Business-impact estimates: known answers and validated assumptions."""

from __future__ import annotations

import pytest

from bedside.errors import ConfigError
from bedside.evaluation.impact import ImpactAssumptions, estimate_impact, impact_table

RECALL = {"neoplasms": 0.9, "digestive": 0.5, "other": 0.8}
SHARES = {"neoplasms": 0.3, "digestive": 0.1, "other": 0.6}


def test_known_answer_defaults() -> None:
    r = estimate_impact(RECALL, SHARES, ImpactAssumptions())
    # 10,000 abstracts: 3,000 x 0.1 + 1,000 x 0.5 + 6,000 x 0.2
    assert r["missed_per_class"] == pytest.approx(
        {"neoplasms": 300, "digestive": 500, "other": 1200}
    )
    assert r["missed_total"] == pytest.approx(2000)
    assert r["miss_cost"] == pytest.approx(2000 * 500.0)
    assert r["reviewer_cost"] == pytest.approx(90_000.0)
    assert r["ai_cost"] == 0.0
    assert r["total_cost"] == pytest.approx(1_090_000.0)
    assert r["currency"] == "EUR"
    assert any("10,000 abstracts" in line for line in r["assumptions"])


def test_known_answer_custom() -> None:
    a = ImpactAssumptions(
        abstracts_per_year=2000,
        cost_per_missed_paper=100.0,
        reviewer_cost_per_fte=60_000.0,
        reviewer_fte=0.5,
        ai_cost_per_year={"vendor A": 12_000.0, "*": 1000.0},
        currency="CHF",
        notes=["Figures agreed with the finance office."],
    )
    r = estimate_impact({"x": 1.0, "y": 0.0}, {"x": 0.75, "y": 0.25}, a, label="vendor A")
    assert r["missed_per_class"] == pytest.approx({"x": 0.0, "y": 500.0})
    assert r["total_cost"] == pytest.approx(500 * 100.0 + 30_000.0 + 12_000.0)
    assert (
        estimate_impact({"x": 1.0, "y": 0.0}, {"x": 0.75, "y": 0.25}, a, label="other")["ai_cost"]
        == 1000.0
    )
    assert (
        estimate_impact({"x": 1.0, "y": 0.0}, {"x": 0.75, "y": 0.25}, a, ai_cost=5.0)["ai_cost"]
        == 5.0
    )
    assert r["assumptions"][-1] == "Figures agreed with the finance office."


def test_rounded_shares_are_renormalised() -> None:
    r = estimate_impact({"a": 0.0, "b": 0.0}, {"a": 0.333, "b": 0.666}, ImpactAssumptions())
    assert r["missed_total"] == pytest.approx(10_000)


def test_table_side_by_side() -> None:
    rows = [
        {"label": "internal baseline", "per_class_recall": {"a": 0.5, "b": 0.5}},
        {"label": "vendor", "per_class_recall": {"a": 0.9, "b": 0.7}, "ai_cost": 20_000.0},
    ]
    t = impact_table(rows, {"a": 0.5, "b": 0.5}, ImpactAssumptions())
    assert [r["label"] for r in t] == ["internal baseline", "vendor"]
    assert t[0]["missed_total"] == pytest.approx(5000)
    assert t[1]["missed_total"] == pytest.approx(500 + 1500)
    assert t[1]["vs_first"] == pytest.approx((2000 - 5000) * 500.0 + 20_000.0)
    assert t[0]["vs_first"] == 0.0
    assert impact_table([], {"a": 1.0}, ImpactAssumptions()) == []


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"abstracts_per_year": -1}, "abstracts_per_year"),
        ({"abstracts_per_year": 10.5}, "whole number"),
        ({"cost_per_missed_paper": -5.0}, "cost_per_missed_paper"),
        ({"reviewer_fte": float("nan")}, "reviewer_fte"),
        ({"ai_cost_per_year": {"v": -1.0}}, "ai_cost_per_year"),
        ({"currency": ""}, "currency"),
    ],
)
def test_assumptions_are_validated(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        ImpactAssumptions(**kwargs)


def test_from_dict_round_trip_and_unknown_keys() -> None:
    a = ImpactAssumptions(abstracts_per_year=123)
    assert ImpactAssumptions.from_dict(a.to_dict()) == a
    with pytest.raises(ConfigError, match="unknown impact assumption"):
        ImpactAssumptions.from_dict({"abstracts": 5})


def test_inputs_are_validated() -> None:
    with pytest.raises(ConfigError, match="no recall given"):
        estimate_impact({"a": 0.5}, {"a": 0.5, "b": 0.5}, ImpactAssumptions())
    with pytest.raises(ConfigError, match=r"in \[0, 1\]"):
        estimate_impact({"a": 1.5}, {"a": 1.0}, ImpactAssumptions())
    with pytest.raises(ConfigError, match="sum to 1"):
        estimate_impact({"a": 0.5, "b": 0.5}, {"a": 0.5, "b": 0.2}, ImpactAssumptions())
