"""Reading a screening file: streamed in chunks, checked, staged as parquet row groups.

A screening file is a CSV of new, unlabelled abstracts: a text column (``text`` by default), an
optional id column (``row_id``; without one, ids are ``line-N`` for the file's line number) and,
for shadow mode, an optional column with the current classifier's label. The whole file is read
in chunks of ``chunk_rows`` rows, so a 2-million-row file never sits in memory; each chunk is
checked and appended to ``screen.parquet`` (one row group per chunk, ``row_id`` and ``text``,
what the sandboxed job reads) and, when there is a shadow column, to ``shadow.parquet``
(``row_id``, ``label``; host only, never staged for the job).

Nothing is half-accepted: a missing column, empty texts, duplicate ids or unknown shadow labels
fail the whole file with the line numbers of the first offenders, and the staged files are
removed.

Example::

    staged = stage_input(Path("new.csv"), run_dir, classes=corpus.class_names)
    staged.n_rows, staged.sha256
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bedside.errors import DataError

CHUNK_ROWS = 50_000
EXAMPLES = 5
SCREEN_FILE = "screen.parquet"
SHADOW_FILE = "shadow.parquet"


@dataclass
class StagedInput:
    """What was read: counts and a digest, never content."""

    file_name: str
    sha256: str
    n_rows: int
    text_column: str
    id_column: str | None
    shadow_column: str | None
    chunks: int
    paths: dict[str, str] = field(default_factory=dict)  # name -> staged file

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _lines(positions: list[int]) -> str:
    shown = ", ".join(str(p) for p in positions[:EXAMPLES])
    return shown + (", ..." if len(positions) > EXAMPLES else "")


def _id_hashes(ids: Sequence[str]) -> np.ndarray:
    """64-bit digests of the ids (duplicate check in 8 bytes a row, not a set of strings)."""
    return np.array(
        [
            int.from_bytes(hashlib.blake2b(i.encode(), digest_size=8).digest(), "little")
            for i in ids
        ],
        dtype=np.uint64,
    )


def stage_input(
    src: Path,
    dest_dir: Path,
    *,
    classes: Sequence[str],
    text_column: str = "text",
    id_column: str = "row_id",
    shadow_column: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> StagedInput:
    """Read ``src`` chunk by chunk into ``dest_dir`` (see the module docstring)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = Path(src)
    if not src.is_file():
        raise DataError(f"no screening file at {src}.", hint="Give the path of a CSV file.")
    if chunk_rows < 1:
        raise DataError(f"chunk_rows must be at least 1, got {chunk_rows}.")
    dest_dir.mkdir(parents=True, exist_ok=True)
    screen_path, shadow_path = dest_dir / SCREEN_FILE, dest_dir / SHADOW_FILE
    known = set(classes)
    empty: list[int] = []
    unknown: dict[str, int] = {}
    hashes: list[np.ndarray] = []
    n = chunks = n_empty = n_no_id = 0
    missing_ids: list[int] = []
    has_ids = False
    writer = shadow_writer = None
    reader: Any = None
    try:
        try:
            reader = pd.read_csv(
                src,
                dtype=str,
                keep_default_na=False,
                chunksize=chunk_rows,
                on_bad_lines="error",
                skip_blank_lines=False,  # a blank line is an empty abstract, not nothing
            )
            for df in reader:
                if chunks == 0:
                    cols = list(df.columns)
                    if text_column not in cols:
                        raise DataError(
                            f"the screening file has no text column {text_column!r}; its columns "
                            f"are: {', '.join(cols) or '(none)'}.",
                            hint="Pass --text-col NAME.",
                        )
                    if shadow_column is not None and shadow_column not in cols:
                        raise DataError(
                            f"shadow mode needs the current classifier's labels in column "
                            f"{shadow_column!r}; the columns are: {', '.join(cols)}.",
                            hint="Pass --shadow-col NAME, or --shadow baseline.",
                        )
                    has_ids = id_column in cols
                lines = np.arange(n, n + len(df)) + 2  # 1-based, after the header line
                texts = df[text_column].fillna("").astype(str)
                bad = texts.str.strip() == ""
                if len(empty) <= EXAMPLES:
                    empty.extend(lines[bad.to_numpy()].tolist()[: EXAMPLES + 1 - len(empty)])
                n_empty += int(bad.sum())
                ids = (
                    df[id_column].fillna("").astype(str).str.strip().tolist()
                    if has_ids
                    else [f"line-{i}" for i in lines]
                )
                if has_ids:
                    no_id = np.array([i == "" for i in ids], dtype=bool)
                    if len(missing_ids) <= EXAMPLES:
                        missing_ids.extend(lines[no_id].tolist()[: EXAMPLES + 1 - len(missing_ids)])
                    n_no_id += int(no_id.sum())
                hashes.append(_id_hashes(ids))
                table = pa.table({"row_id": ids, "text": texts.tolist()})
                if writer is None:
                    writer = pq.ParquetWriter(screen_path, table.schema)
                writer.write_table(table)
                if shadow_column is not None:
                    labels = df[shadow_column].fillna("").astype(str).str.strip()
                    for value in set(labels) - known:
                        unknown[value] = unknown.get(value, 0) + int((labels == value).sum())
                    st = pa.table({"row_id": ids, "label": labels.tolist()})
                    if shadow_writer is None:
                        shadow_writer = pq.ParquetWriter(shadow_path, st.schema)
                    shadow_writer.write_table(st)
                n += len(df)
                chunks += 1
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
            raise DataError(
                f"{src.name} is not a readable CSV file: {e}",
                hint="Save it as UTF-8 CSV with a header line.",
            ) from e
        finally:
            if reader is not None:
                reader.close()
            if writer is not None:
                writer.close()
            if shadow_writer is not None:
                shadow_writer.close()
        if n == 0:
            raise DataError(f"{src.name} has a header but no rows.", hint="Nothing to screen.")
        if n_empty:
            raise DataError(
                f"{n_empty} of {n} rows have a missing or empty {text_column!r} (lines "
                f"{_lines(empty)}); nothing was screened.",
                hint="Fill in or drop those rows and screen the file again.",
            )
        if n_no_id:
            raise DataError(
                f"{n_no_id} of {n} rows have an empty {id_column!r} (lines {_lines(missing_ids)}); "
                "nothing was screened.",
                hint="Give every row an id, or drop the id column to number rows by line.",
            )
        if unknown:
            names = sorted(unknown, key=lambda v: -unknown[v])
            raise DataError(
                f"the shadow column {shadow_column!r} has labels that are not workspace classes: "
                + ", ".join(f"{v!r} ({unknown[v]} rows)" for v in names[:EXAMPLES])
                + ".",
                hint="Classes are: " + ", ".join(repr(c) for c in classes) + ".",
            )
        all_hashes = np.concatenate(hashes)
        uniq, counts = np.unique(all_hashes, return_counts=True)
        if (counts > 1).any():
            dup = set(uniq[counts > 1].tolist())
            where = (np.flatnonzero(np.isin(all_hashes, list(dup))) + 2).tolist()
            raise DataError(
                f"{int((counts > 1).sum())} ids occur more than once in column {id_column!r} "
                f"(lines {_lines(where)}).",
                hint="Every abstract needs its own id (reviewer labels are joined on it).",
            )
    except BaseException:
        screen_path.unlink(missing_ok=True)
        shadow_path.unlink(missing_ok=True)
        raise
    paths = {"screen": str(screen_path)}
    if shadow_column is not None:
        paths["shadow"] = str(shadow_path)
    return StagedInput(
        file_name=src.name,
        sha256=_sha256(src),
        n_rows=n,
        text_column=text_column,
        id_column=id_column if has_ids else None,
        shadow_column=shadow_column,
        chunks=chunks,
        paths=paths,
    )


def copy_into(staged: StagedInput, job_inputs: Path) -> Path:
    """Put the texts where the job reads them (``inputs/screen.parquet``, 0644)."""
    import os

    job_inputs.mkdir(parents=True, exist_ok=True)
    dest = job_inputs / SCREEN_FILE
    shutil.copyfile(staged.paths["screen"], dest)
    os.chmod(dest, 0o644)
    return dest
