"""The store on each backend (SQLite and a real PostgreSQL server): migrations, settings, the
one write path and its serialization."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select

from bedside.errors import ConfigError
from bedside.store import schema
from bedside.store.migrations import MIGRATIONS
from bedside.store.store import Store, engine_url, utcnow
from bedside.workspace import Workspace


def test_every_migration_runs_and_a_second_run_does_nothing(store_url: str) -> None:
    store = Store(store_url)
    try:
        assert store.migrate() == [name for name, _fn in MIGRATIONS]
        assert store.migrate() == []
        tables = set(inspect(store.engine).get_table_names())
        assert set(schema.metadata.tables) <= tables
    finally:
        store.dispose()


def test_settings_round_trip_json(store_url: str) -> None:
    store = Store(store_url)
    try:
        store.migrate()
        store.set_setting("policy", {"a": [1, 2.5, None], "b": "ü"})
        store.set_setting("policy", {"a": [3]})
        assert store.get_setting("policy") == {"a": [3]}
        assert store.get_setting("missing", 7) == 7
    finally:
        store.dispose()


def test_a_failed_write_rolls_back(store_url: str) -> None:
    store = Store(store_url)
    try:
        store.migrate()
        with pytest.raises(RuntimeError), store.write() as conn:
            store.set_setting("k", 1, conn)
            raise RuntimeError("boom")
        assert store.get_setting("k") is None
    finally:
        store.dispose()


def test_read_then_write_transactions_serialize(store_url: str) -> None:
    """8 threads each "count, then insert while under 5": exactly 5 rows (a limit stays exact)."""
    store = Store(store_url)
    store.migrate()
    t = schema.settings
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            for j in range(3):
                with store.write() as conn:
                    n = conn.execute(select(func.count()).select_from(t)).scalar_one()
                    if n < 5:
                        conn.execute(t.insert().values(key=f"k{i}-{j}", value=n))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    try:
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert errors == []
        with store.read() as conn:
            values = sorted(conn.execute(select(t.c.value)).scalars())
        assert values == [0, 1, 2, 3, 4]
    finally:
        store.dispose()


def test_a_workspace_on_the_backend(store_url: str, tmp_path: Path) -> None:
    ws, token = Workspace.init(tmp_path / "ws", db_url=store_url)
    again = Workspace.open(tmp_path / "ws")
    try:
        assert again.store.url == store_url and token.startswith("bso_")
        assert again.policy() == ws.policy()
        with again.store.read() as conn:
            names = set(conn.execute(select(schema.schema_migrations.c.name)).scalars())
        assert names == {name for name, _fn in MIGRATIONS}
    finally:
        ws.store.dispose()
        again.store.dispose()


def test_postgres_url_means_psycopg3() -> None:
    assert engine_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert engine_url("sqlite:///x.db") == "sqlite:///x.db"


def test_missing_psycopg_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "psycopg", None)  # import fails
    with pytest.raises(ConfigError) as e:
        engine_url("postgresql://u:secret@h/db")
    assert ".[postgres]" in str(e.value.hint) and "secret" not in str(e.value)


def test_utcnow_is_iso() -> None:
    assert utcnow().endswith("+00:00")
