"""Claims beside measured scores, the current classifier's row, the freeze at the close, impact."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bedside.auth import OWNER, Principal
from bedside.config import Policy
from bedside.data.corpus import load_corpus
from bedside.evaluation.baseline import score_on_holdout
from bedside.evaluation.current import add_current_baseline
from bedside.evaluation.results import record_result
from bedside.leaderboard import build_leaderboard, impact_rows
from bedside.leaderboard.claims import claim_columns
from bedside.leaderboard.freeze import FINAL_KEY, final_ranking
from bedside.leaderboard.impact import status_quo_first
from bedside.store import audit, schema
from bedside.store.store import utcnow
from bedside.workspace import Workspace
from tests.evaluation.conftest import add_corpus, synthetic_frame
from tests.store.seed import insert_contributor

UTC = dt.UTC


# -- pure: the claim gap and its marker -----------------------------------------------------
def test_gap_is_claimed_minus_phase1_and_flags_above_threshold() -> None:
    c = claim_columns(0.92, 0.55, [0.50, 0.60], threshold=0.10)
    assert c.claim_gap == pytest.approx(0.37) and c.claim_flagged
    assert any("gap 0.370 > 0.100" in r for r in c.claim_reasons)
    assert any("outside the phase-1 95 % CI" in r for r in c.claim_reasons)


def test_gap_at_the_threshold_inside_the_ci_is_not_flagged() -> None:
    c = claim_columns(0.70, 0.60, [0.55, 0.72], threshold=0.10)
    assert c.claim_gap == pytest.approx(0.10) and not c.claim_flagged and c.claim_reasons == []


def test_small_gap_but_claim_outside_the_ci_is_flagged() -> None:
    c = claim_columns(0.66, 0.60, [0.57, 0.63], threshold=0.10)
    assert c.claim_flagged and c.claim_reasons == [
        "claim outside the phase-1 95 % CI [0.570, 0.630]"
    ]


def test_a_modest_claim_below_the_score_is_not_flagged() -> None:
    c = claim_columns(0.58, 0.60, [0.55, 0.65], threshold=0.10)
    assert c.claim_gap == pytest.approx(-0.02) and not c.claim_flagged


def test_no_claim_or_no_phase1_gives_no_gap() -> None:
    assert claim_columns(None, 0.6, [0.5, 0.7], 0.1).claim_gap is None
    c = claim_columns(0.9, None, None, 0.1)
    assert c.claimed_macro_f1 == 0.9 and c.claim_gap is None and not c.claim_flagged


def test_status_quo_is_moved_first_and_only_the_newest_is_it() -> None:
    rows: list[dict[str, Any]] = [
        {"result_id": 5, "status_quo": False, "model": "vendor"},
        {"result_id": 2, "status_quo": True, "model": "old classifier"},
        {"result_id": 7, "status_quo": True, "model": "current classifier"},
    ]
    out = status_quo_first(rows)
    assert [r["model"] for r in out] == ["current classifier", "vendor", "old classifier"]
    assert [r["status_quo"] for r in out] == [True, False, False]


# -- a constructed leaderboard ----------------------------------------------------------------
@pytest.fixture
def board_ws(ws: Workspace) -> Workspace:
    add_corpus(ws, synthetic_frame(200, 1, "t"), synthetic_frame(150, 2, "h"))
    return ws


def _noisy(ws: Workspace, accuracy: float, seed: int) -> np.ndarray:
    corpus = load_corpus(ws)
    names = corpus.class_names
    rng = np.random.default_rng(seed)
    out = np.zeros((len(corpus.holdout), len(names)))
    for i, y in enumerate(corpus.holdout["label"]):
        j = names.index(y) if rng.random() < accuracy else (names.index(y) + 1) % len(names)
        out[i, j] = 1.0
    return out


def _vendor(ws: Workspace, name: str, manifest: dict[str, Any], accuracy: float, seed: int) -> int:
    """A contributor with one submission and a scored phase-1 result; returns the contributor id."""
    corpus = load_corpus(ws)
    with ws.store.write() as conn:
        cid = insert_contributor(conn, name)
        sid = conn.execute(
            schema.submissions.insert().values(
                contributor_id=cid,
                bundle_hash=name[0] * 64,
                name=f"{name} model",
                kind="encoder",
                status="done",
                counted=True,
                corpus_version_id=corpus.version_id,
                created_at=utcnow(),
                manifest=manifest,
                estimate={},
                meta={},
            )
        ).inserted_primary_key[0]
    probs = _noisy(ws, accuracy, seed)
    record_result(
        ws,
        corpus=corpus,
        phase=1,
        model_label=f"{name} model",
        metrics=score_on_holdout(corpus, probs, resamples=200),
        provenance={},
        probs=probs,
        row_ids=[str(r) for r in corpus.holdout["row_id"]],
        submission_id=int(sid),
    )
    return int(cid)


def _current(ws: Workspace, tmp_path: Path, accuracy: float = 0.75) -> int:
    corpus = load_corpus(ws)
    names = corpus.class_names
    probs = _noisy(ws, accuracy, 9)
    df = pd.DataFrame(
        {"row_id": list(corpus.holdout["row_id"]), "label": [names[i] for i in probs.argmax(1)]}
    )
    path = tmp_path / "current.csv"
    df.to_csv(path, index=False)
    return add_current_baseline(ws, "current classifier", path)


def test_constructed_board_shows_claims_gap_and_marker(board_ws: Workspace) -> None:
    _vendor(board_ws, "overclaim", {"claimed_macro_f1": 0.99, "claim_source": "bench"}, 0.5, 1)
    _vendor(board_ws, "honest", {"claimed_macro_f1": 0.80}, 0.85, 2)
    _vendor(board_ws, "silent", {}, 0.7, 3)
    board = build_leaderboard(board_ws, OWNER)
    by = {r["vendor"]: r for r in board["rows"]}
    over, honest, silent = by["overclaim"], by["honest"], by["silent"]
    assert over["claim_gap"] == pytest.approx(0.99 - over["phase1_macro_f1"], abs=2e-3)
    assert over["claim_gap"] > 0.3 and over["claim_flagged"] and over["claim_source"] == "bench"
    assert honest["claim_gap"] == pytest.approx(0.80 - honest["phase1_macro_f1"], abs=2e-3)
    lo, hi = honest["phase1_macro_f1_ci"]
    assert honest["claim_flagged"] is (
        0.80 - honest["phase1_macro_f1"] > 0.10 or not lo <= 0.8 <= hi
    )
    assert silent["claimed_macro_f1"] is None and silent["claim_gap"] is None
    assert not silent["claim_flagged"]


def test_claims_follow_visibility(board_ws: Workspace) -> None:
    cid = _vendor(board_ws, "a", {"claimed_macro_f1": 0.99}, 0.5, 1)
    _vendor(board_ws, "b", {"claimed_macro_f1": 0.95}, 0.6, 2)
    viewer = Principal(role="contributor", name="a", contributor_id=cid)
    rows = build_leaderboard(board_ws, viewer)["rows"]
    assert [r["vendor"] for r in rows if r["kind"] == "submission"] == ["a"]
    assert all(r["claimed_macro_f1"] != 0.95 for r in rows)


def test_current_classifier_is_a_baseline_row_never_ranked(
    board_ws: Workspace, tmp_path: Path
) -> None:
    _vendor(board_ws, "v", {}, 0.5, 1)
    rid = _current(board_ws, tmp_path, accuracy=0.95)
    rows = build_leaderboard(board_ws, OWNER)["rows"]
    (cur,) = [r for r in rows if r["result_id"] == rid]
    assert cur["kind"] == "baseline" and cur["baseline_kind"] == "current"
    assert cur["vendor"] == "current classifier" and cur["rank"] is None
    assert cur["macro_f1_ci"][0] <= cur["macro_f1"] <= cur["macro_f1_ci"][1]
    assert rows[0]["result_id"] == rid  # best score, sorted first, still unranked
    assert [r["rank_label"] for r in rows if r["kind"] == "submission"] == ["1"]


def test_impact_puts_status_quo_first_with_miss_cost_range(
    board_ws: Workspace, tmp_path: Path
) -> None:
    _vendor(board_ws, "v", {}, 0.9, 1)
    rid = _current(board_ws, tmp_path)
    out = impact_rows(board_ws, OWNER, {"cost_per_missed_paper": 100}, {"v": 5000.0})
    first = out["rows"][0]
    assert first["result_id"] == rid and first["status_quo"] and first["vs_status_quo"] == 0
    assert out["status_quo"] == "current classifier"
    vendor = next(r for r in out["rows"] if r["vendor"] == "v")
    assert vendor["ai_cost"] == 5000.0
    assert vendor["vs_status_quo"] == pytest.approx(
        vendor["total_cost"] - first["total_cost"], abs=0.05
    )
    for r in out["rows"]:
        lo, hi = r["miss_cost_range"]
        assert lo <= r["miss_cost"] <= hi and lo < hi


# -- the freeze at the close -----------------------------------------------------------------
def _policy(ws: Workspace, **changes: Any) -> None:
    ws.set_policy(Policy.from_dict({**ws.policy().to_dict(), **changes}))


def test_board_freezes_at_the_close_and_is_audited(board_ws: Workspace) -> None:
    _policy(board_ws, closes_at="2026-06-30T12:00:00")
    _vendor(board_ws, "early", {}, 0.6, 1)
    before = dt.datetime(2026, 6, 30, 11, 59, tzinfo=UTC)
    after = dt.datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
    assert build_leaderboard(board_ws, OWNER, now=before)["frozen"] is None
    assert final_ranking(board_ws) is None
    frozen = build_leaderboard(board_ws, OWNER, now=after)
    assert frozen["frozen"]["closes_at"] == "2026-06-30T12:00:00+00:00"
    (entry,) = [e for e in audit.entries(board_ws.store) if e["action"] == "leaderboard.freeze"]
    assert entry["payload"]["digest"] == frozen["frozen"]["digest"]
    assert [r["model"] for r in entry["payload"]["rows"]] == [r["model"] for r in frozen["rows"]]
    _vendor(board_ws, "late", {}, 0.95, 2)  # a result recorded after the close
    later = build_leaderboard(board_ws, OWNER, now=after + dt.timedelta(days=1))
    assert [r["vendor"] for r in later["rows"]] == ["early"]
    assert (
        len([e for e in audit.entries(board_ws.store) if e["action"] == "leaderboard.freeze"]) == 1
    )


def test_moving_the_close_lifts_the_freeze(board_ws: Workspace) -> None:
    _policy(board_ws, closes_at="2026-06-30")
    _vendor(board_ws, "early", {}, 0.6, 1)
    build_leaderboard(board_ws, OWNER, now=dt.datetime(2026, 7, 2, tzinfo=UTC))
    assert board_ws.store.get_setting(FINAL_KEY) is not None
    _policy(board_ws, closes_at="2026-07-31")
    _vendor(board_ws, "late", {}, 0.95, 2)
    board = build_leaderboard(board_ws, OWNER, now=dt.datetime(2026, 7, 3, tzinfo=UTC))
    assert board["frozen"] is None and {r["vendor"] for r in board["rows"]} == {"early", "late"}


def test_no_freeze_when_the_policy_says_so(board_ws: Workspace) -> None:
    _policy(board_ws, closes_at="2026-06-30", freeze_at_close=False)
    _vendor(board_ws, "early", {}, 0.6, 1)
    board = build_leaderboard(board_ws, OWNER, now=dt.datetime(2027, 1, 1, tzinfo=UTC))
    assert board["frozen"] is None and final_ranking(board_ws) is None


def test_a_baseline_registered_after_the_close_still_shows(
    board_ws: Workspace, tmp_path: Path
) -> None:
    _policy(board_ws, closes_at="2026-06-30")
    _vendor(board_ws, "early", {}, 0.6, 1)
    after = dt.datetime(2026, 7, 1, tzinfo=UTC)
    build_leaderboard(board_ws, OWNER, now=after)
    rid = _current(board_ws, tmp_path)
    rows = build_leaderboard(board_ws, OWNER, now=after)["rows"]
    assert rid in {r["result_id"] for r in rows} and len(rows) == 2
