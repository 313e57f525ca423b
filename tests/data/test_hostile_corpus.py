"""Hostile corpus files: every format and column type ends in a DataError or a stored corpus.

The property tests feed generated hostile values (deep JSON, thousands-digit numbers, markup,
control characters, odd encodings, every Parquet column type) through the real ``add_corpus``
and accept only two outcomes: success, or a ``BedsideError``. Anything else (a traceback) fails.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bedside.data import validate
from bedside.data.ingest import add_corpus
from bedside.errors import BedsideError, DataError
from bedside.workspace import Workspace

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
NASTY = [
    "[/x]",
    "[link=https://evil.example]click[/link]",
    "\x1b[2J\x1b[Hbundle OK",
    "\x1b]8;;https://evil.example\x07x\x1b]8;;\x07",
    "line\nforged",
    "nan",
    "inf",
    "-0",
    "1e999",
    "0x10",
    "007",
    "7.0",
    '"',
    "\r",
    "\ufeff",
    "\x00",
    "$\\frac{a}{b}$",
]
cells = st.one_of(
    st.text(max_size=20),
    st.sampled_from(NASTY),
    st.integers(1, 6000).map(lambda n: "9" * n),  # thousands-digit integers
    st.floats().map(repr),
)
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "cp1252"]


@pytest.fixture(scope="module")
def fws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    workspace, _ = Workspace.init(tmp_path_factory.mktemp("fuzz") / "ws")
    return workspace


def _good_rows() -> list[list[str]]:
    return [[f"abstract number {i} about topic {i % 2}", "ab"[i % 2]] for i in range(8)]


def _outcome(ws: Workspace, path: Path, **kw: Any) -> None:
    """Success or a BedsideError; any other exception fails the test."""
    with contextlib.suppress(BedsideError):
        add_corpus(ws, path, **kw)


@FUZZ
@given(
    header=st.lists(cells, min_size=1, max_size=4),
    bad=st.lists(st.lists(cells, min_size=0, max_size=5), max_size=4),
    sep=st.sampled_from([",", "\t"]),
    encoding=st.sampled_from(ENCODINGS),
    cols=st.sampled_from([None, ("text", "label")]),
)
def test_fuzz_delimited(
    fws: Workspace,
    tmp_path: Path,
    header: list[str],
    bad: list[list[str]],
    sep: str,
    encoding: str,
    cols: tuple[str, str] | None,
) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=sep)
    w.writerow(["text", "label", *header])
    for row in _good_rows():
        w.writerow([*row, *header[: len(header)]])
    for row in bad:
        w.writerow(row)
    path = tmp_path / ("f.tsv" if sep == "\t" else "f.csv")
    path.write_bytes(buf.getvalue().encode(encoding, errors="replace"))
    kw = {"text_col": cols[0], "label_col": cols[1]} if cols else {}
    _outcome(fws, path, **kw)


def _deep(n: int) -> str:
    return "[" * n + "]" * n


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | cells,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(cells, c, max_size=3),
    max_leaves=10,
)
raw_lines = st.one_of(
    st.integers(10, 200_000).map(lambda n: '{"text": "a", "label": ' + _deep(n) + "}"),
    st.integers(4000, 20_000).map(lambda n: '{"text": "a b", "label": ' + "1" * n + "}"),
    st.sampled_from(["NaN", "[1, 2]", '"text"', "{", '{"text": Infinity, "label": -Infinity}']),
    st.text(max_size=30),
)


@FUZZ
@given(
    values=st.lists(
        st.dictionaries(st.sampled_from(["text", "label", "x"]), json_values), max_size=4
    ),
    raw=st.lists(raw_lines, max_size=2),
)
def test_fuzz_jsonl(
    fws: Workspace, tmp_path: Path, values: list[dict[str, Any]], raw: list[str]
) -> None:
    lines = [json.dumps({"text": t, "label": lab}) for t, lab in _good_rows()]
    lines += [json.dumps(v) for v in values] + raw
    path = tmp_path / "f.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
    _outcome(fws, path)


# Every Parquet column type a file can carry, with hostile values where the type allows them.
def _column(kind: str, n: int, data: st.DataObject) -> pa.Array:
    draw = data.draw
    if kind == "int64":
        return pa.array([draw(st.integers(-(2**63), 2**63 - 1)) for _ in range(n)], pa.int64())
    if kind == "uint64":
        return pa.array([draw(st.integers(0, 2**64 - 1)) for _ in range(n)], pa.uint64())
    if kind == "float":
        return pa.array([draw(st.floats()) for _ in range(n)], pa.float64())
    if kind == "float16":
        return pa.array([1.5] * n, pa.float32()).cast(pa.float16())
    if kind == "bool":
        return pa.array([draw(st.booleans() | st.none()) for _ in range(n)], pa.bool_())
    if kind == "binary":
        return pa.array([draw(st.binary(max_size=10)) for _ in range(n)], pa.binary())
    if kind == "string":
        return pa.array([draw(cells) for _ in range(n)], pa.string())
    if kind == "large_string":
        return pa.array([draw(cells) for _ in range(n)], pa.large_string())
    if kind == "list":
        return pa.array([[draw(st.integers(0, 9))] for _ in range(n)], pa.list_(pa.int64()))
    if kind == "struct":
        return pa.array([{"a": draw(cells)} for _ in range(n)], pa.struct([("a", pa.string())]))
    if kind == "map":
        return pa.array([[("k", 1)] for _ in range(n)], pa.map_(pa.string(), pa.int64()))
    if kind == "timestamp":
        return pa.array([draw(st.integers(-(2**62), 2**62)) for _ in range(n)], pa.timestamp("ns"))
    if kind == "date":
        return pa.array([draw(st.integers(-(2**31), 2**31 - 1)) for _ in range(n)], pa.date32())
    if kind == "duration":
        return pa.array([draw(st.integers(-(2**62), 2**62)) for _ in range(n)], pa.duration("s"))
    if kind == "decimal":
        import decimal

        return pa.array([decimal.Decimal("9" * 38)] * n, pa.decimal128(38, 0))
    if kind == "dictionary":
        return pa.array([draw(cells) for _ in range(n)], pa.string()).dictionary_encode()
    if kind == "null":
        return pa.nulls(n)
    raise AssertionError(kind)


KINDS = [
    "int64",
    "uint64",
    "float",
    "float16",
    "bool",
    "binary",
    "string",
    "large_string",
    "list",
    "struct",
    "map",
    "timestamp",
    "date",
    "duration",
    "decimal",
    "dictionary",
    "null",
]


@FUZZ
@given(
    text_kind=st.sampled_from(["string", *KINDS]),
    label_kind=st.sampled_from(["string", *KINDS]),
    extra=st.lists(st.sampled_from(KINDS), max_size=2),
    data=st.data(),
)
def test_fuzz_parquet_column_types(
    fws: Workspace,
    tmp_path: Path,
    text_kind: str,
    label_kind: str,
    extra: list[str],
    data: st.DataObject,
) -> None:
    n = 8
    good_text = pa.array([r[0] for r in _good_rows()])
    good_label = pa.array([r[1] for r in _good_rows()])
    columns = {
        "text": good_text if text_kind == "string" else _column(text_kind, n, data),
        "label": good_label if label_kind == "string" else _column(label_kind, n, data),
    }
    for i, kind in enumerate(extra):
        columns[f"extra{i}"] = _column(kind, n, data)
    path = tmp_path / "f.parquet"
    try:
        pq.write_table(pa.table(columns), path)
    except (pa.ArrowException, ValueError):  # a combination Parquet cannot store: not a file
        return
    _outcome(fws, path)


@FUZZ
@given(blob=st.binary(max_size=300), suffix=st.sampled_from([".csv", ".tsv", ".jsonl", ".parquet"]))
def test_fuzz_random_bytes(fws: Workspace, tmp_path: Path, blob: bytes, suffix: str) -> None:
    path = tmp_path / f"f{suffix}"
    path.write_bytes(blob)
    _outcome(fws, path)


# -- the cases named in the issue, with their messages ------------------------------------
def _csv_text() -> str:
    return "text,label\n" + "".join(f"{t},{lab}\n" for t, lab in _good_rows())


@pytest.mark.parametrize(
    ("encoding", "source"),
    [
        ("utf-16", "UTF-16"),
        ("utf-16-le", "UTF-16LE"),
        ("utf-16-be", "UTF-16BE"),
        ("utf-32", "UTF-32"),
    ],
)
def test_utf16_is_named_and_the_suggested_fix_works(
    ws: Workspace, tmp_path: Path, encoding: str, source: str
) -> None:
    p = tmp_path / "wide.csv"
    p.write_bytes(_csv_text().encode(encoding))
    with pytest.raises(DataError) as e:
        add_corpus(ws, p)
    assert "UTF-8" in e.value.message and "latin" not in e.value.message
    assert f"iconv -f {source} -t UTF-8" in str(e.value.hint)
    # Follow the hint (iconv from the named encoding to UTF-8): the file is then accepted.
    fixed = tmp_path / "utf8-wide.csv"
    fixed.write_bytes(p.read_bytes().decode(source.replace("UTF-", "utf-")).encode("utf-8"))
    assert add_corpus(ws, fixed)["n_train"] > 0


def test_windows_1252_is_named(ws: Workspace, tmp_path: Path) -> None:
    p = tmp_path / "w.csv"
    p.write_bytes((_csv_text() + "\u201cquoted\u201d text here,a\n").encode("cp1252"))
    with pytest.raises(DataError, match="Windows-1252") as e:
        add_corpus(ws, p)
    assert "iconv -f WINDOWS-1252" in str(e.value.hint)


def test_thousands_digit_labels_are_data_not_a_traceback(ws: Workspace, tmp_path: Path) -> None:
    big = "9" * 5000
    p = tmp_path / "big.csv"
    p.write_text(
        "text,label\n" + "".join(f"text number {i},{big if i % 2 else 'b'}\n" for i in range(8))
    )
    r = add_corpus(ws, p)
    assert {c["name"] for c in r["classes"]} == {big, "b"}
    p2 = tmp_path / "ids.csv"
    p2.write_text(
        "text,label\n" + "".join(f"text number {i},{big if i % 2 else '1'}\n" for i in range(8))
    )
    with pytest.raises(DataError, match="numeric ids"):
        add_corpus(ws, p2)


def test_deep_json_line_names_the_line(ws: Workspace, tmp_path: Path) -> None:
    p = tmp_path / "deep.jsonl"
    p.write_text('{"text": "a", "label": "b"}\n{"text": ' + _deep(100_000) + "}\n")
    with pytest.raises(DataError, match="line 2"):
        add_corpus(ws, p)


def test_long_integer_in_json_is_refused_cleanly(ws: Workspace, tmp_path: Path) -> None:
    p = tmp_path / "int.jsonl"
    p.write_text('{"text": "a b c", "label": ' + "7" * 10_000 + "}\n")
    with pytest.raises(DataError, match="10000 digits"):
        add_corpus(ws, p)


def test_size_is_checked_before_reading(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = tmp_path / "big.csv"
    p.write_text(_csv_text())
    monkeypatch.setattr(validate, "MAX_CORPUS_BYTES", 64)
    read = []
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: read.append(self) or real(self))
    with pytest.raises(DataError, match="refused before reading"):
        add_corpus(ws, p)
    assert read == []


def test_parquet_unpacked_size_is_checked_before_the_rows(tmp_path: Path) -> None:
    p = tmp_path / "bomb.parquet"
    pq.write_table(pa.table({"text": ["x" * 1000] * 20_000, "label": ["a"] * 20_000}), p)
    assert p.stat().st_size < 200_000
    with pytest.raises(DataError, match="unpacks to"):
        validate.read_table(p, limit=1_000_000)


def test_a_fifo_is_refused_without_blocking(ws: Workspace, tmp_path: Path) -> None:
    p = tmp_path / "pipe.csv"
    os.mkfifo(p)
    with pytest.raises(DataError, match="not a regular file"):
        add_corpus(ws, p)


def test_too_many_columns(ws: Workspace, tmp_path: Path) -> None:
    p = tmp_path / "wide.csv"
    p.write_text(",".join(f"c{i}" for i in range(5000)) + "\n" + ",".join("x" * 5000) + "\n")
    with pytest.raises(DataError, match="at most 1000"):
        add_corpus(ws, p)


def test_duplicate_parquet_column_names(ws: Workspace, tmp_path: Path) -> None:
    p = tmp_path / "dup.parquet"
    t = pa.Table.from_arrays([pa.array(["a b"] * 4), pa.array(["x"] * 4)], names=["text", "text"])
    pq.write_table(t, p)
    with pytest.raises(DataError):
        add_corpus(ws, p)


@pytest.mark.parametrize(
    "label", ["bundle\x1b[2Jok", "line\nbundle OK", "osc\x1b]8;;http://e\x07x"]
)
def test_class_names_with_control_characters_are_refused(
    ws: Workspace, tmp_path: Path, label: str
) -> None:
    p = tmp_path / "ctl.csv"
    with p.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(8):
            w.writerow([f"text number {i}", label if i % 2 else "plain"])
    with pytest.raises(DataError, match="control characters") as e:
        add_corpus(ws, p)
    assert "\x1b" not in str(e.value).replace(repr("\x1b")[1:-1], "")  # shown escaped (repr)
    with ws.store.read() as conn:  # nothing stored for the refused file
        from sqlalchemy import func, select

        from bedside.store import schema

        assert conn.execute(select(func.count()).select_from(schema.corpus_versions)).scalar() == 0
