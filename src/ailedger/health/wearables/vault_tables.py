"""The database tables of a person's wearable vault (migration 0003)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, String, Table, Text

from ailedger.db import metadata

batches_table = Table(
    "health_wearable_batches",
    metadata,
    Column("batch_id", String(32), primary_key=True),
    Column("imported_at", BigInteger, nullable=False),
    Column("file_name", String(512), nullable=False),
    Column("format", String(32), nullable=False),
    Column("readings", Integer, nullable=False),
    Column("first_start", BigInteger, nullable=False),  # unix seconds
    Column("last_end", BigInteger, nullable=False),
    Column("blob", String(64), nullable=False),  # the encrypted NDJSON of Observations
    Column("wrapped_key", Text, nullable=False),  # its data key, sealed to this home's key
    Column("merkle_root", String(64), nullable=False),  # RFC 6962 root over the lines
    Column("audit_index", BigInteger, nullable=False),  # the audit entry naming the root
    Column("report", Text, nullable=False),  # the import's counts, JSON
    # A FHIR R4 Provenance of the batch (the file by its digest, the person by wallet:
    # no device or source name, which may carry a name and stay in the encrypted batch).
    Column("provenance", Text, nullable=False),
)

readings_table = Table(
    "health_wearable_readings",
    metadata,
    # HMAC of the reading's key under a key of this home: recognises a reading uploaded
    # again without the table revealing (or letting anyone confirm) what was measured.
    Column("digest", String(64), primary_key=True),
    Column("batch_id", String(32), nullable=False, index=True),
    Column("position", Integer, nullable=False),
)
