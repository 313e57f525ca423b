"""Ranking and ties as pure functions over leaderboard rows (no store, no workspace).

Rows are plain dicts with at least ``kind`` ("submission" | "baseline"), ``macro_f1`` and
``model``. Submissions are ranked best first; a row statistically tied with the row above it
shares that row's rank, and every rank that is shared is labelled ``=N``. Baseline rows are
sorted among the submissions by score but carry no rank.

Example::

    >>> rows = [{"kind": "submission", "model": "a", "macro_f1": 0.7},
    ...         {"kind": "submission", "model": "b", "macro_f1": 0.9}]
    >>> ranked = rank_rows(rows, tied=lambda above, below: False)
    >>> [(r["model"], r["rank_label"]) for r in ranked]
    [('b', '1'), ('a', '2')]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

Row = dict[str, Any]
TiePredicate = Callable[[Mapping[str, Any], Mapping[str, Any]], bool]


def sort_key(row: Mapping[str, Any]) -> tuple[float, bool, str]:
    """Best score first; at equal scores submissions before the baseline, then by name."""
    score = row.get("macro_f1")
    return (
        -(score if score is not None else float("-inf")),
        row["kind"] == "baseline",
        str(row["model"]),
    )


def sort_rows(rows: Iterable[Row]) -> list[Row]:
    return sorted(rows, key=sort_key)


def assign_ranks(ranked: list[Row], tied: TiePredicate) -> None:
    """Set ``rank`` and ``tied_with_above`` on submission rows already sorted best first."""
    for i, row in enumerate(ranked):
        if i > 0 and tied(ranked[i - 1], row):
            row["rank"] = ranked[i - 1]["rank"]
            row["tied_with_above"] = True
        else:
            row["rank"] = i + 1
            row["tied_with_above"] = False


def label_ranks(ranked: list[Row]) -> None:
    """``rank_label``: ``"=N"`` for every row whose rank is shared, else ``"N"``."""
    shared = {r["rank"] for r in ranked if r["tied_with_above"]}
    for row in ranked:
        row["rank_label"] = f"={row['rank']}" if row["rank"] in shared else str(row["rank"])


def rank_rows(rows: Iterable[Row], tied: TiePredicate) -> list[Row]:
    """All rows sorted best first, submissions ranked and labelled (ties via ``tied``)."""
    out = sort_rows(rows)
    ranked = [r for r in out if r["kind"] == "submission"]
    assign_ranks(ranked, tied)
    label_ranks(ranked)
    return out


def ci_overlap_tie(above: Mapping[str, Any], below: Mapping[str, Any]) -> bool:
    """Tie when the lower row's macro-F1 interval reaches the upper row's (conservative)."""
    a_lo = (above.get("macro_f1_ci") or [None, None])[0]
    b_hi = (below.get("macro_f1_ci") or [None, None])[1]
    if a_lo is None or b_hi is None:
        return bool(above["macro_f1"] == below["macro_f1"])
    return bool(b_hi >= a_lo)


def tie_method(methods_used: Iterable[str]) -> str | None:
    """How ties were decided, for the page: one method's name, ``"mixed"``, or None."""
    used = set(methods_used)
    if len(used) == 1:
        return next(iter(used))
    return "mixed" if used else None
