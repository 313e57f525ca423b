"""Length-bin robustness and expected calibration error."""

from __future__ import annotations

import numpy as np
import pytest

from bedside.evaluation.calibration import expected_calibration_error
from bedside.evaluation.robustness import (
    length_bins,
    robustness,
    tercile_edges,
    word_count,
    word_counts,
)


def test_bins_are_right_closed() -> None:
    assert length_bins([0, 100, 101, 200, 201, 999], [100, 200]).tolist() == [0, 0, 1, 1, 2, 2]


def test_robustness_known_answer() -> None:
    # short: all right (macro-F1 1); medium: 1 of 2 classes wrong; long: empty
    y_true = [0, 1, 0, 1, 0, 1]
    y_pred = [0, 1, 0, 1, 0, 0]
    lengths = [10, 10, 10, 150, 150, 150]
    r = robustness(y_true, y_pred, 2, lengths, [100, 200])
    assert r["edges"] == [100.0, 200.0]
    assert [(b["name"], b["n"]) for b in r["bins"]] == [("short", 3), ("medium", 3), ("long", 0)]
    assert r["bins"][0]["macro_f1"] == 1.0
    # medium: true [1, 0, 1], pred [1, 0, 0] -> F1 class0 = 2/3, class1 = 2/3
    assert r["bins"][1]["macro_f1"] == pytest.approx(2 / 3)
    assert r["bins"][2]["macro_f1"] is None
    assert r["worst_gap"] == pytest.approx(1 / 3)


def test_worst_gap_needs_two_bins() -> None:
    r = robustness([0, 1], [0, 1], 2, [5, 6], [100, 200])
    assert r["worst_gap"] is None


def test_edges_are_checked() -> None:
    with pytest.raises(ValueError, match="two non-decreasing"):
        robustness([0], [0], 1, [5], [200, 100])
    with pytest.raises(ValueError, match="two non-decreasing"):
        length_bins([5], [1, 2, 3])


def test_word_counts_and_terciles() -> None:
    assert word_count("  a\tb\nc  ") == 3
    assert word_counts(["a b", "", "x"]).tolist() == [2, 0, 1]
    lo, hi = tercile_edges(np.arange(1, 301))
    assert (np.arange(1, 301) <= lo).sum() == 100
    assert (np.arange(1, 301) > hi).sum() == 100


def test_ece_known_answer() -> None:
    probs = [[0.95, 0.05], [0.95, 0.05], [0.55, 0.45], [0.45, 0.55]]
    y = [0, 1, 0, 1]
    # bin (14/15, 1]: 2 rows, accuracy 0.5, confidence 0.95 -> |0.5 - 0.95| = 0.45
    # bin (8/15, 9/15]: 2 rows, accuracy 1.0, confidence 0.55 -> |1 - 0.55| = 0.45
    assert expected_calibration_error(probs, y) == pytest.approx(0.45)


def test_ece_perfect_and_calibrated() -> None:
    assert expected_calibration_error([[1.0, 0.0], [0.0, 1.0]], [0, 1]) == 0.0
    # confidence 0.5, half of them right
    assert expected_calibration_error([[0.5, 0.5]] * 4, [0, 1, 0, 1]) == pytest.approx(0.0)
    # confidence 0 bin edge case: uniform over many classes lands in the first bin
    assert expected_calibration_error([[0.25] * 4], [0]) == pytest.approx(0.75)


def test_ece_bad_input() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        expected_calibration_error(np.zeros((0, 2)), [])
