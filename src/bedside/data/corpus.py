"""A stored corpus version and how to read it back.

On disk (``WS/corpora/HASH/``, files mode 0600)::

    train.parquet     row_id, text, label, group
    holdout.parquet   row_id, text, label, group
    classes.json      [{"id": "1", "name": "neoplasms", "description": "..."}]

``label`` holds the class *name*. ``group`` is the duplicate-group key (sha1 of the normalised
text): rows sharing it always sit on the same side of a split.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import select

from bedside.errors import NotFoundError
from bedside.store import schema

if TYPE_CHECKING:
    from bedside.workspace import Workspace

_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def normalise_text(text: str) -> str:
    """Lowercase and collapse every run of non-alphanumerics to one space (duplicate detection)."""
    return _NON_ALNUM.sub(" ", str(text).lower()).strip()


def group_key(text: str) -> str:
    return hashlib.sha1(normalise_text(text).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ClassInfo:
    id: str
    name: str
    description: str

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "description": self.description}


@dataclass
class Corpus:
    version_id: int
    hash: str
    path: Path
    classes: list[ClassInfo]
    train: pd.DataFrame
    holdout: pd.DataFrame
    meta: dict[str, Any]

    @property
    def class_names(self) -> list[str]:
        return [c.name for c in self.classes]


def write_version_files(
    dest: Path, train: pd.DataFrame, holdout: pd.DataFrame, classes: list[ClassInfo]
) -> None:
    """Write a version's files, readable by the owner only."""
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    cols = ["row_id", "text", "label", "group"]
    for name, df in (("train", train), ("holdout", holdout)):
        p = dest / f"{name}.parquet"
        # Row ids are strings everywhere (job inputs, predictions files, the scorer).
        df[cols].astype({"row_id": str}).to_parquet(p, index=False)
        p.chmod(0o600)
    cj = dest / "classes.json"
    cj.write_text(json.dumps([c.to_dict() for c in classes], indent=1))
    cj.chmod(0o600)


def load_corpus(ws: Workspace, version: int | str | None = None) -> Corpus:
    """Load the active corpus version, or one by id or hash (prefix)."""
    t = schema.corpus_versions
    q = select(t)
    if version is None:
        q = q.where(t.c.active.is_(True))
    elif isinstance(version, int) or str(version).isdigit():
        q = q.where(t.c.id == int(version))
    else:
        q = q.where(t.c.hash.startswith(str(version)))
    with ws.store.read() as conn:
        row = conn.execute(q.order_by(t.c.id.desc())).mappings().first()
    if row is None:
        what = "an active corpus" if version is None else f"corpus version {version!r}"
        raise NotFoundError(
            f"the workspace has no {what}.", hint="Add one with `bedside data add FILE`."
        )
    path = ws.root / row["path"]
    classes = [ClassInfo(**c) for c in row["classes"]]
    return Corpus(
        version_id=row["id"],
        hash=row["hash"],
        path=path,
        classes=classes,
        train=pd.read_parquet(path / "train.parquet"),
        holdout=pd.read_parquet(path / "holdout.parquet"),
        meta=dict(row),
    )


def list_versions(ws: Workspace) -> list[dict[str, Any]]:
    """Every stored version, oldest first, without the (large) report: id, hash, parent, counts, state."""
    t = schema.corpus_versions
    cols = [
        t.c.id,
        t.c.hash,
        t.c.parent_id,
        t.c.created_at,
        t.c.n_train,
        t.c.n_holdout,
        t.c.classes,
        t.c.split,
        t.c.active,
    ]
    with ws.store.read() as conn:
        rows = [dict(r) for r in conn.execute(select(*cols).order_by(t.c.id)).mappings()]
    for r in rows:
        r["n_classes"] = len(r.pop("classes"))
        r["split"] = r["split"].get("method")
    return rows
