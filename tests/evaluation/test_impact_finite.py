"""Impact figures are never inf/NaN: amounts past MAX_AMOUNT are refused, the rest stay finite."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bedside.errors import ConfigError
from bedside.evaluation.impact import MAX_AMOUNT, ImpactAssumptions, estimate_impact


def _finite(obj: object) -> None:
    if isinstance(obj, float):
        assert math.isfinite(obj), obj
    elif isinstance(obj, dict):
        for v in obj.values():
            _finite(v)
    elif isinstance(obj, list | tuple):
        for v in obj:
            _finite(v)


@pytest.mark.parametrize("key", ["cost_per_missed_paper", "reviewer_cost_per_fte", "reviewer_fte"])
def test_overflowing_amounts_are_refused(key: str) -> None:
    with pytest.raises(ConfigError, match="at most"):
        ImpactAssumptions(abstracts_per_year=5000, **{key: 1e308})
    with pytest.raises(ConfigError, match="between 0"):
        ImpactAssumptions(abstracts_per_year=10**400)


amount = st.floats(min_value=0, max_value=MAX_AMOUNT, allow_nan=False)


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(min_value=0, max_value=int(MAX_AMOUNT)),
    miss=amount,
    fte_cost=amount,
    fte=amount,
    ai=amount,
    recall=st.floats(min_value=0, max_value=1),
)
def test_figures_stay_finite_at_the_bounds(
    n: int, miss: float, fte_cost: float, fte: float, ai: float, recall: float
) -> None:
    a = ImpactAssumptions(
        abstracts_per_year=n,
        cost_per_missed_paper=miss,
        reviewer_cost_per_fte=fte_cost,
        reviewer_fte=fte,
        ai_cost_per_year=ai,
    )
    out = estimate_impact({"a": recall, "b": 1.0}, {"a": 0.5, "b": 0.5}, a)
    _finite(out)
    json.dumps(out, allow_nan=False)  # strict JSON: no Infinity/NaN tokens
