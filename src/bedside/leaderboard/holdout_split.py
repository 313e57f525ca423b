"""The public/private split of the holdout: what contributors see while the competition runs.

With the owner policy ``holdout_public_fraction = f`` (0 turns it off), each holdout row is
public or private by a keyed hash of its row id: ``sha256(salt | row_id) < f``. The salt is a
workspace secret (setting ``holdout_split_salt``, made once), so a contributor cannot tell
which rows are public, and a row keeps its side on every later version (an appended version
only adds rows). While the evaluation window is open (and the board is not frozen) contributors
see macro-F1 on the public rows only; after the close the ranking is made on the private rows,
which no released figure has touched. The owner always sees both.

Scores are computed here, outside the sandbox, from the owner-only stored predictions and the
holdout labels, like every other score.

Example::

    mask = public_mask(["r1", "r2", "r3"], 0.3, salt="ab12")
    part = part_scores(y, probs, mask, n_classes=5)   # {"public": {...}, "private": {...}}
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sqlalchemy import select

from bedside.leaderboard.ties import BoundedCache
from bedside.store import schema

if TYPE_CHECKING:
    from bedside.data.corpus import Corpus
    from bedside.workspace import Workspace

SALT_KEY = "holdout_split_salt"
PARTS = ("public", "private")
_CACHE = BoundedCache(maxsize=4096)


def public_mask(row_ids: Sequence[str], fraction: float, salt: str) -> NDArray[np.bool_]:
    """True for the public rows: a keyed hash of each row id below ``fraction`` (pure).

    >>> m = public_mask([f"r{i}" for i in range(1000)], 0.3, "s")
    >>> 250 < int(m.sum()) < 350
    True
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}.")
    cut = int(fraction * 2**64)
    out = np.empty(len(row_ids), dtype=bool)
    for i, r in enumerate(row_ids):
        h = hashlib.sha256(f"{salt}|{r}".encode()).digest()
        out[i] = int.from_bytes(h[:8], "big") < cut
    return out


def part_scores(
    y_true: ArrayLike,
    probs: ArrayLike,
    mask: NDArray[np.bool_],
    n_classes: int,
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Macro-F1 with its bootstrap CI on the public rows (``mask``) and on the private rest."""
    from bedside.evaluation.bootstrap import bootstrap_ci
    from bedside.evaluation.metrics import macro_f1

    y = np.asarray(y_true, dtype=np.int64)
    pred = np.asarray(probs, dtype=np.float64).argmax(axis=1)
    out: dict[str, dict[str, Any]] = {}
    for name, rows in (("public", mask), ("private", ~mask)):
        n = int(rows.sum())
        if n == 0:
            out[name] = {"n": 0, "macro_f1": None, "macro_f1_ci": None}
            continue
        ci = bootstrap_ci(y[rows], pred[rows], n_classes, resamples=resamples, seed=seed)
        out[name] = {
            "n": n,
            "macro_f1": float(macro_f1(y[rows], pred[rows], n_classes)),
            "macro_f1_ci": ci["macro_f1"],
        }
    return out


def split_salt(ws: Workspace) -> str:
    """The workspace's secret salt for the split, made on first use."""
    salt = ws.store.get_setting(SALT_KEY)
    if isinstance(salt, str) and salt:
        return salt
    salt = secrets.token_hex(16)
    with ws.store.write() as conn:
        t = schema.settings
        current = conn.execute(select(t.c.value).where(t.c.key == SALT_KEY)).scalar()
        if isinstance(current, str) and current:
            return current  # another process made it first
        ws.store.set_setting(SALT_KEY, salt, conn)
    return salt


def result_parts(
    ws: Workspace, corpus: Corpus, result_id: int, fraction: float, resamples: int = 1000
) -> dict[str, dict[str, Any]] | None:
    """Public and private scores of one stored result on ``corpus`` (None: no predictions)."""
    from bedside.evaluation.results import load_result_predictions
    from bedside.evaluation.scorer import label_indices

    salt = split_salt(ws)
    key = (str(ws.root), int(result_id), corpus.version_id, fraction, resamples, salt)
    cached = _CACHE.get(key)
    if cached is not None:
        return dict(cached)
    ids = [str(r) for r in corpus.holdout["row_id"]]
    try:
        _, probs = load_result_predictions(ws, result_id, ids)
    except Exception:  # no stored predictions (a restored store): nothing to split
        return None
    y = label_indices(list(corpus.holdout["label"]), corpus.class_names)
    parts = part_scores(
        y, probs, public_mask(ids, fraction, salt), len(corpus.class_names), resamples
    )
    _CACHE.put(key, parts)
    return parts
