from __future__ import annotations

import pytest
from sqlalchemy import select

from bedside.config import JobLimits, Policy
from bedside.errors import ConfigError, WorkspaceError
from bedside.store import audit, schema
from bedside.workspace import Workspace


def test_init_creates_layout_and_migrations(ws: Workspace) -> None:
    for sub in ("corpora", "bundles", "jobs", "artefacts"):
        assert (ws.root / sub).is_dir()
    assert (ws.root.stat().st_mode & 0o077) == 0
    with ws.store.read() as conn:
        names = set(conn.execute(select(schema.schema_migrations.c.name)).scalars())
    assert "0001_initial" in names
    assert ws.store.migrate() == []  # idempotent


def test_init_twice_is_refused(ws: Workspace) -> None:
    with pytest.raises(WorkspaceError, match="already a bedside workspace"):
        Workspace.init(ws.root)


def test_find_by_env_and_cwd(ws: Workspace, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("BEDSIDE_WORKSPACE", str(ws.root))
    assert Workspace.find().root == ws.root
    monkeypatch.delenv("BEDSIDE_WORKSPACE")
    (ws.root / "corpora" / "x").mkdir()
    monkeypatch.chdir(ws.root / "corpora" / "x")
    assert Workspace.find().root == ws.root
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WorkspaceError, match="bedside init"):
        Workspace.find()


def test_owner_token(ws_with_token) -> None:
    ws, token = ws_with_token
    assert ws.check_owner_token(token)
    assert not ws.check_owner_token(token + "x")


def test_policy_validation_names_the_value(ws: Workspace) -> None:
    with pytest.raises(ConfigError, match="min_tier must be one of A, B, C, got 'Z'"):
        Policy(min_tier="Z")
    with pytest.raises(ConfigError, match="memory_gb"):
        JobLimits(memory_gb=0)
    with pytest.raises(ConfigError, match="unknown policy key"):
        Policy.from_dict({"nope": 1})
    p = ws.policy()
    p.k_anonymity = 20
    ws.set_policy(p)
    assert ws.policy().k_anonymity == 20


def test_audit_chain_detects_edit_and_delete(ws: Workspace) -> None:
    with ws.store.write() as conn:
        for i in range(4):
            audit.append(conn, "owner", "test", {"i": i})
    assert audit.verify(ws.store)[0]
    with ws.store.write() as conn:
        conn.execute(
            schema.audit_log.update().where(schema.audit_log.c.id == 2).values(payload={"i": 99})
        )
    ok, msg = audit.verify(ws.store)
    assert not ok and "entry 2" in msg
    with ws.store.write() as conn:
        conn.execute(
            schema.audit_log.update().where(schema.audit_log.c.id == 2).values(payload={"i": 1})
        )
        conn.execute(schema.audit_log.delete().where(schema.audit_log.c.id == 3))
    ok, msg = audit.verify(ws.store)
    assert not ok and "3" in msg
