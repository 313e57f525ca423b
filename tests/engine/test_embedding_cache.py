"""The head-only embedding cache keeps each text's own embedding, duplicates included."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bedside.engine.headonly import EmbeddingCache, text_hash


def test_duplicate_texts_in_one_chunk_keep_rows_aligned(tmp_path: Path) -> None:
    texts = ["a", "b", "a", "c", "b", "d"]  # the real corpus has identical abstracts
    x = np.array([[float(ord(t))] for t in texts])
    cost = np.ones((len(texts), 2))
    cache = EmbeddingCache(tmp_path, {"k": 1})
    cache.add([text_hash(t) for t in texts], x, cost)
    cache.add(
        [text_hash(t) for t in ["e", "a", "e"]], np.array([[101.0], [0.0], [101.0]]), cost[:3]
    )
    got, _ = cache.get([text_hash(t) for t in "abcde"])
    assert got[:, 0].tolist() == [97.0, 98.0, 99.0, 100.0, 101.0]
    cache.store()
    again, _ = EmbeddingCache(tmp_path, {"k": 1}).get([text_hash(t) for t in "edcba"])
    assert again[:, 0].tolist() == [101.0, 100.0, 99.0, 98.0, 97.0]
