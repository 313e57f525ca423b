"""Reading corpus files and checking them, with errors that name file, row and fix.

Every problem is a ``DataError`` saying what was expected, what was found and what to do. Row
numbers are the ones a person sees: for CSV/TSV the header is row 1 (as in a spreadsheet), so the
first data row is row 2; for JSONL the line number; for Parquet the 1-based row.

Files are decoded in memory: corpus text is never copied to a temporary file.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bedside.data.corpus import ClassInfo
from bedside.errors import DataError

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


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        bad = data[e.start]
        guess = "latin-1 / Windows-1252" if bad >= 0x80 else "another encoding"
        raise DataError(
            f"{path.name} is not UTF-8 text: byte 0x{bad:02x} on line {line} cannot be decoded "
            f"(the file looks like {guess}).",
            hint=f"Re-encode it to UTF-8, e.g. `iconv -f latin1 -t utf-8 {path.name} > utf8-{path.name}`, "
            "and add the re-encoded file.",
        ) from None


def _parse_delimited(path: Path, text: str, sep: str) -> pd.DataFrame:
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
        raise DataError(
            f"{path.name} is not a readable {'TSV' if sep == chr(9) else 'CSV'} file: {msg}."
        ) from None


def _parse_jsonl(path: Path, text: str) -> pd.DataFrame:
    records = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(
                f"{path.name} is malformed at line {n}: not valid JSON ({e.msg}).",
                hint='Each line of a JSONL file must be one JSON object, e.g. {"text": "...", "label": "..."}.',
            ) from None
        if not isinstance(obj, dict):
            raise DataError(
                f"{path.name} line {n}: expected a JSON object, found {type(obj).__name__}.",
                hint="Each line must be an object with a text and a label field.",
            )
        records.append(obj)
    if not records:
        raise DataError(f"{path.name} is empty: expected one JSON object per line.")
    df = pd.DataFrame.from_records(records)
    return df.map(_cell).astype(object)


def read_table(path: Path | str) -> Table:
    """Read a CSV, TSV, JSONL or Parquet file into a table of strings (None where missing).

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
    try:
        if fmt == "parquet":
            try:
                df = pd.read_parquet(path)
            except Exception as e:  # pyarrow raises several types for a bad file
                raise DataError(
                    f"{path.name} is not a readable Parquet file ({type(e).__name__}).",
                    hint="Write it again with pandas/pyarrow, or export it as CSV.",
                ) from None
            df = df.map(_cell).astype(object)
        else:
            text = _decode(path, path.read_bytes())
            if fmt == "jsonl":
                df = _parse_jsonl(path, text)
            else:
                df = _parse_delimited(path, text, "\t" if fmt == "tsv" else ",")
    except PermissionError:
        raise DataError(
            f"cannot read {path}: permission denied.", hint="Check the file's permissions."
        ) from None
    if len(df) == 0:
        raise DataError(
            f"{path.name} has a header but no data rows.", hint="Add rows, or pick the right file."
        )
    df.columns = [str(c) for c in df.columns]
    return Table(path=path, fmt=fmt, df=df.reset_index(drop=True))


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
    labels = labels.map(lambda v: str(int(float(v))) if _INT.fullmatch(v) else v)
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
        cid = str(int(float(cid))) if _INT.fullmatch(cid.strip()) else cid.strip()
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
        ids = sorted(set(labels), key=int)
        raise DataError(
            f"the labels of {table.path.name} are numeric ids ({', '.join(ids[:_SHOW])}) but no names file was given.",
            hint="Pass --labels FILE with columns id,name[,description] (like labels.csv) so that models see class names.",
        )
    classes = [
        ClassInfo(id=str(i + 1), name=n, description=n) for i, n in enumerate(sorted(set(labels)))
    ]
    return labels, classes


def sort_classes(classes: list[ClassInfo]) -> list[ClassInfo]:
    """Workspace class order: by id when all ids are numeric, else by name."""
    if all(_INT.fullmatch(c.id) for c in classes):
        return sorted(classes, key=lambda c: int(c.id))
    return sorted(classes, key=lambda c: c.name)
