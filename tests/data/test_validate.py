"""One test per bad input: the DataError names the file, the row and the fix."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bedside.data.ingest import add_corpus
from bedside.data.validate import detect_columns, read_table
from bedside.errors import ConfigError, DataError
from bedside.workspace import Workspace


def _csv(tmp_path: Path, text: str, name: str = "bad.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_missing_file(ws: Workspace, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        add_corpus(ws, tmp_path / "nope.csv")


def test_unsupported_type(ws: Workspace, tmp_path: Path) -> None:
    p = _csv(tmp_path, "x", name="corpus.xlsx")
    with pytest.raises(DataError, match=r"unsupported file type '\.xlsx'.*\.csv"):
        add_corpus(ws, p)


def test_latin1_bytes_say_reencode(ws: Workspace, tmp_path: Path) -> None:
    p = tmp_path / "latin.csv"
    p.write_bytes("text,label\nabc def,a\nnaïve café text,b\n".encode("latin-1"))
    with pytest.raises(DataError) as e:
        add_corpus(ws, p)
    assert "not UTF-8" in e.value.message and "line 3" in e.value.message
    assert "latin-1" in e.value.message and "UTF-8" in str(e.value.hint)


def test_malformed_csv_names_line(ws: Workspace, tmp_path: Path) -> None:
    p = _csv(tmp_path, "text,label\nfirst text,a\nsecond, unquoted text,b\n")
    with pytest.raises(DataError, match=r"malformed at line 3: expected 2 fields.*found 3"):
        add_corpus(ws, p)


def test_unclosed_quote_names_line(ws: Workspace, tmp_path: Path) -> None:
    p = _csv(tmp_path, 'text,label\nfirst text,a\n"never closed,b\n')
    with pytest.raises(DataError, match="opened on line 3 is never closed"):
        add_corpus(ws, p)


def test_empty_file(ws: Workspace, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is empty"):
        add_corpus(ws, _csv(tmp_path, ""))


def test_header_only(ws: Workspace, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no data rows"):
        add_corpus(ws, _csv(tmp_path, "text,label\n"))


def test_bad_jsonl_line(ws: Workspace, tmp_path: Path) -> None:
    p = _csv(tmp_path, '{"text": "a b", "label": "x"}\n{"text": "oops"\n', name="bad.jsonl")
    with pytest.raises(DataError, match="malformed at line 2: not valid JSON"):
        add_corpus(ws, p)


def test_given_column_missing_lists_columns(ws: Workspace, small_csv: Path) -> None:
    with pytest.raises(DataError) as e:
        add_corpus(ws, small_csv, text_col="abstract")
    assert "'abstract' not found" in e.value.message and "text, label" in e.value.message
    assert "--text-col" in str(e.value.hint)


def test_ambiguous_label_columns(tmp_path: Path, make_frame) -> None:
    df = make_frame({"a": 3})
    df["category"] = df["label"]
    df.to_csv(tmp_path / "two.csv", index=False)
    with pytest.raises(DataError) as e:
        detect_columns(read_table(tmp_path / "two.csv"))
    assert "label, category" in e.value.message and "--label-col" in str(e.value.hint)


def test_ambiguous_text_columns(tmp_path: Path, make_frame) -> None:
    df = make_frame({"a": 3})
    df["summary"] = df["text"]
    df.to_csv(tmp_path / "two.csv", index=False)
    with pytest.raises(DataError, match="cannot tell which column") as e:
        detect_columns(read_table(tmp_path / "two.csv"))
    assert "--text-col" in str(e.value.hint)


def test_no_label_column(tmp_path: Path) -> None:
    df = pd.DataFrame({"text": ["a b c", "d e f"], "x": ["1", "2"], "y": ["3", "4"]})
    df.to_csv(tmp_path / "nolabel.csv", index=False)
    with pytest.raises(DataError, match="no label column found.*columns are: text, x, y"):
        detect_columns(read_table(tmp_path / "nolabel.csv"))


def test_detects_medical_abstract_and_condition_label(tmp_path: Path) -> None:
    df = pd.DataFrame(
        {"condition_label": ["1", "2"], "medical_abstract": ["a long text here", "another text"]}
    )
    df.to_csv(tmp_path / "ok.csv", index=False)
    assert detect_columns(read_table(tmp_path / "ok.csv")) == (
        "medical_abstract",
        "condition_label",
    )


def test_empty_and_whitespace_texts_name_rows(ws: Workspace, tmp_path: Path) -> None:
    p = _csv(tmp_path, 'text,label\nfine text,a\n"   ",a\nok text,b\n,b\n')
    with pytest.raises(DataError) as e:
        add_corpus(ws, p)
    assert "2 empty or whitespace-only" in e.value.message
    assert "row 3, row 5" in e.value.message and "header is row 1" in e.value.message


def test_numeric_text_column(ws: Workspace, tmp_path: Path) -> None:
    p = _csv(tmp_path, "score,label,note\n1.5,a,x\n2,b,y\n3,a,z\n")
    with pytest.raises(DataError, match="holds numbers, not text"):
        add_corpus(ws, p, text_col="score", label_col="label")


def test_unknown_labels_named(ws: Workspace, tmp_path: Path) -> None:
    names = _csv(tmp_path, "condition_label,condition_name\n1,alpha\n2,beta\n", name="labels.csv")
    p = _csv(tmp_path, "text,label\none text,1\ntwo text,2\nthree text,7\n")
    with pytest.raises(DataError) as e:
        add_corpus(ws, p, labels=names)
    assert "not in labels.csv" in e.value.message and "'7'" in e.value.message
    assert "row 4" in e.value.message and "Known classes are: 1=alpha, 2=beta" in e.value.message


def test_numeric_labels_need_names_file(ws: Workspace, tmp_path: Path) -> None:
    p = _csv(tmp_path, "text,label\none text,1\ntwo text,2\n")
    with pytest.raises(DataError, match="numeric ids") as e:
        add_corpus(ws, p)
    assert "--labels" in str(e.value.hint)


def test_class_too_small_to_split(ws: Workspace, tmp_path: Path) -> None:
    p = _csv(tmp_path, "text,label\none text,a\ntwo text,a\nthree text,b\nThree text!,b\n")
    with pytest.raises(DataError, match=r"class 'b' has 2 row\(s\) and 1 distinct text"):
        add_corpus(ws, p)


def test_holdout_with_unseen_class(ws: Workspace, tmp_path: Path) -> None:
    train = _csv(tmp_path, "text,label\none text,a\ntwo text,b\n", name="train.csv")
    hold = _csv(tmp_path, "text,label\nthree text,a\nfour text,c\n", name="hold.csv")
    with pytest.raises(DataError, match="holdout hold.csv has class.*'c'"):
        add_corpus(ws, train, holdout=hold)


def test_missing_label_names_rows(ws: Workspace, tmp_path: Path) -> None:
    p = _csv(tmp_path, "text,label\none text,a\ntwo text,\n")
    with pytest.raises(DataError, match="have no label.*row 3"):
        add_corpus(ws, p)


def test_descriptions_with_unknown_class(ws: Workspace, small_csv: Path, tmp_path: Path) -> None:
    d = _csv(tmp_path, "name,description\na,first\nz,unknown\n", name="desc.csv")
    with pytest.raises(DataError, match="class 'z' is not one of"):
        add_corpus(ws, small_csv, descriptions=d)


def test_append_with_holdout_refused(ws: Workspace, small_csv: Path) -> None:
    with pytest.raises(ConfigError, match="--append takes one file"):
        add_corpus(ws, small_csv, holdout=small_csv, append=True)
