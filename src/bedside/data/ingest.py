"""Corpus intake: read, validate, split and store a new corpus version.

``add_corpus`` is the one entry point (the CLI's ``bedside data add`` is a thin wrapper)::

    file(s) ─► validate (columns, encoding, texts, labels) ─► groups (normalised text)
            ─► split (fixed by --holdout, or stratified by group with a seed)
            ─► content hash ─► corpora/HASH/ (0600 files) + corpus_versions row + audit entry

Decisions:

* Rows with identical normalised text are one *group*; a group never crosses the split.
* Exact duplicates and duplicates with conflicting labels are reported, not dropped: the real
  corpus flattens multi-label abstracts into one row per label, so such rows are data, not noise.
  A conflicting group stays on one side, so a model is never scored on a text it trained on.
* The version hash covers the classes and every row's (side, label, text): adding the same
  content with the same split again returns the existing version instead of a copy.
* With ``--holdout`` the given split is kept exactly; groups that cross it are counted in the
  intake report (``crossing_groups``) so that the owner can fix the files.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from bedside.data import eda as eda_mod
from bedside.data import validate as v
from bedside.data.corpus import ClassInfo, group_key, load_corpus, write_version_files
from bedside.data.split import content_hash, place_by_group, split_by_group
from bedside.errors import ConfigError, DataError, NotFoundError
from bedside.store import audit, schema
from bedside.store.store import utcnow

if TYPE_CHECKING:
    from bedside.workspace import Workspace

COLUMNS = ["row_id", "text", "label", "group"]


def _file_info(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    return {"name": path.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _read(
    path: Path,
    text_col: str | None,
    label_col: str | None,
    names: list[ClassInfo] | None,
    names_file: str,
    hint: str | None = None,
    table: v.Table | None = None,
) -> tuple[v.Table, pd.DataFrame, list[ClassInfo], str, str]:
    """Read one file (or an already read ``table``) into ``text, label, group`` (label = class name)."""
    table = table or v.read_table(path)
    tc, lc = v.detect_columns(table, text_col, label_col)
    texts = v.check_texts(table, tc)
    raw = v.check_labels(table, lc)
    label_names, classes = v.resolve_classes(table, raw, names, names_file=names_file, hint=hint)
    df = pd.DataFrame({"text": texts.to_numpy(), "label": label_names.to_numpy()})
    df["group"] = df["text"].map(group_key)
    return table, df, classes, tc, lc


def _check_splittable(df: pd.DataFrame, classes: list[ClassInfo], where: str) -> None:
    for c in classes:
        rows = df[df["label"] == c.name]
        n_groups = rows["group"].nunique()
        if n_groups < 2:
            raise DataError(
                f"class {c.name!r} has {len(rows)} row(s) and {n_groups} distinct text(s) in {where}; "
                "a class needs at least 2 distinct texts to appear in both training and holdout.",
                hint="Add more rows of this class, or remove the class from the labels (and names file).",
            )


def _apply_descriptions(classes: list[ClassInfo], path: Path | None) -> list[ClassInfo]:
    if path is None:
        return classes
    desc = v.read_descriptions(path, [c.name for c in classes])
    return [ClassInfo(c.id, c.name, desc.get(c.name, c.description)) for c in classes]


def _split_hash(train: pd.DataFrame, holdout: pd.DataFrame) -> str:
    h = hashlib.sha256()
    for side, df in (("train", train), ("holdout", holdout)):
        for g in sorted(set(df["group"])):
            h.update(f"{side}:{g}\n".encode())
    return h.hexdigest()


def _existing(ws: Workspace, digest: str, actor: str) -> dict[str, Any] | None:
    """The version with this hash, made active if it was not; None if there is none."""
    t = schema.corpus_versions
    with ws.store.write() as conn:
        row = conn.execute(select(t).where(t.c.hash == digest)).mappings().first()
        if row is None:
            return None
        if not row["active"]:
            conn.execute(t.update().where(t.c.active.is_(True)).values(active=False))
            conn.execute(t.update().where(t.c.id == row["id"]).values(active=True))
            audit.append(conn, actor, "corpus.activate", {"version_id": row["id"], "hash": digest})
    state = "already active" if row["active"] else "made active again"
    return {
        "version_id": row["id"],
        "hash": digest,
        "existing": True,
        "parent_id": row["parent_id"],
        "n_train": row["n_train"],
        "n_holdout": row["n_holdout"],
        "classes": row["classes"],
        "split": row["split"],
        "report": row["report"],
        "message": f"identical content is already corpus version {row['id']} ({digest[:12]}); {state}.",
    }


def add_corpus(
    ws: Workspace,
    path: Path | str,
    *,
    holdout: Path | str | None = None,
    text_col: str | None = None,
    label_col: str | None = None,
    labels: Path | str | None = None,
    descriptions: Path | str | None = None,
    holdout_fraction: float = 0.2,
    seed: int = 0,
    append: bool = False,
    actor: str = "owner",
) -> dict[str, Any]:
    """Validate, split and store a corpus file as the new active version.

    Returns the version id, hash, counts, split record and the intake report (``existing`` is
    True when identical content was already stored; no copy is made then).

    >>> r = add_corpus(ws, "dev.csv", labels="labels.csv", seed=0)  # doctest: +SKIP
    >>> r["n_train"], r["n_holdout"]  # doctest: +SKIP
    (1510, 378)
    """
    path = Path(path)
    if not 0.0 < holdout_fraction < 1.0:
        raise ConfigError(f"--holdout-fraction must be between 0 and 1, got {holdout_fraction}.")
    if append and holdout is not None:
        raise ConfigError(
            "--append takes one file; its new rows are split like the active version's.",
            hint="Drop --holdout, or add the files as a new corpus without --append.",
        )
    names_file = Path(labels).name if labels else "the names file"
    names = v.read_names(labels) if labels else None
    if append:
        return _append(
            ws,
            path,
            text_col,
            label_col,
            names,
            names_file,
            descriptions,
            holdout_fraction,
            seed,
            actor,
        )

    table, df, classes, tc, lc = _read(path, text_col, label_col, names, names_file)
    classes = _apply_descriptions(classes, Path(descriptions) if descriptions else None)
    df["row_id"] = np.arange(len(df), dtype=np.int64)
    sources = [{**_file_info(path), "format": table.fmt, "rows": len(df)}]
    if holdout is not None:
        htable, hdf, _, _, _ = _read(Path(holdout), tc, lc, names, names_file)
        extra = sorted(set(hdf["label"]) - set(df["label"]))
        if extra:
            raise DataError(
                f"the holdout {htable.path.name} has class(es) the training file {table.path.name} lacks: "
                f"{', '.join(map(repr, extra))}.",
                hint="A model cannot learn a class it never sees: add training rows of these classes, "
                "or drop them from the holdout.",
            )
        missing = [c.name for c in classes if c.name not in set(df["label"])]
        if missing:
            raise DataError(
                f"class(es) {', '.join(map(repr, missing))} have no rows in {table.path.name}.",
                hint="Add training rows for them, or remove them from the names file.",
            )
        hdf["row_id"] = np.arange(len(df), len(df) + len(hdf), dtype=np.int64)
        train, hold = df, hdf
        split = {
            "method": "fixed",
            "seed": None,
            "fraction": round(len(hdf) / (len(df) + len(hdf)), 4),
        }
        sources.append(
            {**_file_info(Path(holdout)), "format": htable.fmt, "rows": len(hdf), "role": "holdout"}
        )
    else:
        _check_splittable(df, classes, table.path.name)
        mask = split_by_group(df["label"].tolist(), df["group"].tolist(), holdout_fraction, seed)
        train, hold = df[~mask], df[mask]
        split = {"method": "stratified-group", "seed": seed, "fraction": holdout_fraction}
    source = {
        "files": sources,
        "text_col": tc,
        "label_col": lc,
        "labels_file": names_file if labels else None,
    }
    return _store(ws, train, hold, classes, split, source, parent_hash=None, actor=actor)


def _append(
    ws: Workspace,
    path: Path,
    text_col: str | None,
    label_col: str | None,
    names: list[ClassInfo] | None,
    names_file: str,
    descriptions: Path | str | None,
    fraction: float,
    seed: int,
    actor: str,
) -> dict[str, Any]:
    try:
        active = load_corpus(ws)
    except NotFoundError:
        raise DataError(
            "--append adds rows to the active corpus, but the workspace has none.",
            hint="Add the file without --append first.",
        ) from None
    src = active.meta["source"]
    table = v.read_table(path)
    # Reuse the active version's column names where the new file has them.
    if text_col is None and src.get("text_col") in table.df.columns:
        text_col = src["text_col"]
    if label_col is None and src.get("label_col") in table.df.columns:
        label_col = src["label_col"]
    lookup = names or active.classes
    keep = "--append keeps the classes; add a new corpus (without --append) to change them."
    table, df, _, tc, lc = _read(
        path,
        text_col,
        label_col,
        lookup,
        names_file if names else "the active corpus",
        hint=keep,
        table=table,
    )
    classes = _apply_descriptions(active.classes, Path(descriptions) if descriptions else None)
    unknown = sorted(set(df["label"]) - set(active.class_names))
    if unknown:  # a names file given with --append may name classes the corpus lacks
        raise DataError(
            f"{table.path.name} has class(es) the active corpus lacks: {', '.join(map(repr, unknown))}.",
            hint=keep,
        )
    start = (
        int(
            max(
                active.train["row_id"].astype(int).max(), active.holdout["row_id"].astype(int).max()
            )
        )
        + 1
    )
    df["row_id"] = np.arange(start, start + len(df), dtype=np.int64)
    known = {g: False for g in active.train["group"]} | {g: True for g in active.holdout["group"]}
    mask = place_by_group(df["group"].tolist(), df["label"].tolist(), known, fraction, seed)
    train = pd.concat([active.train[COLUMNS], df[~mask][COLUMNS]], ignore_index=True)
    hold = pd.concat([active.holdout[COLUMNS], df[mask][COLUMNS]], ignore_index=True)
    split = {
        "method": "append",
        "seed": seed,
        "fraction": fraction,
        "base": active.meta["split"],
        "appended_rows": len(df),
        "appended_to_holdout": int(mask.sum()),
    }
    files = [
        *src.get("files", []),
        {**_file_info(path), "format": table.fmt, "rows": len(df), "role": "append"},
    ]
    source = {**src, "files": files}
    return _store(ws, train, hold, classes, split, source, parent_hash=active.hash, actor=actor)


def _store(
    ws: Workspace,
    train: pd.DataFrame,
    hold: pd.DataFrame,
    classes: list[ClassInfo],
    split: dict[str, Any],
    source: dict[str, Any],
    *,
    parent_hash: str | None,
    actor: str,
) -> dict[str, Any]:
    train = train[COLUMNS].reset_index(drop=True)
    hold = hold[COLUMNS].reset_index(drop=True)
    digest = content_hash(train, hold, classes)
    found = _existing(ws, digest, actor)
    if found is not None:
        return found
    split = {
        **split,
        "split_hash": _split_hash(train, hold),
        "n_groups": int(pd.concat([train, hold])["group"].nunique()),
    }
    k = ws.policy().k_anonymity
    eda = eda_mod.eda_from_frames(train, hold, [c.name for c in classes], k)
    dup = eda_mod.duplicate_counts(train, hold)
    intake = {
        "rows": len(train) + len(hold),
        "classes": len(classes),
        "duplicates": dup,
        "duplicate_policy": "kept; identical texts stay on one side of the split",
        "holdout_classes_missing": [c.name for c in classes if c.name not in set(hold["label"])],
    }
    report = {"intake": intake, "eda": eda, "length_terciles": eda["length_terciles"]}
    dest = ws.corpora_dir / digest
    created = not dest.exists()
    write_version_files(dest, train, hold, classes)
    t = schema.corpus_versions
    try:
        with ws.store.write() as conn:
            parent_id = conn.execute(select(t.c.id).where(t.c.active.is_(True))).scalar()
            conn.execute(t.update().where(t.c.active.is_(True)).values(active=False))
            res = conn.execute(
                t.insert().values(
                    hash=digest,
                    parent_id=parent_id,
                    created_at=utcnow(),
                    path=str(dest.relative_to(ws.root)),
                    n_train=len(train),
                    n_holdout=len(hold),
                    classes=[c.to_dict() for c in classes],
                    split=split,
                    source=source,
                    report=report,
                    active=True,
                )
            )
            version_id = int(res.inserted_primary_key[0])  # type: ignore[index]
            audit.append(
                conn,
                actor,
                "corpus.add",
                {
                    "version_id": version_id,
                    "hash": digest,
                    "parent_id": parent_id,
                    "n_train": len(train),
                    "n_holdout": len(hold),
                    "classes": len(classes),
                    "split": split["method"],
                    "duplicate_groups": dup["duplicate_groups"],
                    "conflicting_groups": dup["conflicting_groups"],
                },
            )
    except Exception:
        if created:
            shutil.rmtree(dest, ignore_errors=True)
        raise
    via = f" (appended to {parent_hash[:12]})" if parent_hash else ""
    return {
        "version_id": version_id,
        "hash": digest,
        "existing": False,
        "parent_id": parent_id,
        "n_train": len(train),
        "n_holdout": len(hold),
        "classes": [c.to_dict() for c in classes],
        "split": split,
        "report": report,
        "message": f"added corpus version {version_id} ({digest[:12]}){via}; it is now active.",
    }
