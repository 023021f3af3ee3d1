"""The two statements SQLite and PostgreSQL spell alike but SQL Core cannot: upserts.

Both dialects implement ``INSERT ... ON CONFLICT`` (SQLite 3.24, PostgreSQL 9.5) with the
same SQLAlchemy construct, imported from the dialect in use.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


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
