from __future__ import annotations

import pytest
from sqlalchemy import select

from bedside.auth import authenticate
from bedside.errors import AuthError, ConfigError, NotFoundError
from bedside.store import audit, schema
from bedside.submissions.contributors import (
    add_contributor,
    get_contributor,
    list_contributors,
    rotate_token,
    update_contributor,
)
from bedside.workspace import Workspace


def test_add_stores_only_a_salted_hash(ws: Workspace) -> None:
    row, token = add_contributor(ws, "acme")
    assert token.startswith("bsc_") and len(token) > 40
    assert row["token_prefix"] == token[:12]
    assert "token_hash" not in row and "token_salt" not in row
    with ws.store.read() as conn:
        raw = conn.execute(select(schema.contributors)).mappings().one()
    assert token not in {str(v) for v in raw.values()}
    assert raw["token_hash"] != token and len(raw["token_salt"]) == 32
    principal = authenticate(ws, token)
    assert (
        principal.role == "contributor"
        and principal.name == "acme"
        and principal.contributor_id == row["id"]
    )


def test_defaults_come_from_the_policy(ws: Workspace) -> None:
    policy = ws.policy()
    row, _ = add_contributor(ws, "acme")
    assert row["max_submissions"] == policy.default_submissions
    assert row["budget_pflops"] == policy.default_budget_pflops
    row2, _ = add_contributor(ws, "beta", max_submissions=2, budget_pflops=1.5)
    assert (row2["max_submissions"], row2["budget_pflops"]) == (2, 1.5)
    assert row2["submissions_left"] == 2 and row2["budget_left_pflops"] == 1.5
    assert [c["name"] for c in list_contributors(ws)] == ["acme", "beta"]


def test_revoked_token_rejected(ws: Workspace) -> None:
    _, token = add_contributor(ws, "acme")
    update_contributor(ws, "acme", revoked=True)
    with pytest.raises(AuthError, match="has been revoked"):
        authenticate(ws, token)
    assert get_contributor(ws, "acme")["revoked"] is True
    update_contributor(ws, "acme", revoked=False)
    assert authenticate(ws, token).name == "acme"


def test_rotate_token(ws: Workspace) -> None:
    _, old = add_contributor(ws, "acme")
    new = rotate_token(ws, "acme")
    assert authenticate(ws, new).name == "acme"
    with pytest.raises(AuthError, match="not valid"):
        authenticate(ws, old)


def test_update_and_audit(ws: Workspace) -> None:
    add_contributor(ws, "acme")
    c = update_contributor(ws, "acme", max_submissions=9, budget_pflops=12.5)
    assert c["max_submissions"] == 9 and c["budget_pflops"] == 12.5
    actions = [e["action"] for e in audit.entries(ws.store)]
    assert actions == ["contributor.add", "contributor.update"]
    assert audit.verify(ws.store)[0]


def test_errors(ws: Workspace) -> None:
    add_contributor(ws, "acme")
    with pytest.raises(ConfigError, match="already exists"):
        add_contributor(ws, "acme")
    with pytest.raises(ConfigError, match="contributor name must be"):
        add_contributor(ws, "bad name!")
    with pytest.raises(ConfigError, match="max_submissions must be 0..100000; found -1"):
        add_contributor(ws, "beta", max_submissions=-1)
    with pytest.raises(
        NotFoundError, match="no contributor named 'nobody'; contributors are: acme"
    ):
        get_contributor(ws, "nobody")
