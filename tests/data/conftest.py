"""Helpers for the data tests: tiny corpora written in tmp_path (never real text)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bedside.data.corpus import group_key


def words(n: int, tag: str = "w") -> str:
    """A text of exactly ``n`` words, distinct for each (n, tag)."""
    return " ".join(f"{tag}{i}" for i in range(n))


def tiny_frame(counts: dict[str, int], seed_tag: str = "") -> pd.DataFrame:
    """``counts[label]`` distinct texts per label, columns text,label."""
    rows = []
    for label, n in counts.items():
        for i in range(n):
            rows.append(
                {"text": f"{label} abstract {seed_tag}{i} " + words(5 + i % 7), "label": label}
            )
    return pd.DataFrame(rows)


def framed(texts: list[str], labels: list[str]) -> pd.DataFrame:
    """A stored-corpus-like frame (row_id, text, label, group)."""
    return pd.DataFrame(
        {
            "row_id": range(len(texts)),
            "text": texts,
            "label": labels,
            "group": [group_key(t) for t in texts],
        }
    )


@pytest.fixture
def make_frame():  # type: ignore[no-untyped-def]
    """``tiny_frame`` as a fixture (tests/ is not a package)."""
    return tiny_frame


@pytest.fixture
def make_framed():  # type: ignore[no-untyped-def]
    return framed


@pytest.fixture
def small_csv(tmp_path: Path) -> Path:
    """A 60-row corpus with string labels a (30), b (20), c (10)."""
    p = tmp_path / "small.csv"
    tiny_frame({"a": 30, "b": 20, "c": 10}).to_csv(p, index=False)
    return p
