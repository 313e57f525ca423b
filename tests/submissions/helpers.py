"""Helpers for intake tests: edit bundles, rewrite safetensors headers, store a tiny corpus."""

from __future__ import annotations

import json
import struct
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import tomli_w

from bedside.data.corpus import ClassInfo, group_key, write_version_files
from bedside.store import schema
from bedside.store.store import utcnow
from bedside.testing.tinymodels import DEFAULT_CLASSES
from bedside.workspace import Workspace

_WORDS = {
    "neoplasms": "tumour carcinoma chemotherapy metastasis malignant",
    "digestive system diseases": "colon liver gastric bowel hepatic",
    "nervous system diseases": "seizure stroke neuropathy brain epilepsy",
    "cardiovascular diseases": "cardiac heart artery hypertension coronary",
    "general pathological conditions": "infection inflammation fever sepsis syndrome",
}


def edit_manifest(bundle: Path, name: str | None = None, **changes: Any) -> None:
    m = tomllib.loads((bundle / "bedside.toml").read_text())
    if name:
        m["name"] = name
    for key, val in changes.items():
        if isinstance(val, dict) and isinstance(m.get(key), dict):
            m[key].update(val)
        else:
            m[key] = val
    (bundle / "bedside.toml").write_text(tomli_w.dumps(m))


def edit_json(path: Path, fn: Callable[[Any], Any]) -> None:
    data = json.loads(path.read_text())
    out = fn(data)
    path.write_text(json.dumps(data if out is None else out))


def read_st(path: Path) -> tuple[dict[str, Any], bytes]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def write_st(
    path: Path, header: dict[str, Any] | bytes, data: bytes, length: int | None = None
) -> None:
    hb = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(hb) if length is None else length) + hb + data)


def _texts(n_per_class: int, offset: int) -> pd.DataFrame:
    rows = []
    for ci, (cls, words) in enumerate(_WORDS.items()):
        for i in range(n_per_class):
            text = f"patients study {words} case {offset + i} cohort {ci} " * 2
            rows.append(
                {
                    "row_id": f"r{offset}-{ci}-{i}",
                    "text": text,
                    "label": cls,
                    "group": group_key(text),
                }
            )
    return pd.DataFrame(rows)


def add_corpus(ws: Workspace, n_train_per_class: int = 8, n_holdout_per_class: int = 2) -> int:
    """Store a tiny active corpus version directly (no data-intake code needed)."""
    classes = [
        ClassInfo(id=str(i + 1), name=c, description=f"abstracts about {c}")
        for i, c in enumerate(DEFAULT_CLASSES)
    ]
    train = _texts(n_train_per_class, 0)
    holdout = _texts(n_holdout_per_class, 1000)
    digest = "c0ffee" + "0" * 58
    dest = ws.corpora_dir / digest
    write_version_files(dest, train, holdout, classes)
    with ws.store.write() as conn:
        conn.execute(schema.corpus_versions.update().values(active=False))
        res = conn.execute(
            schema.corpus_versions.insert().values(
                hash=digest,
                parent_id=None,
                created_at=utcnow(),
                path=str(dest.relative_to(ws.root)),
                n_train=len(train),
                n_holdout=len(holdout),
                classes=[c.to_dict() for c in classes],
                split={"seed": 0},
                source={"files": ["synthetic"]},
                report={},
                active=True,
            )
        )
        pk = res.inserted_primary_key
        assert pk is not None
        return int(pk[0])
