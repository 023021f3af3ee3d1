"""What an owner's node keeps about its own datasets, and the request nonces it has seen.

Data keys are kept wrapped to the owner's own X25519 key (HPKE, as they are wrapped to
requesters), so these rows hold nothing that decrypts data without the passphrase. The
tables live in the node's database (:mod:`ailedger.db`); other capabilities reach them
only through :mod:`ailedger.sharing.owner`'s functions.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Float,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    delete,
    select,
)

from ailedger.db import insert_ignore, metadata, upsert

NONCE_GRACE_SECONDS = 3600
"""Nonces are forgotten this long after their request expired (clock skew margin)."""

datasets = Table(
    "sharing_owner_datasets",
    metadata,
    Column("dataset_id", LargeBinary(32), primary_key=True),
    Column("blob_hash", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("metadata_json", Text, nullable=False),
    Column("created", Float, nullable=False),
)
nonces = Table(
    "sharing_owner_nonces",
    metadata,
    Column("nonce", LargeBinary(32), primary_key=True),
    Column("expiry", BigInteger, nullable=False, index=True),
)
watch = Table(
    "sharing_owner_watch",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("block", BigInteger, nullable=False),
)


@dataclass(frozen=True)
class OwnedDataset:
    dataset_id: bytes
    blob_hash: str
    version: int
    wrapped_key: bytes
    metadata: dict[str, Any]


class OwnerStore:
    """The owner's records in ``database``; safe to share between threads and processes."""

    def __init__(self, database: Engine) -> None:
        self._db = database

    def add(self, dataset: OwnedDataset) -> None:
        with self._db.begin() as conn:
            conn.execute(
                datasets.insert().values(
                    dataset_id=dataset.dataset_id,
                    blob_hash=dataset.blob_hash,
                    version=dataset.version,
                    wrapped_key=dataset.wrapped_key,
                    metadata_json=json.dumps(dataset.metadata, sort_keys=True),
                    created=time.time(),
                )
            )

    def get(self, dataset_id: bytes) -> OwnedDataset | None:
        with self._db.begin() as conn:
            row = conn.execute(
                select(datasets).where(datasets.c.dataset_id == dataset_id)
            ).one_or_none()
        return None if row is None else _owned(row)

    def all(self) -> list[OwnedDataset]:
        with self._db.begin() as conn:
            rows = conn.execute(select(datasets).order_by(datasets.c.created)).all()
        return [_owned(row) for row in rows]

    def use_nonce(self, nonce: bytes, expiry: int) -> bool:
        """Record a request nonce; False if it was seen before (a replay)."""
        with self._db.begin() as conn:
            forget_before = int(time.time()) - NONCE_GRACE_SECONDS
            conn.execute(delete(nonces).where(nonces.c.expiry < forget_before))
            return insert_ignore(conn, nonces, {"nonce": nonce, "expiry": expiry})

    def watched_block(self) -> int:
        """The last block whose DataMarket events were logged (-1: none yet)."""
        with self._db.begin() as conn:
            block = conn.execute(
                select(watch.c.block).where(watch.c.name == "market")
            ).scalar_one_or_none()
        return -1 if block is None else int(block)

    def set_watched_block(self, block: int) -> None:
        with self._db.begin() as conn:
            upsert(conn, watch, {"name": "market", "block": block}, key=("name",))


def _owned(row: Any) -> OwnedDataset:
    return OwnedDataset(
        bytes(row.dataset_id),
        row.blob_hash,
        int(row.version),
        bytes(row.wrapped_key),
        json.loads(row.metadata_json),
    )
