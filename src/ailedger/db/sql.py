"""What every store uses: a transaction whose failures are ailedger errors, and upserts.

:func:`transaction` is the one place SQLAlchemy's errors become :class:`DatabaseError`
(``raise ... from``), so no caller of a store needs to know SQLAlchemy. Upserts: both
dialects implement ``INSERT ... ON CONFLICT`` (SQLite 3.24, PostgreSQL 9.5) with the same
SQLAlchemy construct, imported from the dialect in use.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Table, exc
from sqlalchemy.dialects import postgresql, sqlite

from ailedger.db.engine import DatabaseError


@contextmanager
def transaction(database: Engine) -> Iterator[Connection]:
    """A connection in a transaction: committed when the block ends, rolled back if it
    raises; a database failure is raised as :class:`DatabaseError`."""
    try:
        with database.begin() as connection:
            yield connection
    except exc.SQLAlchemyError as error:
        cause = error.orig if isinstance(error, exc.DBAPIError) else error
        raise DatabaseError(
            f"the node's database ({database.url.render_as_string()}) failed: {cause}; "
            "nothing of this operation was kept. If another process holds it locked, retry; "
            "for PostgreSQL, check the server is reachable (AILEDGER_DATABASE_URL)"
        ) from error


def upsert(
    connection: Connection,
    table: Table,
    rows: list[dict[str, Any]] | dict[str, Any],
    *,
    key: tuple[str, ...],
    update: tuple[str, ...] | None = None,
) -> None:
    """Insert ``rows``; a row whose ``key`` exists gets the ``update`` columns (default:
    every column outside the key) from the new row instead."""
    if not rows:
        return
    insert = _dialect_insert(connection, table)
    columns = (
        update if update is not None else tuple(c.name for c in table.columns if c.name not in key)
    )
    statement = insert.on_conflict_do_update(
        index_elements=list(key), set_={name: insert.excluded[name] for name in columns}
    )
    connection.execute(statement, rows)


def insert_missing(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert those of ``rows`` whose primary key is not in ``table`` yet."""
    if rows:
        connection.execute(_dialect_insert(connection, table).on_conflict_do_nothing(), rows)


def insert_ignore(connection: Connection, table: Table, row: dict[str, Any]) -> bool:
    """Insert ``row`` unless its primary key exists; True if it was inserted."""
    # RETURNING rather than rowcount: through SQLAlchemy and psycopg an INSERT's rowcount
    # reads -1; both backends return a row exactly when one was inserted.
    key = list(table.primary_key.columns)
    statement = _dialect_insert(connection, table).on_conflict_do_nothing().returning(*key)
    return connection.execute(statement, row).first() is not None


def _dialect_insert(connection: Connection, table: Table) -> Any:
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
