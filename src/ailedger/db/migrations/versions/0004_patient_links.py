"""A hospital's links between its patient records and patients' wallets (the Patients
contract): one row per record, holding the random link id handed to the patient, the
wallet it names, the link's status as last seen on chain and when it was proposed.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "health_patient_links",
        sa.Column("local_id", sa.String(256)),
        sa.Column("link_id", sa.String(64), nullable=False),
        sa.Column("wallet", sa.String(42), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("proposed_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("local_id", name="pk_health_patient_links"),
        sa.UniqueConstraint("link_id", name="uq_health_patient_links_link_id"),
    )


def downgrade() -> None:
    op.drop_table("health_patient_links")
