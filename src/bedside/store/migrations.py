"""Named schema migrations, applied in order inside one transaction each and recorded in
``schema_migrations``. Add a new migration by appending to ``MIGRATIONS``; never edit one that
has shipped."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, select

from bedside.store import frozen_0001, schema


def _initial(conn: Connection) -> None:
    # the tables as 0.1 shipped them (frozen DDL), never today's schema
    frozen_0001.metadata.create_all(conn)


def _evaluation_window(conn: Connection) -> None:
    # checkfirst: a store created after this table joined the schema already has it
    schema.baselines.create(conn, checkfirst=True)


def _screening(conn: Connection) -> None:
    schema.screening_models.create(conn, checkfirst=True)
    schema.screening_runs.create(conn, checkfirst=True)


def _reevaluation(conn: Connection) -> None:
    schema.reevaluations.create(conn, checkfirst=True)


MIGRATIONS: list[tuple[str, Callable[[Connection], None]]] = [
    ("0001_initial", _initial),
    ("0003_evaluation_window", _evaluation_window),
    ("0004_screening", _screening),
    ("0005_reevaluation", _reevaluation),
]


def applied(conn: Connection) -> set[str]:
    return set(conn.execute(select(schema.schema_migrations.c.name)).scalars())


def migrate(conn: Connection, now: str) -> list[str]:
    """Apply pending migrations on ``conn`` (caller owns the transaction). Returns their names."""
    schema.schema_migrations.create(conn, checkfirst=True)
    done = applied(conn)
    ran = []
    for name, fn in MIGRATIONS:
        if name in done:
            continue
        fn(conn)
        conn.execute(schema.schema_migrations.insert().values(name=name, applied_at=now))
        ran.append(name)
    return ran
