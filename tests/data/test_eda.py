"""EDA numbers on a hand-made corpus, checked against values computed by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from bedside.data.corpus import load_corpus
from bedside.data.eda import compute_eda, eda_from_frames, hist_edges
from bedside.data.ingest import add_corpus
from bedside.workspace import Workspace


def _text(n: int, tag: str) -> str:
    return " ".join(f"{tag}{i}" for i in range(n))


@pytest.fixture
def hand(make_framed):  # type: ignore[no-untyped-def]
    # Words: class A train 1,2,3,4 / holdout 5; class B train 10,20 / holdout 30.
    train = make_framed(
        [_text(n, "a") for n in (1, 2, 3, 4)] + [_text(n, "b") for n in (10, 20)], [*"AAAA", *"BB"]
    )
    hold = make_framed([_text(5, "a"), _text(30, "b")], ["A", "B"])
    return train, hold


def test_hand_computed_numbers(hand) -> None:  # type: ignore[no-untyped-def]
    eda = eda_from_frames(*hand, ["A", "B"], k=1)
    assert eda["rows"] == {"train": 6, "holdout": 2, "total": 8}
    assert eda["classes"] == [
        {"name": "A", "train": 4, "holdout": 1, "total": 5, "share_pct": 62.5},
        {"name": "B", "train": 2, "holdout": 1, "total": 3, "share_pct": 37.5},
    ]
    assert eda["share_sd_pp"] == 12.5  # population sd of (62.5, 37.5)
    w = eda["lengths"]["words"]["overall"]
    # 1,2,3,4,5,10,20,30: mean 75/8; sd sqrt(751.875/7); numpy's linear percentiles.
    assert (w["n"], w["mean"], w["sd"]) == (8, 9.4, 10.4)
    assert (w["p10"], w["p50"], w["p75"], w["p90"]) == (1.7, 4.5, 12.5, 23.0)
    assert (w["min"], w["max"]) == (0, 30)  # rounded outwards to 10 words
    assert w["hist"]["edges"][:3] == [0, 2, 4] and sum(w["hist"]["counts"]) == 8
    a = eda["lengths"]["words"]["per_class"]["A"]
    assert (a["n"], a["mean"], a["sd"], a["p50"], a["max"]) == (5, 3.0, 1.6, 3.0, 10)
    # chars of "a0 a1 a2" = 8: the words "aI" are 2 chars + spaces
    assert eda["lengths"]["chars"]["per_class"]["A"]["mean"] == pytest.approx(
        (2 + 5 + 8 + 11 + 14) / 5, abs=0.05
    )
    assert eda["length_terciles"] == [13, 22]  # holdout words 5 and 30
    assert eda["duplicates"]["conflicting_groups"] == 0


def test_small_class_is_suppressed(make_framed) -> None:  # type: ignore[no-untyped-def]
    labels = ["big"] * 40 + ["mid"] * 30 + ["small"] * 3
    texts = [_text(5 + i % 9, f"{lab}{i}x") for i, lab in enumerate(labels)]
    train = make_framed(texts[:60], labels[:60])
    hold = make_framed(texts[60:], labels[60:])
    eda = eda_from_frames(train, hold, ["big", "mid", "small"], k=10)
    small = eda["classes"][2]
    assert small["total"] == "<10" and small["train"] == "<10" and small["share_pct"] is None
    assert eda["lengths"]["words"]["per_class"]["small"] == {"n": "<10", "suppressed": True}
    # One hidden total could be recovered from the shown grand total: a second one is hidden.
    assert eda["classes"][1]["total"] == ">=10" and eda["classes"][0]["total"] == 40
    assert eda["share_sd_pp"] is None
    # No row (train + holdout = total) and no column (sum = shown margin) has exactly one hidden cell.
    cells = [[c[key] for key in ("train", "holdout", "total")] for c in eda["classes"]]
    assert all(sum(isinstance(v, str) for v in row) != 1 for row in cells)
    assert all(sum(isinstance(row[j], str) for row in cells) != 1 for j in range(3))
    for st in eda["lengths"]["words"]["per_class"].values():
        assert all(c == 0 or c == "<10" or c >= 10 for c in st.get("hist", {}).get("counts", []))


def test_hist_edges_are_round() -> None:
    assert hist_edges([3, 95]) == list(range(0, 101, 5))
    assert hist_edges([451]) == list(range(0, 501, 50))


def test_stored_eda_matches_recomputed(ws: Workspace, small_csv: Path) -> None:
    r = add_corpus(ws, small_csv)
    k = ws.policy().k_anonymity
    assert r["report"]["eda"] == compute_eda(load_corpus(ws), k=k)


def test_plots(hand, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from bedside.data.plots import eda_svgs, write_eda_plots

    eda = eda_from_frames(*hand, ["A", "B"], k=3)
    svgs = eda_svgs(eda)
    assert set(svgs) == {"class_distribution", "word_length_histograms", "word_length_by_class"}
    assert all(s.startswith("<svg") and s.rstrip().endswith("</svg>") for s in svgs.values())
    paths = write_eda_plots(eda, tmp_path / "plots", fmt="png")
    assert [p.suffix for p in paths] == [".png"] * 3 and all(p.stat().st_size > 1000 for p in paths)
