"""The catalog keeps every uint256 exactly: policy numbers and request ids as 78 digits.

BIGINT columns overflowed at 2^63 on a read limit the contract accepts (2^70), which
stopped every node's sync at that block. The values become zero-padded decimal text
(``ailedger.db.types.Uint256``): exact on both backends and ordered as the numbers are.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

DIGITS = 78
WIDENED = {
    "sharing_catalog_datasets": ("dataset_id", ("purposes", "price", "duration", "max_reads")),
    "sharing_catalog_requests": ("request_id", ("request_id", "purpose")),
}
NARROWED: dict[str, sa.types.TypeEngine[Any]] = {  # what 0001 made them; price was already text
    "purposes": sa.BigInteger(),
    "price": sa.String(DIGITS),
    "duration": sa.BigInteger(),
    "max_reads": sa.BigInteger(),
    "request_id": sa.BigInteger(),
    "purpose": sa.BigInteger(),
}


def upgrade() -> None:
    for table, (_, columns) in WIDENED.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                if column != "price":
                    batch.alter_column(
                        column,
                        existing_type=sa.BigInteger(),
                        type_=sa.String(DIGITS),
                        existing_nullable=False,
                        postgresql_using=f"{column}::text",
                    )
        _rewrite(table, columns, lambda text: str(int(text)).zfill(DIGITS))


def downgrade() -> None:
    # A value past 2^63 - 1 cannot go back into BIGINT: the cast fails and nothing changes.
    for table, (_, columns) in WIDENED.items():
        _rewrite(table, columns, lambda text: str(int(text)))
        with op.batch_alter_table(table) as batch:
            for column in columns:
                if column != "price":
                    batch.alter_column(
                        column,
                        existing_type=sa.String(DIGITS),
                        type_=NARROWED[column],
                        existing_nullable=False,
                        postgresql_using=f"{column}::bigint",
                    )


def _rewrite(table: str, columns: tuple[str, ...], convert: Callable[[str], str]) -> None:
    """Re-spell every value of ``columns`` in ``table`` with ``convert`` (digits to digits)."""
    key = WIDENED[table][0]
    bind = op.get_bind()
    t = sa.table(table, *(sa.column(c) for c in {key, *columns}))
    rows = bind.execute(sa.select(*t.c)).all()
    for row in rows:
        values = {c: convert(str(getattr(row, c))) for c in columns}
        bind.execute(sa.update(t).where(t.c[key] == getattr(row, key)).values(**values))
