"""Sliding windows: one window is plain truncation; a long text's windows cover every token."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bedside.engine.modeling import encode, load_tokenizer
from bedside.engine.windows import encode_windows, pool_rows, special_template, window_starts

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def tok(bundles: dict[str, Path]):
    return load_tokenizer(bundles["encoder"])


def test_one_window_is_truncation(tok, corpora) -> None:
    texts = corpora[0]["text"].tolist()[:20]
    long = " ".join(texts)  # far longer than 32 tokens
    plain = encode(tok, [long, *texts], 32)
    for cap in (1, 4):
        win = encode_windows(tok, [long, *texts], 32, windows=cap)
        if cap == 1:
            assert win.encoded.ids == plain.ids
        else:  # short texts: still exactly one window each, identical to truncation
            short_rows = win.encoded.ids[int((win.owner == 0).sum()) :]
            assert short_rows == plain.ids[1:]
            assert win.encoded.ids[0] == plain.ids[0]  # the first window starts the text


def test_long_text_windows_cover_every_token(tok, corpora) -> None:
    long = " ".join(corpora[0]["text"].tolist()[:30])
    content = tok(long, add_special_tokens=False)["input_ids"]
    pre, post = special_template(tok)
    for cap, stride in ((16, None), (16, 10), (3, None)):
        win = encode_windows(tok, [long], 40, windows=cap, stride=stride)
        width = 40 - len(pre) - len(post)
        assert 1 < len(win.encoded.ids) <= cap
        covered = np.zeros(len(content), dtype=bool)
        starts = window_starts(len(content), width, stride or width // 2, cap)
        for s, ids in zip(starts, win.encoded.ids, strict=True):
            assert len(ids) <= 40 and ids[: len(pre)] == pre and ids[len(ids) - len(post) :] == post
            assert ids[len(pre) : len(ids) - len(post)] == content[s : s + width]
            covered[s : s + width] = True
        if cap * width >= len(content):
            assert covered.all()
        else:  # too few windows for the text: they still reach both ends
            assert covered[0] and covered[-1]


def test_window_starts_cap_and_stride() -> None:
    assert window_starts(10, 20, 5, 4) == [0]
    assert window_starts(100, 40, 20, 10) == [0, 20, 40, 60]
    capped = window_starts(1000, 40, 20, 3)
    assert capped[0] == 0 and capped[-1] == 960 and len(capped) == 3


def test_pool_rows_mean_and_max() -> None:
    rows = np.array([[1.0, 0.0], [3.0, 2.0], [5.0, 5.0]])
    owner = np.array([0, 0, 1])
    assert np.allclose(pool_rows(rows, owner, 2, "mean"), [[2.0, 1.0], [5.0, 5.0]])
    assert np.allclose(pool_rows(rows, owner, 2, "max"), [[3.0, 2.0], [5.0, 5.0]])
