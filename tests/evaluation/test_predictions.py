"""The predictions-file check: every rule rejects with error_class invalid_output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bedside.errors import JobError
from bedside.evaluation.predictions import load_predictions, write_predictions

CLASSES = ["a", "b", "c"]
IDS = ["r1", "r2", "r3"]


def good() -> dict[str, Any]:
    return {
        "classes": list(CLASSES),
        "row_ids": list(IDS),
        "probs": [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.0, 0.0, 1.0]],
    }


def write(tmp_path: Path, doc: Any) -> Path:
    p = tmp_path / "predictions.json"
    p.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return p


def rejected(path: Path, match: str, **kwargs: Any) -> JobError:
    with pytest.raises(JobError, match=match) as e:
        load_predictions(path, IDS, CLASSES, **kwargs)
    assert e.value.error_class == "invalid_output"
    return e.value


def test_accepts_and_reorders(tmp_path: Path) -> None:
    doc = good()
    doc["row_ids"] = ["r3", "r1", "r2"]
    doc["probs"] = [[0, 0, 1], [0.7, 0.2, 0.1], [0.1, 0.8, 0.1]]
    out = load_predictions(write(tmp_path, doc), IDS, CLASSES)
    assert out.dtype == np.float64
    assert out == pytest.approx(np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.0, 0.0, 1.0]]))


def test_tiny_drift_is_renormalised(tmp_path: Path) -> None:
    doc = good()
    doc["probs"][0] = [0.7004, 0.2, 0.1]
    out = load_predictions(write(tmp_path, doc), IDS, CLASSES)
    assert out.sum(axis=1) == pytest.approx([1, 1, 1], abs=1e-12)


def test_write_then_load_round_trip(tmp_path: Path) -> None:
    probs = np.random.default_rng(0).dirichlet([1, 1, 1], size=3)
    p = write_predictions(tmp_path / "out" / "predictions.json", IDS, CLASSES, probs)
    assert np.allclose(load_predictions(p, IDS, CLASSES), probs)
    assert not list((tmp_path / "out").glob(".predictions-*"))  # no temp file left
    with pytest.raises(ValueError, match="shape"):
        write_predictions(tmp_path / "x.json", IDS, CLASSES, probs[:2])


def test_rejects_oversize_file(tmp_path: Path) -> None:
    rejected(write(tmp_path, good()), "at most 100 bytes", max_bytes=100)


def test_rejects_missing_file(tmp_path: Path) -> None:
    rejected(tmp_path / "nope.json", "no readable file")


def test_rejects_non_json(tmp_path: Path) -> None:
    rejected(write(tmp_path, "{not json"), "not UTF-8 JSON")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00")
    rejected(tmp_path / "bin.json", "not UTF-8 JSON")


def test_rejects_non_object(tmp_path: Path) -> None:
    rejected(write(tmp_path, [1, 2]), "a JSON list")


def test_rejects_extra_key(tmp_path: Path) -> None:
    doc = good()
    doc["labels"] = ["a", "b", "c"]
    rejected(write(tmp_path, doc), "extra key.*labels")


def test_rejects_missing_key(tmp_path: Path) -> None:
    doc = good()
    del doc["classes"]
    rejected(write(tmp_path, doc), "missing key.*classes")


def test_rejects_other_classes(tmp_path: Path) -> None:
    doc = good()
    doc["classes"] = ["a", "b", "z"]
    rejected(write(tmp_path, doc), "workspace classes in order")


def test_rejects_classes_out_of_order(tmp_path: Path) -> None:
    doc = good()
    doc["classes"] = ["b", "a", "c"]
    rejected(write(tmp_path, doc), "workspace classes in order")


def test_rejects_missing_row_id(tmp_path: Path) -> None:
    doc = good()
    doc["row_ids"], doc["probs"] = doc["row_ids"][:2], doc["probs"][:2]
    rejected(write(tmp_path, doc), "1 missing row id.*r3")


def test_rejects_extra_row_id(tmp_path: Path) -> None:
    doc = good()
    doc["row_ids"].append("r99")
    doc["probs"].append([1, 0, 0])
    rejected(write(tmp_path, doc), "unknown row id.*r99")


def test_rejects_duplicate_row_id(tmp_path: Path) -> None:
    doc = good()
    doc["row_ids"] = ["r1", "r1", "r2", "r3"]
    doc["probs"].append([1, 0, 0])
    rejected(write(tmp_path, doc), "duplicate row id.*r1")


def test_rejects_non_string_row_ids(tmp_path: Path) -> None:
    doc = good()
    doc["row_ids"] = [1, 2, 3]
    rejected(write(tmp_path, doc), "list of strings")


def test_rejects_wrong_row_count(tmp_path: Path) -> None:
    doc = good()
    doc["probs"] = doc["probs"][:2]
    rejected(write(tmp_path, doc), "probs with 2 rows")


def test_rejects_wrong_row_length(tmp_path: Path) -> None:
    doc = good()
    doc["probs"][1] = [0.5, 0.5]
    rejected(write(tmp_path, doc), "row 1 with 2 values")


@pytest.mark.parametrize("value", ["0.5", True, None, [0.5]])
def test_rejects_non_numbers(tmp_path: Path, value: Any) -> None:
    doc = good()
    doc["probs"][2] = [value, 0.5, 0.0]
    rejected(write(tmp_path, doc), "non-number in row 2")


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_rejects_non_finite(tmp_path: Path, token: str) -> None:
    text = json.dumps(good()).replace("0.7", token, 1)
    rejected(write(tmp_path, text), "non-finite")


def test_rejects_huge_integer(tmp_path: Path) -> None:
    text = json.dumps(good()).replace("0.7", "1" + "0" * 400, 1)
    rejected(write(tmp_path, text), "out of range")


def test_rejects_negative(tmp_path: Path) -> None:
    doc = good()
    doc["probs"][0] = [1.2, -0.2, 0.0]
    rejected(write(tmp_path, doc), "negative probabilities in row 0")


def test_rejects_rows_not_summing_to_one(tmp_path: Path) -> None:
    doc = good()
    doc["probs"][1] = [0.5, 0.5, 0.5]
    err = rejected(write(tmp_path, doc), "row 1 summing to 1.5")
    assert "within 0.001" in err.message
    assert err.hint and "write_predictions" in err.hint
