from __future__ import annotations

import json
import stat
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select

from bedside.data.corpus import group_key, list_versions, load_corpus
from bedside.data.ingest import add_corpus
from bedside.store import audit, schema
from bedside.workspace import Workspace


def _write(df: pd.DataFrame, path: Path) -> Path:
    fmt = path.suffix
    if fmt == ".csv":
        df.to_csv(path, index=False)
    elif fmt == ".tsv":
        df.to_csv(path, index=False, sep="\t")
    elif fmt == ".jsonl":
        df.to_json(path, orient="records", lines=True)
    else:
        df.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_add_each_format(ws: Workspace, tmp_path: Path, suffix: str, make_frame) -> None:
    p = _write(make_frame({"b": 20, "a": 30}), tmp_path / f"corpus{suffix}")
    r = add_corpus(ws, p)
    assert (r["n_train"], r["n_holdout"]) == (40, 10)
    assert [c["name"] for c in r["classes"]] == ["a", "b"]  # string labels: sorted names
    c = load_corpus(ws)
    assert c.hash == r["hash"] and list(c.train.columns) == ["row_id", "text", "label", "group"]
    assert set(c.holdout["label"]) == {"a", "b"}
    assert (c.holdout["label"] == "a").sum() == 6
    for f in c.path.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert c.meta["path"] == f"corpora/{r['hash']}"  # relative to the workspace root


def test_numeric_ids_with_names_and_descriptions(ws: Workspace, tmp_path: Path, make_frame) -> None:
    df = make_frame({"2": 10, "10": 10})
    df.to_csv(tmp_path / "c.csv", index=False)
    (tmp_path / "labels.csv").write_text(
        "id,name,description\n10,tenth,the tenth class\n2,second,\n"
    )
    r = add_corpus(ws, tmp_path / "c.csv", labels=tmp_path / "labels.csv")
    assert r["classes"] == [
        {"id": "2", "name": "second", "description": "second"},
        {"id": "10", "name": "tenth", "description": "the tenth class"},
    ]
    assert set(load_corpus(ws).train["label"]) == {"second", "tenth"}
    (tmp_path / "desc.csv").write_text("name,description\nsecond,described\n")
    r2 = add_corpus(
        ws, tmp_path / "c.csv", labels=tmp_path / "labels.csv", descriptions=tmp_path / "desc.csv"
    )
    assert r2["classes"][0]["description"] == "described" and not r2["existing"]


def test_fixed_holdout_is_kept_exactly(ws: Workspace, tmp_path: Path, make_frame) -> None:
    train = make_frame({"a": 12, "b": 8})
    hold = make_frame({"a": 3, "b": 2}, seed_tag="h")
    train.to_csv(tmp_path / "train.csv", index=False)
    hold.to_csv(tmp_path / "hold.csv", index=False)
    r = add_corpus(ws, tmp_path / "train.csv", holdout=tmp_path / "hold.csv")
    c = load_corpus(ws)
    assert sorted(c.holdout["text"]) == sorted(hold["text"])
    assert sorted(c.train["text"]) == sorted(train["text"])
    assert (
        r["split"]["method"] == "fixed"
        and r["report"]["intake"]["duplicates"]["crossing_groups"] == 0
    )
    # A text on both sides of a fixed split is kept where the owner put it, and counted.
    pd.concat([hold, train.iloc[:1]]).to_csv(tmp_path / "hold2.csv", index=False)
    r2 = add_corpus(ws, tmp_path / "train.csv", holdout=tmp_path / "hold2.csv")
    assert r2["n_holdout"] == 6 and r2["report"]["intake"]["duplicates"]["crossing_groups"] == 1


def test_duplicates_reported_and_kept_on_one_side(
    ws: Workspace, tmp_path: Path, make_frame
) -> None:
    df = make_frame({"a": 20, "b": 20})
    dup = pd.DataFrame({"text": [df.text[0].upper(), df.text[0] + " !"], "label": ["a", "b"]})
    pd.concat([df, dup]).to_csv(tmp_path / "c.csv", index=False)
    r = add_corpus(ws, tmp_path / "c.csv")
    d = r["report"]["intake"]["duplicates"]
    assert d == {
        "duplicate_rows": 2,
        "duplicate_groups": 1,
        "conflicting_rows": 3,
        "conflicting_groups": 1,
        "crossing_groups": 0,
    }
    c = load_corpus(ws)
    g = group_key(df.text[0])
    assert (c.train["group"] == g).sum() in (0, 3) and (c.holdout["group"] == g).sum() in (0, 3)


def test_versions_chain_and_identical_content(ws: Workspace, small_csv: Path) -> None:
    r1 = add_corpus(ws, small_csv, seed=0)
    r2 = add_corpus(ws, small_csv, seed=1)
    assert r2["hash"] != r1["hash"] and r2["parent_id"] == r1["version_id"]
    vs = list_versions(ws)
    assert [v["active"] for v in vs] == [False, True]
    assert (ws.root / "corpora" / r1["hash"] / "train.parquet").exists()  # old files intact
    again = add_corpus(ws, small_csv, seed=1)
    assert again["existing"] and again["version_id"] == r2["version_id"]
    assert "already" in again["message"] and len(list_versions(ws)) == 2
    back = add_corpus(ws, small_csv, seed=0)  # re-adding an old version makes it active again
    assert back["existing"] and load_corpus(ws).version_id == r1["version_id"]


def test_append_keeps_sides_of_known_groups(
    ws: Workspace, small_csv: Path, tmp_path: Path, make_frame
) -> None:
    r1 = add_corpus(ws, small_csv)
    before = load_corpus(ws)
    held_text = before.holdout["text"].iloc[0]
    new = make_frame({"a": 10, "b": 10}, seed_tag="new")
    new = pd.concat([new, pd.DataFrame({"text": [held_text.lower()], "label": ["a"]})])
    new.to_csv(tmp_path / "more.csv", index=False)
    r2 = add_corpus(ws, tmp_path / "more.csv", append=True)
    after = load_corpus(ws)
    assert r2["parent_id"] == r1["version_id"] and r2["split"]["method"] == "append"
    assert len(after.train) + len(after.holdout) == 60 + 21
    assert (after.holdout["group"] == group_key(held_text)).sum() == 2
    assert set(before.train["row_id"]) <= set(after.train["row_id"])
    assert (
        after.holdout["row_id"].is_unique
        and max(after.holdout["row_id"].astype(int).max(), after.train["row_id"].astype(int).max())
        == 80
    )
    assert not set(after.train["group"]) & set(after.holdout["group"])


def test_append_unknown_class(ws: Workspace, small_csv: Path, tmp_path: Path, make_frame) -> None:
    from bedside.errors import DataError

    add_corpus(ws, small_csv)
    make_frame({"zzz": 3}).to_csv(tmp_path / "more.csv", index=False)
    with pytest.raises(DataError, match="labels not in the active corpus: 'zzz'"):
        add_corpus(ws, tmp_path / "more.csv", append=True)


def test_audit_and_report_hold_no_text(ws: Workspace, small_csv: Path) -> None:
    r = add_corpus(ws, small_csv)
    entries = audit.entries(ws.store)
    assert entries[-1]["action"] == "corpus.add" and entries[-1]["payload"]["hash"] == r["hash"]
    assert audit.verify(ws.store)[0]
    with ws.store.read() as conn:
        row = conn.execute(select(schema.corpus_versions)).mappings().one()
    stored = json.dumps([dict(row), entries], default=str)
    texts = pd.read_csv(small_csv)["text"]
    assert not any(t in stored for t in texts)
    assert "abstract" not in stored  # not even a fragment of one
    assert row["report"]["eda"]["length_terciles"] == row["report"]["length_terciles"]
