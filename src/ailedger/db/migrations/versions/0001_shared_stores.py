"""The shared stores: catalog of chain events, a data owner's records, the patient cohort.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # sharing: the catalog, an index of DataMarket events plus verified metadata
    op.create_table(
        "sharing_catalog_sync",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("block", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_sharing_catalog_sync"),
    )
    op.create_table(
        "sharing_catalog_datasets",
        sa.Column("dataset_id", sa.String(66)),
        sa.Column("owner", sa.String(42), nullable=False),
        sa.Column("ciphertext_hash", sa.String(64), nullable=False),
        sa.Column("metadata_hash", sa.String(64), nullable=False),
        sa.Column("purposes", sa.BigInteger(), nullable=False),
        sa.Column("needs_approval", sa.Boolean(), nullable=False),
        sa.Column("price", sa.String(78), nullable=False),
        sa.Column("duration", sa.BigInteger(), nullable=False),
        sa.Column("max_reads", sa.BigInteger(), nullable=False),
        sa.Column("retired", sa.Boolean(), nullable=False),
        sa.Column("block", sa.BigInteger(), nullable=False),
        sa.Column("metadata_json", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("dataset_id", name="pk_sharing_catalog_datasets"),
    )
    op.create_index("ix_sharing_catalog_datasets_block", "sharing_catalog_datasets", ["block"])
    op.create_table(
        "sharing_catalog_requests",
        sa.Column("request_id", sa.BigInteger(), autoincrement=False),
        sa.Column("dataset_id", sa.String(66), nullable=False),
        sa.Column("requester", sa.String(42), nullable=False),
        sa.Column("owner", sa.String(42), nullable=False),
        sa.Column("purpose", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("block", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("request_id", name="pk_sharing_catalog_requests"),
    )

    # sharing: what data owners' nodes keep (data keys wrapped to the owner's own key),
    # per owner address, and the request nonces they have seen
    op.create_table(
        "sharing_owner_datasets",
        sa.Column("dataset_id", sa.LargeBinary(32)),
        sa.Column("owner", sa.String(42), nullable=False),
        sa.Column("blob_hash", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("metadata_json", sa.Text(), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("dataset_id", name="pk_sharing_owner_datasets"),
    )
    op.create_index("ix_sharing_owner_datasets_owner", "sharing_owner_datasets", ["owner"])
    op.create_table(
        "sharing_owner_nonces",
        sa.Column("nonce", sa.LargeBinary(32)),
        sa.Column("expiry", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name="pk_sharing_owner_nonces"),
    )
    op.create_index("ix_sharing_owner_nonces_expiry", "sharing_owner_nonces", ["expiry"])
    op.create_table(
        "sharing_owner_watch",
        sa.Column("owner", sa.String(42)),
        sa.Column("block", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("owner", name="pk_sharing_owner_watch"),
    )

    # health: the patient cohort (identifiable: never leaves the organisation)
    op.create_table(
        "health_patients",
        sa.Column("local_id", sa.String(256)),
        sa.Column("matchmaking", sa.Boolean(), nullable=False),
        sa.Column("research", sa.Boolean(), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("local_id", name="pk_health_patients"),
    )
    op.create_index("ix_health_patients_matchmaking", "health_patients", ["matchmaking"])
    op.create_index("ix_health_patients_research", "health_patients", ["research"])


def downgrade() -> None:
    op.drop_index("ix_health_patients_research", "health_patients")
    op.drop_index("ix_health_patients_matchmaking", "health_patients")
    op.drop_table("health_patients")
    op.drop_table("sharing_owner_watch")
    op.drop_index("ix_sharing_owner_nonces_expiry", "sharing_owner_nonces")
    op.drop_table("sharing_owner_nonces")
    op.drop_index("ix_sharing_owner_datasets_owner", "sharing_owner_datasets")
    op.drop_table("sharing_owner_datasets")
    op.drop_table("sharing_catalog_requests")
    op.drop_index("ix_sharing_catalog_datasets_block", "sharing_catalog_datasets")
    op.drop_table("sharing_catalog_datasets")
    op.drop_table("sharing_catalog_sync")
