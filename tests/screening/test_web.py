"""The screening API and page: the owner reaches them; a contributor gets 404 everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bedside.submissions.contributors import add_contributor
from bedside.web.app import create_app
from tests.screening.conftest import Finished, write_csv

ROUTES = [
    ("get", "/api/screening/models"),
    ("post", "/api/screening/deploy"),
    ("post", "/api/screening/targets"),
    ("get", "/api/screening/runs"),
    ("post", "/api/screening/runs"),
    ("get", "/api/screening/runs/1"),
    ("get", "/api/screening/runs/1/results"),
    ("get", "/api/screening/runs/1/realised"),
    ("get", "/screening"),
    ("post", "/screening/targets"),
    ("post", "/screening/runs"),
]


@pytest.fixture
def owner_token(finished: Finished) -> str:
    return finished.ws.rotate_owner_token()


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_contributors_cannot_reach_any_screening_route(
    finished: Finished, method: str, path: str
) -> None:
    _row, token = add_contributor(finished.ws, "acme")
    with TestClient(create_app(finished.ws)) as c:
        r = getattr(c, method)(path, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 404
    if path.startswith("/api/"):
        assert r.json()["error"]["code"] == "not_found"


def test_the_owner_deploys_sets_targets_and_queues_a_run(
    finished: Finished, owner_token: str, tmp_path: Path
) -> None:
    h = {"Authorization": f"Bearer {owner_token}"}
    with TestClient(create_app(finished.ws)) as c:
        r = c.post("/api/screening/deploy", json={"submission_id": 99}, headers=h)
        assert r.status_code == 404
        r = c.post(
            "/api/screening/deploy", json={"submission_id": finished.submission_id}, headers=h
        )
        assert r.status_code == 200 and r.json()["decision_rule"] == "argmax"
        r = c.post(
            "/api/screening/targets",
            json={"targets": {"digestive system diseases": 0.9}},
            headers=h,
        )
        (p,) = r.json()["operating_points"]["points"]
        assert p["threshold"] is not None and p["n_report"] == 30
        src = write_csv(tmp_path / "new.csv", ["liver colon gastric", ""])
        r = c.post("/api/screening/runs", files={"file": ("new.csv", src.read_bytes())}, headers=h)
        assert r.status_code == 422 and "missing or empty" in r.json()["error"]["message"]
        src = write_csv(tmp_path / "new.csv", ["liver colon gastric", "heart artery"])
        r = c.post("/api/screening/runs", files={"file": ("new.csv", src.read_bytes())}, headers=h)
        assert r.status_code == 200 and r.json()["state"] == "queued"
        assert r.json()["input"]["n_rows"] == 2 and r.json()["input"]["file_name"] == "new.csv"
        page = c.get("/screening", headers=h)
        assert page.status_code == 200 and 'id="points"' in page.text and "<svg" in page.text
