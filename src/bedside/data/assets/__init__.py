"""The embedded default corpus: 1,888 real medical abstracts in five classes (CC BY-SA 3.0).

The files sit beside this module (package data): a gzip of the corpus, its label names and
``SOURCE.md`` with the attribution and the license. ``write_embedded_corpus`` writes them out as
plain files that ``bedside data add`` takes, optionally as a stratified subset (``--quick``).

Example::

    files = write_embedded_corpus(Path("inbox"))
    files.corpus, files.labels  # inbox/medical-abstracts-dev.csv, inbox/medical-abstracts-labels.csv
    load_embedded_corpus().shape  # (1888, 2)
"""

from __future__ import annotations

import gzip
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bedside.errors import DataError

ASSETS_DIR = Path(__file__).parent
CORPUS_GZ = "medical-abstracts-dev.csv.gz"
LABELS_CSV = "medical-abstracts-labels.csv"
SOURCE_MD = "SOURCE.md"
N_ROWS = 1888
TEXT_COL = "medical_abstract"
LABEL_COL = "condition_label"
# One line for the demo to print: which corpus, from where, under which license.
ORIGIN = (
    "Medical Abstracts Text Classification Corpus (Schopf, Braun, Matthes, NLPIR '22; "
    "github.com/sebischair/Medical-Abstracts-TC-Corpus), 1,888 rows of its test split, CC BY-SA 3.0"
)


@dataclass(frozen=True)
class CorpusFiles:
    """Plain files written from the embedded corpus, ready for ``bedside data add``."""

    corpus: Path
    labels: Path
    source: Path
    rows: int

    def describe(self) -> str:
        subset = "" if self.rows == N_ROWS else f" (a stratified subset of {self.rows} rows)"
        return f"{self.rows} real abstracts{subset}: {ORIGIN}; attribution in {self.source}"


def _asset(name: str) -> Path:
    path = ASSETS_DIR / name
    if not path.is_file():
        raise DataError(
            f"the embedded corpus file {name} is missing from {ASSETS_DIR}.",
            hint="Reinstall bedside (`python3 -m pip install -e .`) or pass --corpus FILE / --synthetic.",
        )
    return path


def source_path() -> Path:
    """``SOURCE.md``: attribution and license of the embedded corpus."""
    return _asset(SOURCE_MD)


def load_embedded_corpus(n: int | None = None, seed: int = 0) -> pd.DataFrame:
    """The embedded corpus (columns ``condition_label``, ``medical_abstract``), or a stratified
    subset of about ``n`` rows (each class keeps its share, at least 2 rows)."""
    with gzip.open(_asset(CORPUS_GZ), "rt", encoding="utf-8") as f:
        df = pd.read_csv(f, dtype={LABEL_COL: int, TEXT_COL: str})
    if n is None or n >= len(df):
        return df
    if n < 10:
        raise DataError(f"a subset of the embedded corpus needs at least 10 rows; asked for {n}.")
    frac = n / len(df)
    parts = [
        g.sample(n=max(2, round(frac * len(g))), random_state=seed)
        for _, g in df.groupby(LABEL_COL, sort=True)
    ]
    return pd.concat(parts).sort_index().reset_index(drop=True)


def write_embedded_corpus(dest: Path, n: int | None = None, seed: int = 0) -> CorpusFiles:
    """Write the corpus (or a subset of ``n`` rows), its label names and SOURCE.md into ``dest``."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    df = load_embedded_corpus(n, seed)
    corpus = dest / CORPUS_GZ.removesuffix(".gz")
    df.to_csv(corpus, index=False)
    labels = dest / LABELS_CSV
    shutil.copyfile(_asset(LABELS_CSV), labels)
    source = dest / SOURCE_MD
    shutil.copyfile(source_path(), source)
    return CorpusFiles(corpus=corpus, labels=labels, source=source, rows=len(df))
