"""The leaderboard per corpus version and over time: trends, rank changes, restarts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from bedside.auth import OWNER, Principal
from bedside.config import Policy
from bedside.data.corpus import Corpus, load_corpus
from bedside.evaluation.baseline import score_on_holdout
from bedside.evaluation.results import record_result
from bedside.leaderboard import build_leaderboard
from bedside.leaderboard.history import history_lines, leaderboard_history
from bedside.store import schema
from bedside.store.store import utcnow
from bedside.workspace import Workspace
from tests.evaluation.conftest import add_corpus, synthetic_frame
from tests.store.seed import insert_contributor


def _probs(corpus: Corpus, accuracy: float, seed: int) -> np.ndarray:
    names = corpus.class_names
    rng = np.random.default_rng(seed)
    out = np.zeros((len(corpus.holdout), len(names)))
    for i, y in enumerate(corpus.holdout["label"]):
        j = names.index(y) if rng.random() < accuracy else (names.index(y) + 1) % len(names)
        out[i, j] = 1.0
    return out


def _submission(ws: Workspace, name: str) -> tuple[int, int]:
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
                corpus_version_id=1,
                created_at=utcnow(),
                manifest={},
                estimate={},
                meta={},
            )
        ).inserted_primary_key[0]
    return int(cid), int(sid)


def _score(ws: Workspace, version: int, sid: int, name: str, accuracy: float, seed: int) -> None:
    corpus = load_corpus(ws, version)
    probs = _probs(corpus, accuracy, seed)
    record_result(
        ws,
        corpus=corpus,
        phase=1,
        model_label=name,
        metrics=score_on_holdout(corpus, probs, resamples=200),
        provenance={},
        probs=probs,
        row_ids=[str(r) for r in corpus.holdout["row_id"]],
        submission_id=sid,
    )


@pytest.fixture
def two_versions(ws: Workspace) -> tuple[Workspace, dict[str, tuple[int, int]]]:
    ws.set_policy(Policy(bootstrap_resamples=200))
    add_corpus(ws, synthetic_frame(100, 1, "t"), synthetic_frame(300, 2, "h"))
    subs = {n: _submission(ws, n) for n in ("acme", "bolt", "cura")}
    # version 1: bolt > acme > cura (cura far below, close to nobody)
    for (n, (_c, s)), acc in zip(subs.items(), (0.70, 0.90, 0.40), strict=True):
        _score(ws, 1, s, f"{n} model", acc, seed=s)
    v1 = load_corpus(ws, 1)
    extra = synthetic_frame(150, 3, "n")
    add_corpus(ws, v1.train, pd.concat([v1.holdout, extra], ignore_index=True), digest="b" * 64)
    # version 2: acme jumps far above bolt (significant); cura stays last
    for (n, (_c, s)), acc in zip(subs.items(), (0.97, 0.60, 0.40), strict=True):
        _score(ws, 2, s, f"{n} model", acc, seed=10 + s)
    return ws, subs


def test_each_version_has_its_own_board_and_the_default_is_the_active_one(
    two_versions: tuple[Workspace, Any],
) -> None:
    ws, _ = two_versions
    b1 = build_leaderboard(ws, OWNER, corpus_version_id=1)
    b2 = build_leaderboard(ws, OWNER)
    assert b2["corpus_version"]["id"] == 2
    assert [r["model"] for r in b1["rows"]][0] == "bolt model"
    assert [r["model"] for r in b2["rows"]][0] == "acme model"
    assert {r["n"] for r in b1["rows"]} == {300} and {r["n"] for r in b2["rows"]} == {450}


def test_history_lines_up_scores_and_tests_the_rank_change(
    two_versions: tuple[Workspace, Any],
) -> None:
    ws, subs = two_versions
    h = leaderboard_history(ws, OWNER)
    assert [v["id"] for v in h["versions"]] == [1, 2] and h["versions"][1]["active"]
    acme = next(m for m in h["models"] if m["model"] == "acme model")
    assert set(acme["scores"]) == {1, 2}
    assert acme["scores"][2]["macro_f1"] > acme["scores"][1]["macro_f1"]
    assert acme["scores"][1]["macro_f1_ci"][0] < acme["scores"][1]["macro_f1"]
    [change] = h["rank_changes"]
    assert (change["up"], change["down"]) == ("acme model", "bolt model")
    assert change["tested"] and change["significant"] and change["ci"][0] > 0
    assert change["delta"] > 0.2
    assert "significant (paired bootstrap" in history_lines(h)[0]


def test_history_survives_a_restart(two_versions: tuple[Workspace, Any]) -> None:
    ws, _ = two_versions
    before = leaderboard_history(ws, OWNER)
    again = leaderboard_history(Workspace.open(ws.root), OWNER)
    assert again == before


def test_a_contributor_sees_its_own_history_and_no_paired_tests_under_the_ladder(
    two_versions: tuple[Workspace, Any],
) -> None:
    ws, subs = two_versions
    cid, _sid = subs["acme"]
    me = Principal(role="contributor", name="acme", contributor_id=cid)
    h = leaderboard_history(ws, me)
    assert {m["model"] for m in h["models"] if m["kind"] == "submission"} == {"acme model"}
    ws.set_policy(Policy(bootstrap_resamples=200, ladder_step=0.05))
    ws.store.set_setting("published", True)
    h = leaderboard_history(ws, me)
    assert h["rank_changes"] and not any(c["tested"] for c in h["rank_changes"])
    assert all(c["ci"] is None for c in h["rank_changes"])
    assert "not tested" in history_lines(h)[0]


# -- the web pages and API (web/history.py) ---------------------------------------------------
def _client(ws: Workspace, token: str | None = None) -> Any:
    from fastapi.testclient import TestClient

    from bedside.web.app import create_app

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return TestClient(create_app(ws), headers=headers)


@pytest.mark.slow  # the web app and its charts: ~10 s on a loaded 2-core machine
def test_history_page_and_api_show_both_versions_and_the_drift(
    two_versions: tuple[Workspace, Any],
) -> None:
    ws, _ = two_versions
    token = ws.rotate_owner_token()
    with _client(ws, token) as c:
        r = c.get("/api/leaderboard/history")
        assert r.status_code == 200
        acme = next(m for m in r.json()["models"] if m["model"] == "acme model")
        assert set(acme["scores"]) == {"1", "2"}
        r = c.get("/api/leaderboard/versions/1")
        assert r.status_code == 200 and r.json()["corpus_version"]["id"] == 1
        r = c.get("/leaderboard/history?version=1")
        assert r.status_code == 200
        assert "Version 1" in r.text and "Version 2 (active)" in r.text and "<svg" in r.text
        assert "moved above bolt model; significant" in r.text
        assert 'id="drift"' in r.text and "Class shares" in r.text
        r = c.get("/api/data/drift")  # version 2 was stored without a parent here
        assert r.status_code == 404 and "has no parent" in r.json()["error"]["message"]
        r = c.get("/api/data/drift?a=1&b=2")
        assert r.status_code == 200 and r.json()["compared"] == "added rows"
        page = c.get("/data/drift?a=1&b=2")
        assert page.status_code == 200 and "Chi-square test of homogeneity" in page.text
        assert c.get("/leaderboard").text.count('href="/leaderboard/history"') == 1
        r = c.post("/api/reevaluate", json={"version": "2", "submissions": [999]})
        assert r.status_code == 404 and "no submission(s) 999" in r.json()["error"]["message"]


def test_history_follows_the_board_visibility(two_versions: tuple[Workspace, Any]) -> None:
    ws, _ = two_versions
    with _client(ws) as c:
        assert c.get("/api/leaderboard/history").status_code == 401  # not published
        assert c.get("/api/data/drift").status_code == 401
