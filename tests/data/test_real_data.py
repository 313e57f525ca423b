"""The real dev corpus from ../shared (skipped where it is absent)."""

from __future__ import annotations

from pathlib import Path

from bedside.data.corpus import load_corpus
from bedside.data.ingest import add_corpus
from bedside.workspace import Workspace


def test_dev_csv_intake(ws: Workspace, shared_data: Path) -> None:
    r = add_corpus(ws, shared_data / "dev.csv", labels=shared_data / "labels.csv", seed=0)
    assert r["n_train"] + r["n_holdout"] == 1888
    assert [c["name"] for c in r["classes"]] == [
        "neoplasms",
        "digestive system diseases",
        "nervous system diseases",
        "cardiovascular diseases",
        "general pathological conditions",
    ]
    dup = r["report"]["intake"]["duplicates"]
    assert dup["conflicting_groups"] > 0 and dup["conflicting_rows"] > dup["conflicting_groups"]
    assert dup["crossing_groups"] == 0
    c = load_corpus(ws)
    assert not set(c.train["group"]) & set(c.holdout["group"])
    eda = r["report"]["eda"]
    assert eda["rows"]["total"] == 1888
    assert [x["total"] for x in eda["classes"]] == [417, 192, 246, 402, 631]
    lo, hi = eda["length_terciles"]
    assert 100 < lo < hi < 300
    # holdout class counts within one row of 20 % where duplicate groups allow
    for x in eda["classes"]:
        assert abs(x["holdout"] - 0.2 * x["total"]) <= 2
