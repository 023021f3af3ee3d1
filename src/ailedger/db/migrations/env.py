"""Alembic's environment: always online, on the connection :mod:`ailedger.db.migrate` passes.

No ``target_metadata``: migrations are written out in full and never import capability
modules (autogenerate is only used by a test that compares them with the capabilities').
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
