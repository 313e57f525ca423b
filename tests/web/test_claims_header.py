"""Claims, the current classifier, the status quo and the workspace header in the web, API and CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from bedside.config import Policy
from bedside.data.corpus import load_corpus
from bedside.evaluation.current import add_current_baseline
from bedside.store import schema
from tests.web.test_pages import login
from tests.web.webdata import Populated

CLAIM = 0.92


@pytest.fixture
def claimed(pop: Populated, tmp_path: Path) -> Populated:
    """globex claims 0.92 (far above what it measures), an open window, a current classifier."""
    ws = pop.ws
    ws.set_policy(
        Policy.from_dict(
            {**ws.policy().to_dict(), "opens_at": "2026-01-01", "closes_at": "2099-12-31"}
        )
    )
    with ws.store.write() as conn:
        conn.execute(
            schema.submissions.update()
            .where(schema.submissions.c.id == pop.submissions["globex"][0])
            .values(manifest={"claimed_macro_f1": CLAIM, "claim_source": "PubMed RCT 2024"})
        )
    corpus = load_corpus(ws)
    names = corpus.class_names
    rng = np.random.default_rng(0)
    labels = [
        y if rng.random() < 0.78 else names[(names.index(y) + 1) % len(names)]
        for y in corpus.holdout["label"]
    ]
    path = tmp_path / "current.csv"
    pd.DataFrame({"row_id": corpus.holdout["row_id"], "label": labels}).to_csv(path, index=False)
    add_current_baseline(ws, "current classifier", path)
    return pop


def test_api_leaderboard_carries_claims_and_the_current_classifier(
    client: TestClient, claimed: Populated
) -> None:
    rows = client.get("/api/leaderboard", headers=claimed.headers("owner")).json()["rows"]
    globex = next(r for r in rows if r["vendor"] == "globex")
    assert globex["claimed_macro_f1"] == CLAIM and globex["claim_flagged"] is True
    assert globex["claim_gap"] == pytest.approx(CLAIM - globex["phase1_macro_f1"], abs=1e-3)
    assert globex["claim_source"] == "PubMed RCT 2024"
    cur = next(r for r in rows if r["baseline_kind"] == "current")
    assert cur["kind"] == "baseline" and cur["rank"] is None and cur["macro_f1_ci"]


def test_claims_are_shown_only_where_results_are_visible(
    client: TestClient, claimed: Populated
) -> None:
    rows = client.get("/api/leaderboard", headers=claimed.headers("acme")).json()["rows"]
    assert all(r["claimed_macro_f1"] is None for r in rows)  # globex's claim stays hidden
    login(client, claimed.tokens["acme"])
    assert "PubMed RCT 2024" not in client.get("/leaderboard").text
    sid = claimed.submissions["globex"][0]
    assert client.get(f"/api/submissions/{sid}", headers=claimed.headers("acme")).status_code == 404


def test_pages_show_claim_gap_marker_header_and_status_quo(
    client: TestClient, claimed: Populated
) -> None:
    login(client, claimed.owner)
    board = client.get("/leaderboard").text
    assert "Claim gap" in board and "claim-flag" in board and "PubMed RCT 2024" in board
    assert "current classifier" in board and 'id="workspace-header"' in board
    assert "2099-12-31 (end of day, UTC)" in board and "3 participants" in board
    sid = claimed.submissions["globex"][0]
    page = client.get(f"/submissions/{sid}").text
    assert "Claimed vs measured" in page and "0.920" in page and "claim-flag" in page
    impact = client.get("/impact").text
    assert "status quo" in impact and "Miss cost range" in impact


def test_contributor_header_and_api_status(client: TestClient, claimed: Populated) -> None:
    st = client.get("/api/status", headers=claimed.headers("globex")).json()
    assert st["window"]["state"] == "open" and st["participants"] == 3
    assert st["contributor"] == "globex" and st["submissions_used"] == 1
    assert st["max_submissions"] == 5 and st["budget_pflops"] == 300
    assert "1/5 submits" in st["summary"] and "/300 PF" in st["summary"]
    owner = client.get("/api/status", headers=claimed.headers("owner")).json()
    assert owner["contributor"] is None and owner["max_submissions"] is None
    assert client.get("/api/status").status_code == 401
    login(client, claimed.tokens["globex"])
    assert "1/5 submits" in client.get("/submissions").text


def test_report_has_claims_and_status_quo(claimed: Populated) -> None:
    from bedside.web.report import render_report

    html = render_report(claimed.ws)
    assert "Claim gap" in html and "⚠" in html and "status quo" in html


def test_cli_status_and_leaderboard_flag(claimed: Populated) -> None:
    from bedside.cli.app import app

    runner = CliRunner()

    def run(*args: str) -> str:
        out = runner.invoke(app, ["--workspace", str(claimed.ws.root), *args])
        assert out.exit_code == 0, out.output
        return out.output

    status = json.loads(run("status", "--format", "json"))
    assert status["window"]["state"] == "open" and status["participants"] == 3
    text = run("status")
    assert "2099-12-31 (end of day, UTC)" in text and "globex" in text
    assert "(!) MedMiniLM-LoRA" in run("leaderboard")
    imp = json.loads(run("impact", "--format", "json", "--ai-cost", "current classifier=5000"))
    assert imp["rows"][0]["status_quo"] and imp["rows"][0]["ai_cost"] == 5000


def test_api_refuses_a_submission_after_the_close_with_the_dates(
    client: TestClient, pop: Populated
) -> None:
    ws = pop.ws
    ws.set_policy(Policy.from_dict({**ws.policy().to_dict(), "closes_at": "2020-01-31"}))
    resp = client.post(
        "/api/submissions",
        headers=pop.headers("globex"),
        files={
            "bundle": ("b.tar.gz", b"not read: the window is checked first", "application/gzip")
        },
    )
    assert resp.status_code == 429, resp.text
    msg = resp.json()["error"]["message"]
    assert "submissions closed at 2020-02-01 00:00 UTC" in msg and "it is now" in msg
