"""The workspace store: one SQLAlchemy engine, one write path.

SQLite is the embedded default (WAL, ``BEGIN IMMEDIATE`` for writes so that read-then-write
transactions such as "count submissions, then insert" cannot interleave); any SQLAlchemy URL
(e.g. PostgreSQL) works for the same code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, select
from sqlalchemy.pool import NullPool

from bedside.store import migrations, schema


def utcnow() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class Store:
    """Engine + transactions. ``with store.write() as conn`` is the one write path."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            # NullPool: every transaction gets its own connection, so several threads and
            # processes (worker, server, CLI) share the file safely.
            kwargs = {
                "poolclass": NullPool,
                "connect_args": {"timeout": 30, "check_same_thread": False},
            }
        self.engine: Engine = create_engine(url, **kwargs)
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
    def write(self) -> Iterator[Connection]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite): commit on success, roll back on error."""
        with self.engine.connect() as conn:
            if self.is_sqlite:
                conn.info["begin_mode"] = "BEGIN IMMEDIATE"
            with conn.begin():
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
