"""``bedside data synth --n N`` writes exactly N rows, for awkward N too."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bedside.data.synthetic import class_counts, synthesize


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=2_000_000))
def test_class_counts_sum_to_n(n: int) -> None:
    counts = class_counts(n)
    assert sum(counts.values()) == n and min(counts.values()) >= 0


def test_the_reported_n_writes_every_row() -> None:
    assert sum(class_counts(14438).values()) == 14438
    assert len(synthesize(14438, seed=3)) == 14438
