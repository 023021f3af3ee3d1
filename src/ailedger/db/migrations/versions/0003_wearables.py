"""A person's imported wearable data: one row per import batch (its readings are one
encrypted blob; its Merkle root is in the audit log) and one per reading's keyed digest,
so a later upload of the same readings is recognised without decrypting anything.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "health_wearable_batches",
        sa.Column("batch_id", sa.String(32)),
        sa.Column("imported_at", sa.BigInteger(), nullable=False),
        sa.Column("file_name", sa.String(512), nullable=False),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("readings", sa.Integer(), nullable=False),
        sa.Column("first_start", sa.BigInteger(), nullable=False),
        sa.Column("last_end", sa.BigInteger(), nullable=False),
        sa.Column("blob", sa.String(64), nullable=False),
        sa.Column("wrapped_key", sa.Text(), nullable=False),
        sa.Column("merkle_root", sa.String(64), nullable=False),
        sa.Column("audit_index", sa.BigInteger(), nullable=False),
        sa.Column("report", sa.Text(), nullable=False),
        sa.Column("provenance", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("batch_id", name="pk_health_wearable_batches"),
    )
    op.create_table(
        "health_wearable_readings",
        sa.Column("digest", sa.String(64)),
        sa.Column("batch_id", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name="pk_health_wearable_readings"),
    )
    op.create_index(
        "ix_health_wearable_readings_batch_id", "health_wearable_readings", ["batch_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_health_wearable_readings_batch_id", "health_wearable_readings")
    op.drop_table("health_wearable_readings")
    op.drop_table("health_wearable_batches")
