"""What an owner's node keeps about its own datasets, and the request nonces it has seen.

Data keys are kept wrapped to the owner's own X25519 key (HPKE, as they are wrapped to
requesters), so this database holds nothing that decrypts data without the passphrase.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS datasets (
    dataset_id BLOB PRIMARY KEY,
    blob_hash TEXT NOT NULL,
    version INTEGER NOT NULL,
    wrapped_key BLOB NOT NULL,
    metadata TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS nonces (nonce BLOB PRIMARY KEY, expiry INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS watch (k TEXT PRIMARY KEY, block INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class OwnedDataset:
    dataset_id: bytes
    blob_hash: str
    version: int
    wrapped_key: bytes
    metadata: dict[str, Any]


class OwnerStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._conn.close()

    def add(self, dataset: OwnedDataset) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO datasets VALUES (?, ?, ?, ?, ?, ?)",
                (
                    dataset.dataset_id,
                    dataset.blob_hash,
                    dataset.version,
                    dataset.wrapped_key,
                    json.dumps(dataset.metadata, sort_keys=True),
                    time.time(),
                ),
            )

    def get(self, dataset_id: bytes) -> OwnedDataset | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT dataset_id, blob_hash, version, wrapped_key, metadata FROM datasets "
                "WHERE dataset_id = ?",
                (dataset_id,),
            ).fetchone()
        if row is None:
            return None
        return OwnedDataset(bytes(row[0]), row[1], row[2], bytes(row[3]), json.loads(row[4]))

    def all(self) -> list[OwnedDataset]:
        with self._lock:
            ids = [bytes(r[0]) for r in self._conn.execute("SELECT dataset_id FROM datasets")]
        return [d for d in (self.get(i) for i in ids) if d is not None]

    def use_nonce(self, nonce: bytes, expiry: int) -> bool:
        """Record a request nonce; False if it was seen before (a replay)."""
        with self._lock:
            self._conn.execute("DELETE FROM nonces WHERE expiry < ?", (int(time.time()) - 3600,))
            try:
                self._conn.execute("INSERT INTO nonces VALUES (?, ?)", (nonce, expiry))
            except sqlite3.IntegrityError:
                return False
        return True

    def watched_block(self) -> int:
        """The last block whose DataMarket events were logged (-1: none yet)."""
        with self._lock:
            row = self._conn.execute("SELECT block FROM watch WHERE k = 'market'").fetchone()
        return -1 if row is None else int(row[0])

    def set_watched_block(self, block: int) -> None:
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO watch VALUES ('market', ?)", (block,))
