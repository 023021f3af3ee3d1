"""Run the schema migrations (Alembic) from code: no ``alembic.ini`` at run time.

:func:`upgrade` runs inside one transaction that first takes a lock (SQLite: ``BEGIN
IMMEDIATE``; PostgreSQL: a transaction-scoped advisory lock), so two processes opening a
fresh database at once migrate it once: the second waits, then finds it current.
Both backends run DDL inside transactions, so a failed migration leaves the old schema.
Within one process migrations also take turns on a lock of their own: Alembic's ``op`` and
``context`` are module-level proxies, so two threads migrating two homes' databases at
once would run each other's operations on the wrong connection.
"""

from __future__ import annotations

import threading
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

MIGRATIONS = Path(__file__).with_name("migrations")
_ADVISORY_LOCK = 0x61696C6564676572  # "ailedger": one lock id for every ailedger database
_ALEMBIC_IN_USE = threading.Lock()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (default: the newest)."""
    if revision == "head":
        with engine.connect() as connection:
            if current_revision(connection) == head_revision():
                return  # the common case: nothing to do, no lock held for long
    with _ALEMBIC_IN_USE, engine.begin() as connection:
        _lock(connection)
        if revision == "head" and current_revision(connection) == head_revision():
            return  # another process migrated it while we waited
        command.upgrade(_config(connection), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema down to ``revision`` (``"base"``: no ailedger tables at all)."""
    with _ALEMBIC_IN_USE, engine.begin() as connection:
        _lock(connection)
        command.downgrade(_config(connection), revision)


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


@cache
def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config(None)).get_current_head()


def _config(connection: Connection | None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _lock(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ADVISORY_LOCK})
    # SQLite: the transaction began with BEGIN IMMEDIATE, which is the lock.
