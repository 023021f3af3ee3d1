"""The node's shared database: SQLite in the home by default, PostgreSQL when configured.

Stores that the users of one organisation share (the catalog of chain events, a data
owner's records, the patient cohort) keep their rows here, through SQLAlchemy Core, so the
same code runs on a file in the home and on an organisation's PostgreSQL server.

Foundations only: this package knows no capability. Each capability describes its own
tables (``sharing/catalog.py``, ``sharing/owner_store.py``, ``health/patients.py``) on
:data:`metadata`; the Alembic migrations in ``db/migrations/`` create them, written out
in full so that a migration never changes when a capability module does.
"""

from __future__ import annotations

from ailedger.db.engine import (
    DatabaseError,
    database_url,
    is_postgresql,
    metadata,
    open_database,
    sqlite_url,
)
from ailedger.db.sql import insert_ignore, insert_missing, transaction, upsert

__all__ = [
    "DatabaseError",
    "database_url",
    "insert_ignore",
    "insert_missing",
    "is_postgresql",
    "metadata",
    "open_database",
    "sqlite_url",
    "transaction",
    "upsert",
]
