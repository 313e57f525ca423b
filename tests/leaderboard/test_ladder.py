"""The Ladder, the public/private holdout split, and the probing simulation's bound."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bedside.auth import OWNER, Principal
from bedside.config import Policy
from bedside.data.corpus import load_corpus
from bedside.errors import ConfigError
from bedside.evaluation.baseline import score_on_holdout
from bedside.evaluation.results import record_result
from bedside.leaderboard import build_leaderboard
from bedside.leaderboard.holdout_split import part_scores, public_mask, split_salt
from bedside.leaderboard.ladder import ladder, released_scores, round_to_step
from bedside.store import schema
from bedside.store.store import utcnow
from bedside.workspace import Workspace
from tests.evaluation.conftest import add_corpus, synthetic_frame
from tests.store.seed import insert_contributor

BENCH = Path(__file__).resolve().parents[2] / "bench" / "holdout_probing.py"
UTC = dt.UTC


# -- the released-score rule on a known sequence ----------------------------------------------
def test_ladder_releases_only_improvements_beyond_the_step_rounded_to_it() -> None:
    scores = [0.503, 0.509, 0.52, 0.515, 0.531, 0.5305, 0.60, 0.55]
    steps = ladder(scores, 0.01)
    assert [s.released for s in steps] == [0.5, 0.5, 0.52, 0.52, 0.53, 0.53, 0.6, 0.6]
    assert [s.improved for s in steps] == [True, False, True, False, True, False, True, False]
    # a better score that does not clear best + step says nothing: the same figure comes back
    assert released_scores([0.70, 0.709], 0.01) == [0.7, 0.7]
    assert released_scores([0.70, 0.709], 0.0) == [0.7, 0.709]  # step 0: no Ladder
    assert round_to_step(0.5234, 0.025) == 0.525
    with pytest.raises(ValueError, match="step must be > 0"):
        round_to_step(0.5, 0.0)


def test_ladder_and_split_policy_values_are_checked() -> None:
    with pytest.raises(ConfigError, match="ladder_step must be a number in 0..0.5"):
        Policy(ladder_step=-0.01)
    with pytest.raises(ConfigError, match="holdout_public_fraction must be 0"):
        Policy(holdout_public_fraction=0.95)
    assert Policy(holdout_public_fraction=0.3, ladder_step=0.01).ladder_step == 0.01


# -- the public/private split ---------------------------------------------------------------
def test_public_mask_is_keyed_stable_and_near_its_fraction() -> None:
    ids = [f"r{i}" for i in range(4000)]
    m = public_mask(ids, 0.3, "salt-a")
    assert 0.27 < m.mean() < 0.33
    assert (
        public_mask(ids[:100], 0.3, "salt-a") == m[:100]
    ).all()  # an appended row keeps its side
    assert (public_mask(ids, 0.3, "salt-b") != m).any()  # the salt decides, not the id alone


def test_part_scores_split_the_rows() -> None:
    y = np.array([0, 1] * 50)
    probs = np.eye(2)[y]
    probs[:10] = probs[:10][:, ::-1]  # the first ten rows wrong
    mask = np.zeros(100, dtype=bool)
    mask[:20] = True
    parts = part_scores(y, probs, mask, 2, resamples=100)
    assert parts["public"]["n"] == 20 and parts["private"]["n"] == 80
    assert parts["private"]["macro_f1"] == 1.0 and parts["public"]["macro_f1"] == 0.5


# -- on the board ---------------------------------------------------------------------------
@pytest.fixture
def probe_ws(ws: Workspace) -> Workspace:
    add_corpus(ws, synthetic_frame(120, 1, "t"), synthetic_frame(400, 2, "h"))
    return ws


def _contributor(ws: Workspace, name: str) -> int:
    with ws.store.write() as conn:
        return insert_contributor(conn, name, max_submissions=50)


def _submit(ws: Workspace, cid: int, name: str, accuracy: float, seed: int) -> int:
    corpus = load_corpus(ws)
    names = corpus.class_names
    rng = np.random.default_rng(seed)
    probs = np.zeros((len(corpus.holdout), len(names)))
    for i, y in enumerate(corpus.holdout["label"]):
        j = names.index(y) if rng.random() < accuracy else (names.index(y) + 1) % len(names)
        probs[i, j] = 1.0
    with ws.store.write() as conn:
        sid = conn.execute(
            schema.submissions.insert().values(
                contributor_id=cid,
                bundle_hash=f"{seed:064d}",
                name=name,
                kind="encoder",
                status="done",
                counted=True,
                corpus_version_id=corpus.version_id,
                created_at=utcnow(),
                manifest={},
                estimate={},
                meta={},
            )
        ).inserted_primary_key[0]
    record_result(
        ws,
        corpus=corpus,
        phase=1,
        model_label=name,
        metrics=score_on_holdout(corpus, probs, resamples=100),
        provenance={},
        probs=probs,
        row_ids=[str(r) for r in corpus.holdout["row_id"]],
        submission_id=int(sid),
    )
    return int(sid)


def _policy(ws: Workspace, **changes: Any) -> None:
    ws.set_policy(
        Policy.from_dict({**ws.policy().to_dict(), "bootstrap_resamples": 100, **changes})
    )


def _rows(board: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["model"]: r for r in board["rows"] if r["kind"] == "submission"}


def test_a_contributor_sees_ladder_figures_and_no_details_the_owner_sees_exact(
    probe_ws: Workspace,
) -> None:
    ws = probe_ws
    cid = _contributor(ws, "acme")
    for i, acc in enumerate([0.70, 0.705, 0.80, 0.79]):
        _submit(ws, cid, f"m{i}", acc, seed=i)
    _policy(ws, ladder_step=0.05)
    me = Principal(role="contributor", name="acme", contributor_id=cid)
    owner_rows = _rows(build_leaderboard(ws, OWNER))
    board = build_leaderboard(ws, me)
    rows = _rows(board)
    exact = [owner_rows[f"m{i}"]["macro_f1"] for i in range(4)]
    expected = released_scores(exact, 0.05)
    assert [rows[f"m{i}"]["macro_f1"] for i in range(4)] == pytest.approx(expected)
    assert len(set(expected)) < len(set(exact))  # some results released an older best
    for r in rows.values():
        assert r["macro_f1_ci"] is None and r["accuracy"] is None and r["withheld"]
        assert all(pc["f1"] is None and pc["recall"] is None for pc in r["per_class"])
    assert board["holdout"]["ladder"] and board["tie_method"] == "released_scores"
    from bedside.leaderboard import impact_rows

    impact = impact_rows(ws, me, {}, {}, 0.0)  # priced from per-class recall: withheld too
    assert not [r for r in impact["rows"] if r.get("kind") == "submission"]
    assert [r for r in impact_rows(ws, OWNER, {}, {}, 0.0)["rows"] if r["kind"] == "submission"]
    assert all(r["macro_f1_ci"] is not None for r in owner_rows.values())
    # after the close the Ladder is lifted (no more submissions to probe with)
    _policy(ws, closes_at="2026-01-01", freeze_at_close=False)
    late = build_leaderboard(ws, me, now=dt.datetime(2026, 6, 1, tzinfo=UTC))
    assert [_rows(late)[f"m{i}"]["macro_f1"] for i in range(4)] == pytest.approx(exact)


def test_public_scores_while_open_private_ranking_after_the_close(probe_ws: Workspace) -> None:
    ws = probe_ws
    cid = _contributor(ws, "acme")
    for i, acc in enumerate([0.6, 0.75]):
        _submit(ws, cid, f"m{i}", acc, seed=10 + i)
    _policy(ws, holdout_public_fraction=0.3, closes_at="2026-12-31", freeze_at_close=False)
    me = Principal(role="contributor", name="acme", contributor_id=cid)
    corpus = load_corpus(ws)
    ids = [str(r) for r in corpus.holdout["row_id"]]
    mask = public_mask(ids, 0.3, split_salt(ws))
    assert split_salt(ws) == split_salt(ws)  # made once, kept
    open_ = dt.datetime(2026, 12, 1, tzinfo=UTC)
    board = build_leaderboard(ws, me, now=open_)
    owner = _rows(build_leaderboard(ws, OWNER, now=open_))
    assert board["holdout"]["mode"] == "public"
    for name, r in _rows(board).items():
        assert r["macro_f1"] == owner[name]["public_macro_f1"] != owner[name]["macro_f1"]
        assert r["macro_f1_ci"] is not None  # the public part's own interval
        assert "private_macro_f1" not in r and r["per_class"][0]["f1"] is None
    after = dt.datetime(2027, 1, 5, tzinfo=UTC)
    final = build_leaderboard(ws, OWNER, now=after)
    assert final["holdout"]["mode"] == "private"
    for name, r in _rows(final).items():
        assert r["macro_f1"] == owner[name]["private_macro_f1"]
    assert int((~mask).sum()) > 50 and int(mask.sum()) > 50


# -- the probing simulation (bench/holdout_probing.py), asserted as bounds ---------------------
def _bench() -> Any:
    spec = importlib.util.spec_from_file_location("holdout_probing", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_probing_leak_is_cut_by_the_ladder_and_absent_from_the_private_part() -> None:
    res = _bench().simulate(n=2000, k=400, repeats=6, seed=1, step=0.01, public_fraction=0.3)
    leak, floor = res["leak_mean"], res["private_noise_sd"]
    assert leak["plain"] > 0.05  # the attack works against exact releases
    assert leak["ladder"] < leak["plain"] / 3  # the Ladder cuts most of it
    assert leak["split_public"] > 0.05  # the public part is learnt ...
    assert abs(leak["split_private"]) < 3 * floor  # ... the private part is not
    assert abs(leak["both_private"]) < 3 * floor


def test_a_contributors_results_view_releases_what_its_board_row_does(probe_ws: Workspace) -> None:
    from bedside.web.queries import get_result, submission_results

    ws = probe_ws
    cid = _contributor(ws, "acme")
    sids = [_submit(ws, cid, f"m{i}", acc, seed=20 + i) for i, acc in enumerate([0.7, 0.705])]
    me = Principal(role="contributor", name="acme", contributor_id=cid)
    exact = [submission_results(ws, me, s)[0]["macro_f1"] for s in sids]
    _policy(ws, ladder_step=0.05)
    rows = _rows(build_leaderboard(ws, me))
    for i, s in enumerate(sids):
        [view] = submission_results(ws, me, s)
        assert view["macro_f1"] == rows[f"m{i}"]["macro_f1"]
        assert view["metrics"]["withheld"] and view["metrics"]["per_class"] == []
        assert get_result(ws, me, view["id"])["macro_f1"] == view["macro_f1"]
    assert submission_results(ws, OWNER, sids[1])[0]["macro_f1"] == exact[1]  # exact for the owner
    assert [submission_results(ws, me, s)[0]["macro_f1"] for s in sids] != exact


@pytest.mark.slow  # builds the web app: a few seconds under load
def test_the_submission_page_and_api_render_withheld_results(probe_ws: Workspace) -> None:
    from fastapi.testclient import TestClient

    from bedside.submissions.contributors import add_contributor
    from bedside.web.app import create_app

    ws = probe_ws
    row, token = add_contributor(ws, "acme")
    sid = _submit(ws, int(row["id"]), "m0", 0.7, 3)
    _policy(ws, ladder_step=0.05)
    with TestClient(create_app(ws), headers={"Authorization": f"Bearer {token}"}) as c:
        assert c.get(f"/submissions/{sid}").status_code == 200
        [res] = c.get(f"/api/submissions/{sid}/results").json()["results"]
        assert res["metrics"]["withheld"] and res["metrics"]["per_class"] == []
        assert res["macro_f1"] == round_to_step(res["macro_f1"], 0.05)  # a Ladder figure
