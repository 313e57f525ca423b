"""The decision rule: known-answer offsets, argmax fallbacks, save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bedside.engine import decision
from bedside.engine.dataprep import macro_f1
from bedside.errors import JobError

CLASSES = ["a", "b", "c"]


def _constructed(n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Class 1's rows score 1.0 below class 0 on class 1 (a model that under-calls class 1);
    classes 0 and 2 are clean. Adding an offset in (1.0, 2.0) to class 1 fixes every row; an
    offset of 2.0 or more steals class 0's rows (they lead class 1 by exactly 2.0)."""
    y = np.repeat([0, 1, 2], n // 3)
    s = np.zeros((n, 3))
    s[y == 0] = [2.0, 0.0, -5.0]
    s[y == 1] = [1.0, 0.0, -5.0]
    s[y == 2] = [-5.0, -5.0, 1.0]
    return s, y


def test_fit_offsets_known_answer() -> None:
    s, y = _constructed()
    assert macro_f1(y, s.argmax(1), 3) < 0.7  # argmax calls every class-1 row class 0
    offsets, f1 = decision.fit_offsets(s, y, 3)
    assert f1 == pytest.approx(1.0)
    shift = offsets[1] - offsets[0]  # only differences matter
    assert 1.0 < shift < 2.0
    assert abs(offsets[2]) <= 1e-9 or (s[y == 2] + offsets).argmax(1).tolist() == [2] * 20


def test_fit_keeps_argmax_when_it_is_already_best() -> None:
    y = np.repeat([0, 1, 2], 20)
    s = np.eye(3)[y] * 3.0
    rule = decision.fit(s, y, CLASSES)
    assert rule.rule == "argmax" and rule.offsets == [0.0, 0.0, 0.0]
    assert rule.macro_f1_raw == rule.macro_f1_adjusted == pytest.approx(1.0)


def test_fit_refuses_a_tiny_validation_slice_and_honours_argmax() -> None:
    s, y = _constructed()
    assert decision.fit(s[:9], y[:9], CLASSES).rule == "argmax"  # under MIN_VALIDATION rows
    assert decision.fit(s, y, CLASSES, "argmax").rule == "argmax"
    fitted = decision.fit(s, y, CLASSES)
    assert fitted.rule == "fitted-offsets"
    assert fitted.macro_f1_adjusted == pytest.approx(1.0) and fitted.macro_f1_raw < 0.7


def test_apply_moves_the_argmax_and_keeps_probabilities(tmp_path: Path) -> None:
    s, y = _constructed()
    rule = decision.fit(s, y, CLASSES)
    p = rule.apply(s)
    assert np.allclose(p.sum(1), 1.0) and (p.argmax(1) == y).all()
    rule.windows = {"max_length": 128, "windows": 2, "stride": None, "pooling": "mean"}
    rule.save(tmp_path)
    again = decision.DecisionRule.load(tmp_path)
    assert again.rule == rule.rule and again.windows == rule.windows
    assert np.allclose(again.apply(s), p, atol=1e-4)


def test_load_rejects_a_malformed_rule(tmp_path: Path) -> None:
    (tmp_path / "decision.json").write_text(
        '{"rule": "argmax", "offsets": [0], "classes": ["a", "b"]}'
    )
    with pytest.raises(JobError, match="one offset per class"):
        decision.DecisionRule.load(tmp_path)
