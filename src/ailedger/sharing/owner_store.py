"""What an owner's node keeps about its own datasets, and the request nonces it has seen.

Data keys are kept wrapped to the owner's own X25519 key (HPKE, as they are wrapped to
requesters), so these rows hold nothing that decrypts data without the passphrase. The
tables live in the node's database (:mod:`ailedger.db`); other capabilities reach them
only through :mod:`ailedger.sharing.owner`'s functions.

Several homes of one organisation may share a database, so datasets and the watched
block belong to an owner address: a node never takes another owner's dataset for its own
(it could not unwrap the key) nor skips decisions another owner's node has logged.
Nonces are shared: they are random, and a request replayed to another owner is refused.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
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

from ailedger.db import insert_ignore, insert_missing, metadata, transaction, upsert
from ailedger.db.legacy import read_legacy_rows, retire_legacy_file

NONCE_GRACE_SECONDS = 3600
"""Nonces are forgotten this long after their request expired (clock skew margin)."""

datasets = Table(
    "sharing_owner_datasets",
    metadata,
    Column("dataset_id", LargeBinary(32), primary_key=True),
    Column("owner", String(42), nullable=False, index=True),
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
    Column("owner", String(42), primary_key=True),
    Column("block", BigInteger, nullable=False),
)


# A listing whose metadata says ``"delivery": "served"`` is used at its owner's node on
# the buyer's behalf (a model's predictions) and never sent: the gateway refuses to fetch
# it. The field is in the published metadata, so a buyer sees it before paying.
DELIVERY = "delivery"
SERVED_ONLY = "served"


@dataclass(frozen=True)
class OwnedDataset:
    dataset_id: bytes
    blob_hash: str
    version: int
    wrapped_key: bytes
    metadata: dict[str, Any]

    @property
    def served_only(self) -> bool:
        """Whether the listing is used here only, never fetched (see ``SERVED_ONLY``)."""
        return self.metadata.get(DELIVERY) == SERVED_ONLY


class OwnerStore:
    """The records of ``owner`` (an address) in ``database``; safe to share between
    threads and processes."""

    def __init__(self, database: Engine, owner: str) -> None:
        self._db = database
        self.owner = owner.lower()

    def add(self, dataset: OwnedDataset) -> None:
        with transaction(self._db) as conn:
            conn.execute(
                datasets.insert().values(
                    dataset_id=dataset.dataset_id,
                    owner=self.owner,
                    blob_hash=dataset.blob_hash,
                    version=dataset.version,
                    wrapped_key=dataset.wrapped_key,
                    metadata_json=json.dumps(dataset.metadata, sort_keys=True),
                    created=time.time(),
                )
            )

    def remove(self, dataset_id: bytes) -> None:
        """Forget a dataset the chain refused to register (its key protects nothing)."""
        with transaction(self._db) as conn:
            conn.execute(
                datasets.delete().where(
                    datasets.c.dataset_id == dataset_id, datasets.c.owner == self.owner
                )
            )

    def get(self, dataset_id: bytes) -> OwnedDataset | None:
        with transaction(self._db) as conn:
            row = conn.execute(
                select(datasets).where(
                    datasets.c.dataset_id == dataset_id, datasets.c.owner == self.owner
                )
            ).one_or_none()
        return None if row is None else _owned(row)

    def all(self) -> list[OwnedDataset]:
        with transaction(self._db) as conn:
            rows = conn.execute(
                select(datasets).where(datasets.c.owner == self.owner).order_by(datasets.c.created)
            ).all()
        return [_owned(row) for row in rows]

    def use_nonce(self, nonce: bytes, expiry: int) -> bool:
        """Record a request nonce; False if it was seen before (a replay)."""
        with transaction(self._db) as conn:
            forget_before = int(time.time()) - NONCE_GRACE_SECONDS
            conn.execute(delete(nonces).where(nonces.c.expiry < forget_before))
            return insert_ignore(conn, nonces, {"nonce": nonce, "expiry": expiry})

    def adopt_legacy_file(self, path: Path) -> int:
        """Copy the records of a home made before ``node.sqlite`` (``data/owner.sqlite``:
        datasets with their wrapped keys, nonces, the watched block) into this store, then
        set the file aside; returns how many datasets it held. Without them the gateway
        could serve none of the datasets published before."""
        if not path.exists():
            return 0
        old_datasets = read_legacy_rows(
            path,
            "SELECT dataset_id, blob_hash, version, wrapped_key, metadata, created FROM datasets",
        )
        old_nonces = read_legacy_rows(path, "SELECT nonce, expiry FROM nonces")
        old_watch = read_legacy_rows(path, "SELECT block FROM watch WHERE k = 'market'")
        rows = [
            {
                "dataset_id": bytes(dataset_id),
                "owner": self.owner,
                "blob_hash": blob_hash,
                "version": version,
                "wrapped_key": bytes(wrapped_key),
                "metadata_json": metadata_json,
                "created": created,
            }
            for dataset_id, blob_hash, version, wrapped_key, metadata_json, created in old_datasets
        ]
        with transaction(self._db) as conn:
            insert_missing(conn, datasets, rows)
            insert_missing(
                conn, nonces, [{"nonce": bytes(n), "expiry": int(e)} for n, e in old_nonces]
            )
            if old_watch and int(old_watch[0][0]) > self._watched_block(conn):
                block = {"owner": self.owner, "block": int(old_watch[0][0])}
                upsert(conn, watch, block, key=("owner",))
        retire_legacy_file(path)
        return len(rows)

    def watched_block(self) -> int:
        """The last block whose DataMarket events were logged (-1: none yet)."""
        with transaction(self._db) as conn:
            return self._watched_block(conn)

    def _watched_block(self, conn: Connection) -> int:
        block = conn.execute(
            select(watch.c.block).where(watch.c.owner == self.owner)
        ).scalar_one_or_none()
        return -1 if block is None else int(block)

    def set_watched_block(self, block: int) -> None:
        with transaction(self._db) as conn:
            upsert(conn, watch, {"owner": self.owner, "block": block}, key=("owner",))


def _owned(row: Any) -> OwnedDataset:
    return OwnedDataset(
        bytes(row.dataset_id),
        row.blob_hash,
        int(row.version),
        bytes(row.wrapped_key),
        json.loads(row.metadata_json),
    )
