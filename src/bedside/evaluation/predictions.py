"""What may leave a job: the predictions file, and the strict check the trusted scorer applies.

``out/predictions.json`` is exactly::

    {"classes": [names in workspace order], "row_ids": [...], "probs": [[p per class], ...]}

Everything else is rejected with ``JobError(error_class="invalid_output")``: a file over the size
limit, not JSON, missing or extra keys, other classes or another order, missing, extra or duplicate
row ids, a row of the wrong length, non-numbers, non-finite or negative probabilities, or rows not
summing to 1 within ``SUM_TOLERANCE`` (smaller drift is renormalised away).

The sandboxed engine imports this module to write its output, so it depends on numpy only.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bedside.errors import JobError

KEYS = ("classes", "row_ids", "probs")
SUM_TOLERANCE = 1e-3
MAX_BYTES = 50_000_000


def _reject(found: str, expected: str) -> JobError:
    return JobError(
        f"invalid predictions: expected {expected}; found {found}.",
        error_class="invalid_output",
        hint="Write out/predictions.json with bedside.evaluation.predictions.write_predictions.",
    )


def _few(items: Sequence[str] | set[str], k: int = 3) -> str:
    shown = sorted(items)[:k]
    more = len(items) - len(shown)
    return ", ".join(repr(x) for x in shown) + (f" and {more} more" if more > 0 else "")


def _read_json(path: Path | bytes, max_bytes: int) -> object:
    if isinstance(path, bytes):  # already read by the host's job-output reader
        raw = path
        if len(raw) > max_bytes:
            raise _reject(f"{len(raw):,} bytes", f"at most {max_bytes:,} bytes")
        return _parse(raw)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise _reject(
            f"no readable file at {path.name} ({e.strerror})", "a predictions file"
        ) from e
    if size > max_bytes:
        raise _reject(f"{size:,} bytes", f"at most {max_bytes:,} bytes")
    with path.open("rb") as f:
        raw = f.read(max_bytes + 1)  # the file may grow after stat(): never read past the limit
    if len(raw) > max_bytes:
        raise _reject(f"more than {max_bytes:,} bytes", f"at most {max_bytes:,} bytes")
    return _parse(raw)


def _parse(raw: bytes) -> object:
    try:
        return json.loads(raw.decode("utf-8"))
    except ValueError as e:  # not UTF-8, not JSON, or an integer with too many digits
        raise _reject(f"text that is not UTF-8 JSON ({e})", "a JSON object") from e
    except RecursionError as e:
        raise _reject("JSON nested too deeply", "a JSON object") from e


def load_predictions(
    path: Path | str | bytes,
    expected_row_ids: Sequence[str],
    classes: Sequence[str],
    max_bytes: int = MAX_BYTES,
) -> NDArray[np.float64]:
    """Check a predictions file (a path, or its bytes as ``jobs.outputs`` read them) and return
    its probabilities in ``expected_row_ids`` order.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "predictions.json"
    >>> _ = p.write_text('{"classes": ["a", "b"], "row_ids": ["r2", "r1"], "probs": [[0.2, 0.8], [1, 0]]}')
    >>> load_predictions(p, ["r1", "r2"], ["a", "b"]).tolist()
    [[1.0, 0.0], [0.2, 0.8]]
    """
    doc = _read_json(path if isinstance(path, bytes) else Path(path), max_bytes)
    if not isinstance(doc, dict):
        raise _reject(
            f"a JSON {type(doc).__name__}", "a JSON object with keys classes, row_ids, probs"
        )
    if set(doc) != set(KEYS):
        extra, missing = sorted(set(doc) - set(KEYS)), sorted(set(KEYS) - set(doc))
        parts = ([f"extra key(s) {_few(extra)}"] if extra else []) + (
            [f"missing key(s) {_few(missing)}"] if missing else []
        )
        raise _reject(", ".join(parts), "exactly the keys classes, row_ids, probs")

    want_classes = list(classes)
    if doc["classes"] != want_classes:
        raise _reject(
            f"classes {doc['classes']!r}"[:300], f"the workspace classes in order {want_classes!r}"
        )

    row_ids = doc["row_ids"]
    if not isinstance(row_ids, list) or not all(isinstance(r, str) for r in row_ids):
        raise _reject("row_ids that are not a list of strings", "a list of row id strings")
    seen: set[str] = set()
    dupes: set[str] = set()
    for r in row_ids:
        (dupes if r in seen else seen).add(r)
    if dupes:
        raise _reject(f"duplicate row id(s) {_few(dupes)}", "each holdout row id once")
    expected = set(expected_row_ids)
    missing_ids, extra_ids = expected - seen, seen - expected
    if missing_ids:
        raise _reject(
            f"{len(missing_ids)} missing row id(s) ({_few(missing_ids)})",
            "one row per holdout row id",
        )
    if extra_ids:
        raise _reject(
            f"{len(extra_ids)} unknown row id(s) ({_few(extra_ids)})", "only holdout row ids"
        )

    probs = doc["probs"]
    k = len(want_classes)
    if not isinstance(probs, list) or len(probs) != len(row_ids):
        n = len(probs) if isinstance(probs, list) else type(probs).__name__
        raise _reject(f"probs with {n} rows", f"a list of {len(row_ids)} rows, one per row id")
    for i, row in enumerate(probs):
        if not isinstance(row, list) or len(row) != k:
            got = f"{len(row)} values" if isinstance(row, list) else type(row).__name__
            raise _reject(f"row {i} with {got}", f"{k} probabilities per row (one per class)")
        # type() rather than isinstance(): JSON true/false would pass as int.
        if not all(type(v) is float or type(v) is int for v in row):
            raise _reject(f"a non-number in row {i}", "numbers only")
    try:
        arr = np.asarray(probs, dtype=np.float64).reshape(len(row_ids), k)
    except OverflowError as e:  # an integer too large for a float
        raise _reject("a number out of range", "probabilities in [0, 1]") from e
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise _reject(
            f"non-finite probabilities (NaN or infinity) in row {int(np.argmax(bad))}",
            "finite probabilities",
        )
    neg = (arr < 0).any(axis=1)
    if neg.any():
        raise _reject(f"negative probabilities in row {int(np.argmax(neg))}", "probabilities >= 0")
    sums = arr.sum(axis=1)
    off = np.abs(sums - 1.0) > SUM_TOLERANCE
    if off.any():
        i = int(np.argmax(off))
        raise _reject(
            f"row {i} summing to {sums[i]:.6g}", f"rows summing to 1 (within {SUM_TOLERANCE})"
        )
    arr = arr / sums[:, None]  # remove tiny drift (float32 softmax, rounding)
    position = {r: i for i, r in enumerate(row_ids)}
    order = np.fromiter(
        (position[r] for r in expected_row_ids), dtype=np.int64, count=len(expected_row_ids)
    )
    return arr[order]


def write_predictions(
    path: Path | str, row_ids: Sequence[str], classes: Sequence[str], probs: ArrayLike
) -> Path:
    """Write a predictions file in the checked format (atomically: temp file, then rename).

    >>> import tempfile, pathlib
    >>> p = write_predictions(pathlib.Path(tempfile.mkdtemp()) / "p.json", ["r1"], ["a", "b"], [[0.3, 0.7]])
    >>> p.name
    'p.json'
    """
    arr = np.asarray(probs, dtype=np.float64)
    ids = [str(r) for r in row_ids]
    if arr.shape != (len(ids), len(classes)):
        raise ValueError(
            f"probs must have shape ({len(ids)}, {len(classes)}) for the row ids and classes, got {arr.shape}."
        )
    doc = {"classes": list(classes), "row_ids": ids, "probs": arr.tolist()}
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".predictions-", dir=dest.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, separators=(",", ":"), allow_nan=False)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest
