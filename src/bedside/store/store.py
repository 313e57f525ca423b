"""The workspace store: one SQLAlchemy engine, one write path.

SQLite is the embedded default (WAL, ``BEGIN IMMEDIATE`` for writes so that read-then-write
transactions such as "count submissions, then insert" cannot interleave). PostgreSQL
(``postgresql://user@host/db``, driven by psycopg 3: ``pip install -e '.[postgres]'``) runs the
same schema and migrations. There a write transaction first takes one transaction-scoped
advisory lock, so writes serialize exactly as ``BEGIN IMMEDIATE`` makes them on SQLite (the same
read-then-write code stays race-free); ``write(serial=False)`` skips it for the few statements
that guard themselves with row locks (the queue's claim: ``FOR UPDATE SKIP LOCKED``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, select, text
from sqlalchemy.pool import NullPool

from bedside.errors import ConfigError
from bedside.store import migrations, schema

# pg_advisory_xact_lock key of the one write lock ("bedside" in ASCII)
WRITE_LOCK_KEY = 0x62656473696465


def engine_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 (imported late: an optional extra)."""
    if not url.startswith(("postgresql:", "postgres:", "postgresql+psycopg:")):
        return url
    try:
        import psycopg  # noqa: F401
    except ImportError as e:
        raise ConfigError(
            f"the store URL {url.split('@')[-1]!r} is PostgreSQL, but psycopg 3 is not installed.",
            hint="Install it with `python3 -m pip install -e '.[postgres]'` (psycopg[binary]).",
        ) from e
    _scheme, rest = url.split(":", 1)
    return "postgresql+psycopg:" + rest


def utcnow() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class Store:
    """Engine + transactions. ``with store.write() as conn`` is the one write path."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.is_postgres = url.startswith(("postgresql", "postgres:"))
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            # NullPool: every transaction gets its own connection, so several threads and
            # processes (worker, server, CLI) share the file safely.
            kwargs = {
                "poolclass": NullPool,
                "connect_args": {"timeout": 30, "check_same_thread": False},
            }
        elif self.is_postgres:
            kwargs = {"pool_size": 4, "max_overflow": 16, "pool_pre_ping": True}
        self.engine: Engine = create_engine(engine_url(url), **kwargs)
        if self.is_sqlite:
            self._install_sqlite_pragmas()

    def _install_sqlite_pragmas(self) -> None:
        @event.listens_for(self.engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy not emit BEGIN itself; we emit BEGIN / BEGIN IMMEDIATE below.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(self.engine, "begin")
        def _on_begin(conn: Connection) -> None:
            mode = conn.info.pop("begin_mode", "BEGIN")
            conn.exec_driver_sql(mode)

    @contextmanager
    def write(self, serial: bool = True) -> Iterator[Connection]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite, the advisory write lock on
        PostgreSQL unless ``serial=False``): commit on success, roll back on error."""
        with self.engine.connect() as conn:
            if self.is_sqlite:
                conn.info["begin_mode"] = "BEGIN IMMEDIATE"
            with conn.begin():
                if self.is_postgres and serial:
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": WRITE_LOCK_KEY})
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction (consistent snapshot)."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def migrate(self) -> list[str]:
        with self.write() as conn:
            return migrations.migrate(conn, utcnow())

    # -- small key/value settings -------------------------------------------------------
    def get_setting(self, key: str, default: Any = None) -> Any:
        with self.read() as conn:
            row = conn.execute(
                select(schema.settings.c.value).where(schema.settings.c.key == key)
            ).first()
        return default if row is None else row[0]

    def set_setting(self, key: str, value: Any, conn: Connection | None = None) -> None:
        if conn is None:
            with self.write() as c:
                self.set_setting(key, value, c)
            return
        t = schema.settings
        if conn.execute(select(t.c.key).where(t.c.key == key)).first() is None:
            conn.execute(t.insert().values(key=key, value=value))
        else:
            conn.execute(t.update().where(t.c.key == key).values(value=value))

    def dispose(self) -> None:
        self.engine.dispose()
