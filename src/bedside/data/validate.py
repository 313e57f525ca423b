"""Reading corpus files and checking them, with errors that name file, row and fix.

Every problem is a ``DataError`` saying what was expected, what was found and what to do. Row
numbers are the ones a person sees: for CSV/TSV the header is row 1 (as in a spreadsheet), so the
first data row is row 2; for JSONL the line number; for Parquet the 1-based row.

Files are decoded in memory: corpus text is never copied to a temporary file. Every file's size
is checked before it is read (``MAX_CORPUS_BYTES``; a Parquet file's unpacked size too), and every
parser failure (deep JSON, thousands-digit numbers, odd encodings, odd column types) is a
``DataError``, never a traceback.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bedside.data.corpus import ClassInfo
from bedside.errors import DataError
from bedside.parsing import has_control, parse_json, read_bounded, safe_int

FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
TEXT_NAMES = ("text", "medical_abstract", "abstract", "document", "body", "content")
LABEL_NAMES = (
    "label",
    "labels",
    "condition_label",
    "class",
    "category",
    "target",
    "condition",
    "topic",
)
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_INT = re.compile(r"[+-]?\d+(\.0*)?")
_SHOW = 5  # rows named in a message before "and N more"
MAX_CORPUS_BYTES = 1024 * 1024 * 1024  # one corpus file, as stored and (Parquet) as unpacked
MAX_COLUMNS = 1000  # a corpus has a text and a label column and a few more


@dataclass
class Table:
    """A file read into strings, with what is needed to name its rows."""

    path: Path
    fmt: str
    df: pd.DataFrame

    def row(self, i: int) -> str:
        """How a person finds data row ``i`` (0-based) in the file."""
        if self.fmt in ("csv", "tsv"):
            return f"row {i + 2}"
        if self.fmt == "jsonl":
            return f"line {i + 1}"
        return f"row {i + 1}"

    def rows(self, idx: list[int]) -> str:
        shown = ", ".join(self.row(i) for i in idx[:_SHOW])
        more = f" and {len(idx) - _SHOW} more" if len(idx) > _SHOW else ""
        return shown + more

    @property
    def where(self) -> str:
        note = " (the header is row 1)" if self.fmt in ("csv", "tsv") else ""
        return f"{self.path.name}{note}"


def _cell(v: Any) -> str | None:
    """A cell as a string; None for missing. Integral floats lose their '.0' (label ids)."""
    if v is None or (isinstance(v, float) and v != v):
        return None
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32LE", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32BE", "UTF-32"),
    (b"\xff\xfe", "UTF-16LE", "UTF-16"),
    (b"\xfe\xff", "UTF-16BE", "UTF-16"),
)


def _wide_encoding(data: bytes) -> tuple[str, str] | None:
    """(name, iconv source) for UTF-16/32 text, from its BOM or its pattern of NUL bytes."""
    for bom, name, source in _BOMS:
        if data.startswith(bom):
            return name, source
    head = data[:65536]
    if head.count(0) < max(2, len(head) // 8):
        return None
    even, odd = head[0::2].count(0), head[1::2].count(0)
    if odd > 4 * max(even, 1):
        return "UTF-16LE", "UTF-16LE"
    if even > 4 * max(odd, 1):
        return "UTF-16BE", "UTF-16BE"
    return None


def _reencode_hint(path: Path, source: str) -> str:
    return (
        f"Re-encode it to UTF-8, e.g. `iconv -f {source} -t UTF-8 {path.name} > utf8-{path.name}`, "
        "and add the re-encoded file."
    )


def _decode(path: Path, data: bytes) -> str:
    wide = _wide_encoding(data)
    if wide is not None:
        name, source = wide
        raise DataError(
            f"{path.name} is {name} text, not UTF-8; bedside reads UTF-8 corpus files.",
            hint=_reencode_hint(path, source),
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        bad = data[e.start]
        high = [b for b in data if b >= 0x80]
        if bad < 0x80:
            guess, source = "another encoding", "ENCODING"
        elif any(0x80 <= b <= 0x9F for b in high):
            guess, source = "Windows-1252", "WINDOWS-1252"
        else:
            guess, source = "latin-1 (ISO-8859-1)", "ISO-8859-1"
        raise DataError(
            f"{path.name} is not UTF-8 text: byte 0x{bad:02x} on line {line} cannot be decoded "
            f"(the file looks like {guess}).",
            hint=_reencode_hint(path, source),
        ) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise DataError(
            f"{path.name} holds a NUL byte on line {line}; expected plain UTF-8 text.",
            hint="The file is binary or damaged; export the corpus again as UTF-8 CSV.",
        )
    return text


def _parse_delimited(path: Path, text: str, sep: str) -> pd.DataFrame:
    header = text.split("\n", 1)[0]
    if header.count(sep) + 1 > MAX_COLUMNS:
        raise DataError(
            f"{path.name} has {header.count(sep) + 1} columns in its header; at most "
            f"{MAX_COLUMNS} are accepted.",
            hint="Keep the text and label columns (and a few more); drop the rest.",
        )
    kind = "TSV" if sep == "\t" else "CSV"
    try:
        return pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise DataError(
            f"{path.name} is empty: expected a header row and at least one data row.",
            hint="Check that you picked the right file.",
        ) from None
    except pd.errors.ParserError as e:
        msg = str(e)
        fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", msg)
        if fields:
            want, line, got = fields.groups()
            raise DataError(
                f"{path.name} is malformed at line {line}: expected {want} fields (as in the header), "
                f"found {got}.",
                hint='A text that contains the delimiter must be quoted ("..."); fix that line and add the file again.',
            ) from None
        eof = re.search(r"EOF inside string starting at row (\d+)", msg)
        if eof:
            line = int(eof.group(1)) + 1
            raise DataError(
                f"{path.name} is malformed: a quoted field opened on line {line} is never closed.",
                hint='Close the quote (") on that line, or double any quote inside a text (""), and add the file again.',
            ) from None
        raise DataError(f"{path.name} is not a readable {kind} file: {msg[:200]}.") from None
    except (ValueError, OverflowError, RecursionError, IndexError, TypeError, MemoryError) as e:
        raise DataError(
            f"{path.name} is not a readable {kind} file ({type(e).__name__}: {str(e)[:200]}).",
            hint=f"Export it again as a UTF-8 {kind} with a header row.",
        ) from None


def _parse_jsonl(path: Path, text: str) -> pd.DataFrame:
    records = []
    keys: set[str] = set()
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        obj = parse_json(
            line,
            f"{path.name} is malformed at line {n}",
            DataError,
            verb=":",
            hint='Each line of a JSONL file must be one JSON object, e.g. {"text": "...", "label": "..."}.',
        )
        if not isinstance(obj, dict):
            raise DataError(
                f"{path.name} line {n}: expected a JSON object, found {type(obj).__name__}.",
                hint="Each line must be an object with a text and a label field.",
            )
        keys.update(obj)
        if len(keys) > MAX_COLUMNS:
            raise DataError(
                f"{path.name}: the objects up to line {n} use more than {MAX_COLUMNS} distinct keys; "
                "a corpus row has a text, a label and a few more fields.",
                hint="Keep the text and label fields (and a few more); drop the rest.",
            )
        records.append(obj)
    if not records:
        raise DataError(f"{path.name} is empty: expected one JSON object per line.")
    df = pd.DataFrame.from_records(records)
    return df.map(_cell).astype(object)


def _parse_parquet(path: Path, data: bytes, limit: int) -> pd.DataFrame:
    """Parquet rows, decoded in small batches so that the unpacked size is checked as it grows
    (repeated or dictionary-encoded values unpack to far more than the file's size)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(io.BytesIO(data))
        n_cols = pf.metadata.num_columns
    except Exception as e:  # pyarrow raises several types for a bad footer
        raise DataError(
            f"{path.name} is not a readable Parquet file ({type(e).__name__}).",
            hint="Write it again with pandas/pyarrow, or export it as CSV.",
        ) from None
    if n_cols > MAX_COLUMNS:
        raise DataError(
            f"{path.name} has {n_cols} columns; at most {MAX_COLUMNS} are accepted.",
            hint="Keep the text and label columns (and a few more); drop the rest.",
        )
    try:
        batches, unpacked = [], 0
        for batch in pf.iter_batches(batch_size=256):
            unpacked += batch.nbytes
            if unpacked > limit:
                raise DataError(
                    f"{path.name} unpacks to more than {limit / 2**20:.0f} MB; refused while "
                    "reading its rows.",
                    hint="Split the corpus into smaller files and --append them.",
                )
            batches.append(batch)
        table = pa.Table.from_batches(batches, schema=pf.schema_arrow)
        return table.to_pandas().map(_cell).astype(object)
    except DataError:
        raise
    except Exception as e:  # pyarrow/pandas raise several types for odd column types
        raise DataError(
            f"{path.name} is not a readable Parquet file ({type(e).__name__}).",
            hint="Write it again with pandas/pyarrow (string text and label columns), or export it as CSV.",
        ) from None


def read_table(path: Path | str, limit: int | None = None) -> Table:
    """Read a CSV, TSV, JSONL or Parquet file into a table of strings (None where missing).

    Files larger than ``limit`` bytes (default ``MAX_CORPUS_BYTES``) are refused before reading.

    >>> read_table("dev.csv").df.columns.tolist()  # doctest: +SKIP
    ['condition_label', 'medical_abstract']
    """
    path = Path(path)
    if not path.exists():
        raise DataError(
            f"file not found: {path}.",
            hint="Check the path (relative paths start from the current directory).",
        )
    if path.is_dir():
        raise DataError(f"{path} is a directory; expected a CSV, TSV, JSONL or Parquet file.")
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"unsupported file type {path.suffix or '(none)'!r} for {path.name}; expected .csv, .tsv, .jsonl or .parquet.",
            hint="Export the data as CSV (UTF-8) with a text and a label column.",
        )
    limit = MAX_CORPUS_BYTES if limit is None else limit
    data = read_bounded(
        path,
        limit,
        path.name,
        DataError,
        hint="Split the corpus into smaller files and --append them.",
    )
    if fmt == "parquet":
        df = _parse_parquet(path, data, limit)
    else:
        text = _decode(path, data)
        if fmt == "jsonl":
            df = _parse_jsonl(path, text)
        else:
            df = _parse_delimited(path, text, "\t" if fmt == "tsv" else ",")
    if len(df) == 0:
        raise DataError(
            f"{path.name} has a header but no data rows.", hint="Add rows, or pick the right file."
        )
    df.columns = [str(c) for c in df.columns]
    dupes = sorted({c for c in df.columns if list(df.columns).count(c) > 1})
    if dupes:
        raise DataError(
            f"{path.name} has the column name {dupes[0]!r} more than once; column names must be unique.",
            hint="Rename or drop the repeated column.",
        )
    return Table(path=path, fmt=fmt, df=df.reset_index(drop=True))


def _norm_int(v: str) -> str:
    """A label or id that is an integer (``"007"``, ``"7.0"``) as its canonical digits (``"7"``);
    other values, and integers too long to convert, unchanged."""
    if not _INT.fullmatch(v):
        return v
    n = safe_int(v.split(".", 1)[0])
    return v if n is None else str(n)


def _id_key(v: str) -> tuple[int, int, str]:
    """Sort key for class ids: numeric ids by value (over-long ones last), then by text."""
    n = safe_int(v) if _INT.fullmatch(v) and "." not in v else None
    return (0, n, "") if n is not None else (1, 0, v)


def _numeric_share(s: pd.Series) -> float:
    vals = [v for v in s if v is not None and str(v).strip()]
    if not vals:
        return 0.0
    return sum(bool(_NUMBER.fullmatch(str(v).strip())) for v in vals) / len(vals)


def _mean_len(s: Any) -> float:
    return float(s.map(lambda v: len(v) if isinstance(v, str) else 0).mean())


def detect_columns(
    table: Table, text_col: str | None = None, label_col: str | None = None
) -> tuple[str, str]:
    """Pick the text and label columns, or check the given ones.

    The text column is the string column with the longest mean length; the label column is the
    one named like a label (``label``, ``condition_label``, ``category``...).

    >>> detect_columns(read_table("dev.csv"))  # doctest: +SKIP
    ('medical_abstract', 'condition_label')
    """
    cols = [str(c) for c in table.df.columns]
    listed = ", ".join(cols)
    for given, flag in ((text_col, "--text-col"), (label_col, "--label-col")):
        if given is not None and given not in cols:
            raise DataError(
                f"column {given!r} not found in {table.path.name}; columns are: {listed}.",
                hint=f"Pass {flag} with one of those names.",
            )
    if label_col is None:
        named = [c for c in cols if c.lower() in LABEL_NAMES and c != text_col]
        if len(named) > 1:
            raise DataError(
                f"several columns of {table.path.name} look like labels: {', '.join(named)}.",
                hint=f"Pass --label-col with the one to use (columns are: {listed}).",
            )
        if named:
            label_col = named[0]
    if text_col is None:
        cands = [c for c in cols if c != label_col and _numeric_share(table.df[c]) < 0.9]
        ranked = sorted(cands, key=lambda c: -_mean_len(table.df[c]))
        if not ranked:
            raise DataError(
                f"no text column found in {table.path.name}: columns are {listed} and none holds text.",
                hint="Pass --text-col with the column that holds the abstracts.",
            )
        if len(ranked) > 1 and _mean_len(table.df[ranked[1]]) >= 0.67 * _mean_len(
            table.df[ranked[0]]
        ):
            raise DataError(
                f"cannot tell which column of {table.path.name} holds the text: {ranked[0]!r} and "
                f"{ranked[1]!r} are both long.",
                hint=f"Pass --text-col (columns are: {listed}).",
            )
        text_col = ranked[0]
    if label_col is None:
        rest = [c for c in cols if c != text_col]
        if len(rest) != 1:
            raise DataError(
                f"no label column found in {table.path.name}; columns are: {listed}.",
                hint="Pass --label-col with the column that holds the classes.",
            )
        label_col = rest[0]
    if text_col == label_col:
        raise DataError(
            f"the text and label columns are both {text_col!r}.", hint="Pass two different columns."
        )
    return text_col, label_col


def check_texts(table: Table, text_col: str) -> pd.Series:
    """The text column, stripped; errors for numeric columns and empty texts (naming the rows)."""
    raw = table.df[text_col]
    if _numeric_share(raw) >= 0.9:
        first = next(i for i, v in enumerate(raw) if v is not None)
        raise DataError(
            f"column {text_col!r} of {table.path.name} holds numbers, not text (e.g. {table.row(first)}: "
            f"{str(raw.iloc[first])[:20]!r}).",
            hint=f"Pass --text-col with the column that holds the abstracts (columns are: {', '.join(table.df.columns)}).",
        )
    texts = raw.map(lambda v: "" if v is None else str(v).strip())
    empty = [i for i, t in enumerate(texts) if not t]
    if empty:
        raise DataError(
            f"{len(empty)} empty or whitespace-only text(s) in column {text_col!r} of {table.where}: "
            f"{table.rows(empty)}.",
            hint="Fill in or delete those rows, then add the file again.",
        )
    return texts


def check_labels(table: Table, label_col: str) -> pd.Series:
    """The label column as stripped strings (integral numbers without '.0'); errors for empty labels."""
    labels = table.df[label_col].map(lambda v: "" if v is None else str(v).strip())
    labels = labels.map(_norm_int)
    empty = [i for i, v in enumerate(labels) if not v]
    if empty:
        raise DataError(
            f"{len(empty)} row(s) of {table.where} have no label in column {label_col!r}: {table.rows(empty)}.",
            hint="Label those rows or delete them, then add the file again.",
        )
    return labels


def is_numeric_ids(labels: pd.Series) -> bool:
    return bool(labels.map(lambda v: bool(_INT.fullmatch(v))).all())


def read_names(path: Path | str) -> list[ClassInfo]:
    """Read a names file: ``id,name[,description]`` (e.g. ``condition_label,condition_name``).

    >>> [c.name for c in read_names("labels.csv")][:1]  # doctest: +SKIP
    ['neoplasms']
    """
    table = read_table(path)
    cols = list(table.df.columns)
    if len(cols) < 2:
        raise DataError(
            f"{table.path.name} needs at least two columns (id, name); found: {', '.join(cols)}.",
            hint="Write it as e.g. `condition_label,condition_name` with one class a row.",
        )
    desc_col = next((c for c in cols if "desc" in c.lower()), None)
    rest = [c for c in cols if c != desc_col]
    name_col = next((c for c in rest if "name" in c.lower()), rest[1])
    id_col = next(c for c in rest if c != name_col)
    classes = []
    for i, r in table.df.iterrows():
        cid, name = _cell(r[id_col]), _cell(r[name_col])
        if not cid or not name or not cid.strip() or not name.strip():
            raise DataError(
                f"{table.where} {table.row(int(str(i)))}: expected an id and a name, found {cid!r}, {name!r}."
            )
        cid = _norm_int(cid.strip())
        desc = _cell(r[desc_col]) if desc_col else None
        classes.append(ClassInfo(id=cid, name=name.strip(), description=(desc or name).strip()))
    for attr in ("id", "name"):
        values = [getattr(c, attr) for c in classes]
        dupes = sorted({v for v in values if values.count(v) > 1})
        if dupes:
            raise DataError(
                f"{table.path.name} lists the class {attr} {dupes[0]!r} more than once."
            )
    return classes


def read_descriptions(path: Path | str, names: list[str]) -> dict[str, str]:
    """Read ``name,description`` rows for the given class names (each name must be known)."""
    table = read_table(path)
    cols = list(table.df.columns)
    if len(cols) < 2:
        raise DataError(
            f"{table.path.name} needs two columns (name, description); found: {', '.join(cols)}."
        )
    name_col = next(
        (c for c in cols if "name" in c.lower() or c.lower() in ("class", "label")), cols[0]
    )
    desc_col = next(
        (c for c in cols if "desc" in c.lower()), next(c for c in cols if c != name_col)
    )
    out: dict[str, str] = {}
    for i, r in table.df.iterrows():
        name = (_cell(r[name_col]) or "").strip()
        if name not in names:
            raise DataError(
                f"{table.where} {table.row(int(str(i)))}: class {name!r} is not one of the corpus's classes "
                f"({', '.join(names)}).",
                hint="Use the class names exactly as in the labels (or the names file).",
            )
        out[name] = (_cell(r[desc_col]) or name).strip()
    return out


def resolve_classes(
    table: Table,
    labels: pd.Series,
    names: list[ClassInfo] | None,
    *,
    names_file: str = "the names file",
    hint: str | None = None,
) -> tuple[pd.Series, list[ClassInfo]]:
    """Map raw labels to class names; return (names per row, classes in workspace order).

    Numeric ids need ``names`` (from ``--labels``); string labels name themselves. A raw label
    may also be a class name from ``names``.
    """
    _refuse_control_names(table, labels, names, names_file)
    if names is not None:
        by_key = {c.id: c.name for c in names} | {c.name: c.name for c in names}
        unknown = [i for i, v in enumerate(labels) if v not in by_key]
        if unknown:
            values = sorted({labels.iloc[i] for i in unknown})
            raise DataError(
                f"{len(unknown)} row(s) of {table.where} have labels not in {names_file}: "
                f"{', '.join(map(repr, values[:_SHOW]))} (at {table.rows(unknown)}). Known classes are: "
                f"{', '.join(f'{c.id}={c.name}' for c in names)}.",
                hint=hint or f"Add the missing classes to {names_file}, or fix those rows.",
            )
        return labels.map(by_key), sort_classes(names)
    if is_numeric_ids(labels):
        ids = sorted(set(labels), key=_id_key)
        raise DataError(
            f"the labels of {table.path.name} are numeric ids ({', '.join(ids[:_SHOW])}) but no names file was given.",
            hint="Pass --labels FILE with columns id,name[,description] (like labels.csv) so that models see class names.",
        )
    classes = [
        ClassInfo(id=str(i + 1), name=n, description=n) for i, n in enumerate(sorted(set(labels)))
    ]
    return labels, classes


def _refuse_control_names(
    table: Table, labels: pd.Series, names: list[ClassInfo] | None, names_file: str
) -> None:
    """Class names reach terminals, pages and charts: refuse escapes and newlines in them."""
    bad = sorted({c.name for c in names or [] if has_control(c.name)})
    where = names_file
    if not bad and names is None:
        bad = sorted({str(v) for v in set(labels) if has_control(str(v))})
        where = table.where
    if bad:
        raise DataError(
            f"class name(s) in {where} hold control characters (escapes, newlines): "
            f"{', '.join(repr(b) for b in bad[:_SHOW])}.",
            hint="Remove the control characters from those class names and add the file again.",
        )


def sort_classes(classes: list[ClassInfo]) -> list[ClassInfo]:
    """Workspace class order: by id when all ids are numeric, else by name."""
    if all(_INT.fullmatch(c.id) for c in classes):
        return sorted(classes, key=lambda c: _id_key(c.id))
    return sorted(classes, key=lambda c: c.name)
