"""Migrations on each backend: a 0.1 workspace (the frozen ``0001_initial`` only) upgraded by
every later step has exactly the schema of a fresh workspace, and a fresh workspace has exactly
the tables declared in ``store/schema.py`` (a column added without its migration fails here)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, inspect

from bedside.store import frozen_0001, schema
from bedside.store.migrations import MIGRATIONS, migrate
from bedside.store.store import Store, engine_url, utcnow


def _shape(engine: Engine) -> dict[str, Any]:
    """Tables, columns (type, nullability, primary key), indexes, unique and foreign keys."""
    insp = inspect(engine)
    out: dict[str, Any] = {}
    for t in sorted(insp.get_table_names()):
        out[t] = {
            "columns": [
                (c["name"], str(c["type"]).upper(), bool(c["nullable"]))
                for c in insp.get_columns(t)
            ],
            "pk": sorted(insp.get_pk_constraint(t)["constrained_columns"]),
            "indexes": sorted(
                (tuple(i["column_names"]), bool(i["unique"])) for i in insp.get_indexes(t)
            ),
            "unique": sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(t)),
            "fks": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                for f in insp.get_foreign_keys(t)
            ),
        }
    return out


def _url(base: str, name: str) -> str:
    """A second database beside ``base``: another SQLite file, or (PostgreSQL) the same URL,
    whose schema the fixture makes fresh per test -- so the PostgreSQL case upgrades in place."""
    return base.replace("store.db", f"{name}.db") if base.startswith("sqlite") else base


def test_a_0_1_workspace_upgraded_equals_a_fresh_one(store_url: str) -> None:
    # fresh: every migration from nothing
    fresh = Store(_url(store_url, "fresh"))
    try:
        assert fresh.migrate() == [n for n, _ in MIGRATIONS]
        fresh_shape = _shape(fresh.engine)
    finally:
        fresh.dispose()
    if not store_url.startswith("sqlite"):  # one PostgreSQL schema per test: empty it again
        eng = create_engine(engine_url(store_url))
        with eng.begin() as conn:
            for t in reversed(schema.metadata.sorted_tables):
                t.drop(conn, checkfirst=True)
        eng.dispose()

    # 0.1: the frozen first step only, recorded as 0.1 recorded it
    old = Store(_url(store_url, "old"))
    try:
        with old.engine.begin() as conn:
            schema.schema_migrations.create(conn)
            frozen_0001.metadata.create_all(conn)
            conn.execute(
                schema.schema_migrations.insert().values(name="0001_initial", applied_at=utcnow())
            )
        shipped = set(inspect(old.engine).get_table_names())
        assert shipped == set(frozen_0001.metadata.tables) | {"schema_migrations"}
        with old.write() as conn:
            ran = migrate(conn, utcnow())
        assert ran == [n for n, _ in MIGRATIONS if n != "0001_initial"]
        assert _shape(old.engine) == fresh_shape
    finally:
        old.dispose()


def test_a_fresh_workspace_has_exactly_the_declared_schema(tmp_path: Any) -> None:
    declared = create_engine(f"sqlite:///{tmp_path / 'declared.db'}")
    schema.metadata.create_all(declared)
    fresh = Store(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        fresh.migrate()
        assert _shape(fresh.engine) == _shape(declared)
    finally:
        fresh.dispose()
        declared.dispose()


def test_0001_creates_what_0_1_shipped_not_todays_schema(store_url: str) -> None:
    name, first = MIGRATIONS[0]
    assert name == "0001_initial"
    store = Store(store_url)
    try:
        with store.write() as conn:
            first(conn)
        tables = set(inspect(store.engine).get_table_names())
        # 0.1 had no baselines or screening tables: they come from 0003 and 0004
        assert tables == set(frozen_0001.metadata.tables)
        assert {"baselines", "screening_models", "screening_runs"}.isdisjoint(tables)
    finally:
        store.dispose()
