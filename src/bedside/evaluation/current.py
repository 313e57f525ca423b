"""The hospital's current classifier as a baseline row: its holdout predictions, scored like a model.

The owner exports what the classifier in use today predicts for each holdout row (a CSV with
``row_id`` and the predicted class, as a name or an id) and registers it; bedside checks the file
against the holdout of the corpus version, turns the predictions into one-hot probabilities and
scores them with the same trusted scorer as every model (``baseline.score_on_holdout``). The row
is shown beside the TF-IDF baseline with its CIs, is never ranked, and is the status quo that the
impact table prices every vendor against.

Example::

    rid = add_current_baseline(ws, "current classifier", Path("current.csv"))
    current_baselines(ws)[0]["name"]  # 'current classifier'
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, select

from bedside.errors import ConfigError, DataError
from bedside.evaluation.baseline import BASELINE_LABEL, score_on_holdout
from bedside.evaluation.results import record_result
from bedside.store import schema
from bedside.store.store import utcnow

if TYPE_CHECKING:
    from bedside.data.corpus import Corpus
    from bedside.workspace import Workspace

CURRENT_KIND = "current"
LABEL_COLUMNS = ("label", "class", "prediction", "predicted")
VERSION_COLUMN = "corpus_version"
MAX_BYTES = 200 * 2**20
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._()+%-]{0,99}$")
_EXAMPLES = 3


def _examples(values: Sequence[str]) -> str:
    shown = ", ".join(repr(v) for v in list(values)[:_EXAMPLES])
    return shown + (", ..." if len(values) > _EXAMPLES else "")


@dataclass(frozen=True)
class BaselinePredictions:
    """Validated predictions: one class name per holdout row, in holdout order."""

    row_ids: list[str]
    labels: list[str]
    label_column: str
    sha256: str

    def probs(self, classes: Sequence[str]) -> NDArray[np.float64]:
        """One-hot probabilities (rows x classes): a hard prediction is certain."""
        index = {c: i for i, c in enumerate(classes)}
        out = np.zeros((len(self.labels), len(classes)), dtype=np.float64)
        out[np.arange(len(self.labels)), [index[y] for y in self.labels]] = 1.0
        return out


def check_name(name: str) -> str:
    """A baseline's display name: 1..100 characters, not the TF-IDF baseline's."""
    if not isinstance(name, str) or not _NAME_RE.match(name.strip()):
        raise ConfigError(
            f"a baseline name must be 1..100 letters, digits, spaces or . _ ( ) + % -, starting with "
            f"a letter or digit; found {name!r}.",
            hint='Example: bedside baseline add "current classifier (2024)" predictions.csv',
        )
    if name.strip() == BASELINE_LABEL:
        raise ConfigError(
            f"{name!r} is the name of the internal TF-IDF baseline; pick another name.",
            hint='Example: bedside baseline add "current classifier" predictions.csv',
        )
    return name.strip()


def _read_table(path: Path) -> tuple[Any, str]:
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"no predictions file at {path}.", hint="Pass the CSV exported from the classifier."
        )
    data = path.read_bytes()
    if len(data) > MAX_BYTES:
        raise DataError(f"{path} is {len(data):,} bytes; a predictions file may be at most 200 MB.")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (ValueError, UnicodeDecodeError) as e:  # pandas' ParserError is a ValueError
        raise DataError(
            f"{path} is not a readable CSV file: {e}.",
            hint="Expected a header line such as 'row_id,label' and one line per holdout row.",
        ) from None
    return df, hashlib.sha256(data).hexdigest()


def _label_column(columns: Sequence[str], label_col: str | None) -> str:
    if label_col is not None:
        if label_col not in columns:
            raise DataError(
                f"the predictions have no column {label_col!r}; columns are: {', '.join(columns)}.",
                hint="Pass --label-col with one of those names.",
            )
        return label_col
    found = [c for c in LABEL_COLUMNS if c in columns]
    if not found:
        raise DataError(
            f"expected a column with the predicted class ({', '.join(LABEL_COLUMNS)}); columns are: "
            f"{', '.join(columns)}.",
            hint="Rename the column or pass --label-col NAME.",
        )
    return found[0]


def _check_version(df: Any, corpus: Corpus) -> None:
    if VERSION_COLUMN not in df.columns:
        return
    stated = sorted({str(v).strip() for v in df[VERSION_COLUMN]} - {""})
    if len(stated) != 1 or len(stated[0]) < 7 or not corpus.hash.startswith(stated[0]):
        raise DataError(
            f"the predictions are for corpus version {_examples(stated) or 'none'}, not for "
            f"{corpus.hash[:12]} (the version being scored).",
            hint="Export the classifier's predictions on this version's holdout, or register them on "
            "their own version with --version.",
        )


def _class_names(values: Sequence[str], corpus: Corpus) -> list[str]:
    """Each value as a workspace class name; a value may be the class's name or its id."""
    by_name = {c.name: c.name for c in corpus.classes}
    by_id = {c.id: c.name for c in corpus.classes}
    unknown = sorted({v for v in values if v not in by_name and v not in by_id})
    if unknown:
        known = ", ".join(f"{c.id}={c.name}" for c in corpus.classes)
        raise DataError(
            f"predicted classes {_examples(unknown)} are neither class names nor class ids of this "
            f"workspace; the classes are: {known}.",
            hint="Map the classifier's labels onto the workspace classes before registering.",
        )
    return [by_name.get(v) or by_id[v] for v in values]


def _other_version(ws: Workspace, ids: set[str], corpus: Corpus) -> str | None:
    """The hash of another stored version whose holdout these row ids are, if any."""
    import pandas as pd

    t = schema.corpus_versions
    with ws.store.read() as conn:
        rows = conn.execute(select(t.c.hash, t.c.path).where(t.c.id != corpus.version_id)).all()
    for digest, rel in rows:
        path = ws.root / rel / "holdout.parquet"
        if path.is_file() and set(pd.read_parquet(path, columns=["row_id"])["row_id"]) == ids:
            return str(digest)
    return None


def read_predictions(
    ws: Workspace, path: Path, corpus: Corpus, label_col: str | None = None
) -> BaselinePredictions:
    """Read and check a predictions CSV against ``corpus``'s holdout; DataError names the reason."""
    df, digest = _read_table(path)
    columns = [str(c) for c in df.columns]
    if "row_id" not in columns:
        raise DataError(
            f"the predictions have no 'row_id' column; columns are: {', '.join(columns)}.",
            hint="The first line must name the columns, e.g. 'row_id,label'.",
        )
    column = _label_column(columns, label_col)
    if df.empty:
        raise DataError(f"{path} has a header but no rows; expected one row per holdout row.")
    _check_version(df, corpus)
    ids = [str(v).strip() for v in df["row_id"]]
    values = [str(v).strip() for v in df[column]]
    dupes = sorted(r for r, n in Counter(ids).items() if n > 1)
    if dupes:
        raise DataError(
            f"row ids {_examples(dupes)} appear more than once; expected one prediction per row."
        )
    blank = [r for r, v in zip(ids, values, strict=True) if not v]
    if blank:
        raise DataError(
            f"rows {_examples(blank)} have an empty {column!r}; every row needs a class."
        )
    holdout = [str(r) for r in corpus.holdout["row_id"]]
    wanted, given = set(holdout), set(ids)
    unknown = sorted(given - wanted)
    missing = [r for r in holdout if r not in given]
    if unknown or missing:
        train = given & {str(r) for r in corpus.train["row_id"]}
        parts = []
        if unknown:
            parts.append(
                f"{len(unknown)} row id(s) are not holdout rows of corpus version {corpus.hash[:12]} "
                f"({_examples(unknown)}"
                + (f"; {len(train)} of them are training rows" if train else "")
                + ")"
            )
        if missing:
            parts.append(f"{len(missing)} holdout row(s) have no prediction ({_examples(missing)})")
        other = _other_version(ws, given, corpus)
        raise DataError(
            "; ".join(parts) + ".",
            hint=(
                f"These are the holdout rows of corpus version {other[:12]}: register them there with "
                f"--version {other[:12]}, or export predictions for {corpus.hash[:12]}."
                if other
                else "Export one prediction for every holdout row (`bedside data show` names the version)."
            ),
        )
    names = _class_names(values, corpus)
    order = {r: i for i, r in enumerate(ids)}
    return BaselinePredictions(
        row_ids=holdout,
        labels=[names[order[r]] for r in holdout],
        label_column=column,
        sha256=digest,
    )


def current_baselines(ws: Workspace, corpus_version_id: int | None = None) -> list[dict[str, Any]]:
    """Registered current-classifier baselines, oldest first (optionally of one version)."""
    t = schema.baselines
    q = select(t).where(t.c.kind == CURRENT_KIND).order_by(t.c.id)
    if corpus_version_id is not None:
        q = q.where(t.c.corpus_version_id == corpus_version_id)
    with ws.store.read() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


def add_current_baseline(
    ws: Workspace,
    name: str,
    path: Path,
    *,
    version: int | str | None = None,
    label_col: str | None = None,
    replace: bool = False,
    actor: str = "owner",
) -> int:
    """Register the current classifier's holdout predictions as a baseline; returns the result id.

    ``version`` picks the corpus version (default: the active one). A name already registered on
    that version is refused unless ``replace`` (the new registration is then the one shown).

    >>> add_current_baseline(ws, "current classifier", Path("pred.csv"))  # doctest: +SKIP
    12
    """
    from bedside.data.corpus import load_corpus

    name = check_name(name)
    corpus = load_corpus(ws, version)
    if not replace and any(b["name"] == name for b in current_baselines(ws, corpus.version_id)):
        raise ConfigError(
            f"a baseline named {name!r} is already registered on corpus version {corpus.hash[:12]}.",
            hint="Pass --replace to score the new predictions under that name, or pick another name.",
        )
    preds = read_predictions(ws, Path(path), corpus, label_col)
    probs = preds.probs(corpus.class_names)
    metrics = score_on_holdout(corpus, probs, resamples=ws.policy().bootstrap_resamples)
    source = {
        "file": Path(path).name,
        "sha256": preds.sha256,
        "rows": len(preds.row_ids),
        "label_column": preds.label_column,
    }

    def register(conn: Connection, result_id: int) -> None:
        conn.execute(
            schema.baselines.insert().values(
                name=name,
                kind=CURRENT_KIND,
                corpus_version_id=corpus.version_id,
                result_id=result_id,
                source=source,
                created_at=utcnow(),
            )
        )

    return record_result(
        ws,
        corpus=corpus,
        phase=0,
        model_label=name,
        metrics=metrics,
        provenance={
            "bundle_hash": None,
            "baseline": CURRENT_KIND,
            "recipe": {"model": "owner-supplied predictions", **source},
            "tier": "trusted",  # predictions only: nothing runs
        },
        probs=probs,
        row_ids=preds.row_ids,
        actor=actor,
        on_recorded=register,
    )
