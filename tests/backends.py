"""Store backends for tests: SQLite in a temp dir, and a real PostgreSQL server.

The PostgreSQL server comes from ``scripts/services.sh start`` (it exports
``BEDSIDE_TEST_POSTGRES``); each test gets its own fresh schema on it (``search_path``), dropped
after. Without the variable the PostgreSQL cases skip, except in CI (``CI=true``), where they fail:
CI must run them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

BACKENDS = ("sqlite", "postgres")
PG_ENV = "BEDSIDE_TEST_POSTGRES"
RAY_ENV = "BEDSIDE_TEST_RAY"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def require_env(name: str, what: str) -> str:
    """The service address in ``name``; skip without it (fail in CI)."""
    value = os.environ.get(name)
    if not value:
        msg = f'{name} is not set: start {what} with `eval "$(scripts/services.sh start)"`'
        if _in_ci():
            pytest.fail(msg)
        pytest.skip(msg)
    return value


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A SQLAlchemy URL on the test PostgreSQL server, inside a fresh schema of its own."""
    base = require_env(PG_ENV, "PostgreSQL")
    import sqlalchemy as sa

    name = f"t_{secrets.token_hex(6)}"
    admin = sa.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {name}")
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options={quote(f'-csearch_path={name}')}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {name} CASCADE")
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store URL of each backend in turn (the one suite runs on both)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("pg_url"))
