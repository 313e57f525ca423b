"""Known-answer and property tests of the classification metrics."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score

from bedside.evaluation.metrics import (
    accuracy,
    classification_metrics,
    confusion_matrix,
    macro_f1,
    macro_f1_from_confusion,
    per_class_from_confusion,
)

# Hand-computed example: 3 classes, 10 rows.
Y_TRUE = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
Y_PRED = [0, 0, 1, 2, 1, 1, 0, 2, 2, 1]
# rows = true class, columns = predicted class
CM = [
    [2, 1, 1],  # class 0: 4 rows, 2 right, one each predicted as 1 and 2
    [1, 2, 0],  # class 1: 3 rows, 2 right, one predicted as 0
    [0, 1, 2],  # class 2: 3 rows, 2 right, one predicted as 1
]
# predicted counts (column sums) 3, 4, 3; support (row sums) 4, 3, 3
PRECISION = [2 / 3, 2 / 4, 2 / 3]
RECALL = [2 / 4, 2 / 3, 2 / 3]
F1 = [4 / 7, 4 / 7, 4 / 6]  # 2TP / (support + predicted)
MACRO_F1 = 38 / 63  # (4/7 + 4/7 + 2/3) / 3


def test_known_confusion_matrix_and_scores() -> None:
    assert confusion_matrix(Y_TRUE, Y_PRED, 3).tolist() == CM
    m = classification_metrics(Y_TRUE, Y_PRED, 3)
    assert m["confusion"] == CM
    assert m["precision"] == pytest.approx(PRECISION)
    assert m["recall"] == pytest.approx(RECALL)
    assert m["f1"] == pytest.approx(F1)
    assert m["support"] == [4, 3, 3]
    assert m["macro_f1"] == pytest.approx(MACRO_F1)
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["n"] == 10


def test_undefined_scores_are_zero() -> None:
    # Class 2 has support 1 and is never predicted: precision 0 (0/0), recall 0, F1 0.
    pc = per_class_from_confusion(confusion_matrix([0, 1, 2], [0, 1, 1], 3))
    assert pc["precision"].tolist() == [1.0, 0.5, 0.0]
    assert pc["recall"].tolist() == [1.0, 1.0, 0.0]
    assert pc["f1"].tolist() == pytest.approx([1.0, 2 / 3, 0.0])


def test_absent_class_is_left_out_of_macro_f1() -> None:
    # Class 2 has no rows and no predictions: the mean runs over classes 0 and 1 only.
    assert macro_f1([0, 0, 1], [0, 0, 1], 3) == 1.0
    assert macro_f1([0, 0, 1, 1], [0, 1, 1, 1], 3) == pytest.approx((2 / 3 + 0.8) / 2)
    # ...but a class that is predicted and never true counts (with F1 0).
    assert macro_f1([0, 0], [0, 2], 3) == pytest.approx((2 / 3 + 0.0) / 2)


def test_batched_confusions() -> None:
    batch = np.stack([np.array(CM), np.eye(3, dtype=int) * 5])
    assert macro_f1_from_confusion(batch).tolist() == pytest.approx([MACRO_F1, 1.0])


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        macro_f1([0, 1], [0], 2)
    with pytest.raises(ValueError, match="0..1"):
        macro_f1([0, 2], [0, 1], 2)
    with pytest.raises(ValueError, match="integer"):
        macro_f1([0.0, 1.0], [0, 1], 2)


labels = st.integers(min_value=1, max_value=6).flatmap(
    lambda k: st.tuples(
        st.just(k),
        st.lists(st.tuples(st.integers(0, k - 1), st.integers(0, k - 1)), min_size=1, max_size=80),
    )
)


@settings(max_examples=100, deadline=None)
@given(labels, st.randoms(use_true_random=False))
def test_macro_f1_properties(data: tuple[int, list[tuple[int, int]]], rnd) -> None:  # type: ignore[no-untyped-def]
    k, pairs = data
    t = [a for a, _ in pairs]
    p = [b for _, b in pairs]
    score = macro_f1(t, p, k)
    assert 0.0 <= score <= 1.0
    # matches scikit-learn's macro F1 (labels = classes present in either array, zero_division=0)
    assert score == pytest.approx(f1_score(t, p, average="macro", zero_division=0))
    # invariant to row order
    shuffled = list(pairs)
    rnd.shuffle(shuffled)
    assert macro_f1([a for a, _ in shuffled], [b for _, b in shuffled], k) == pytest.approx(score)
    # perfect predictions score 1
    assert macro_f1(t, t, k) == 1.0
    assert accuracy(t, t, k) == 1.0
