"""Shadow-mode counts and realised recall on hand-made cases."""

from __future__ import annotations

import numpy as np

from bedside.screening.shadow import compare, realised_recall

CLASSES = ["neo", "dig", "nerv"]


def test_shadow_counts_by_hand() -> None:
    ids = ["a", "b", "c", "d", "e", "f"]
    new = [0, 1, 1, 2, 2, 0]
    cur = [0, 0, 1, 2, 0, 0]
    flags = np.zeros((6, 3), dtype=bool)
    flags[[1, 2, 4], 1] = True  # dig flagged on b, c and e (e: predicted nerv, flagged dig)
    flags[[3, 4], 2] = True
    rep = compare(ids, new, flags, cur, CLASSES, ["dig", "nerv"], "column old")
    assert (rep.n, rep.agree) == (6, 4) and rep.agreement == 4 / 6
    assert rep.per_class["neo"] == {"new": 2, "current": 4, "new_only": 0, "current_only": 2}
    assert rep.per_class["dig"] == {"new": 2, "current": 1, "new_only": 1, "current_only": 0}
    assert rep.per_class["nerv"] == {"new": 2, "current": 1, "new_only": 1, "current_only": 0}
    # flagged dig where the current classifier said something else: b (neo) and e (neo)
    assert rep.missed_by_current == {"dig": 2, "nerv": 1}
    assert rep.missed_ids == {"dig": ["b", "e"], "nerv": ["e"]}
    assert "missed_ids" not in rep.counts()


def test_chunks_add_up() -> None:
    flags = np.array([[False, True, False]] * 4)
    one = compare(["a", "b", "c", "d"], [1, 1, 1, 1], flags, [0, 1, 0, 1], CLASSES, ["dig"], "x")
    rep = compare(["a", "b"], [1, 1], flags[:2], [0, 1], CLASSES, ["dig"], "x")
    rep = compare(["c", "d"], [1, 1], flags[2:], [0, 1], CLASSES, ["dig"], "x", rep)
    assert rep.counts() == one.counts() and rep.missed_ids == one.missed_ids


def test_realised_recall_against_the_promise() -> None:
    flags = np.array([[0, 1, 0], [0, 0, 0], [0, 1, 0], [0, 1, 0]], dtype=bool)
    labels = [1, 1, 1, 0]
    (r,) = realised_recall(flags, labels, CLASSES, {"dig": {"expected_recall": 0.9, "target": 0.9}})
    assert (r.positives, r.flagged_positives, r.flagged) == (3, 2, 3)
    assert r.realised == 2 / 3 and r.precision == 2 / 3 and r.promised == 0.9
