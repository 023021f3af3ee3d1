""" "Who accessed my data?": entries of the audit log with their inclusion proofs.

Reads the log's SQLite store read-only, so the owner can ask while the node that owns
the log keeps appending. Each entry is proved against the latest signed checkpoint
(RFC 9162 §2.1.3) whose signature is checked with the log's public key.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ailedger.audit import _store
from ailedger.audit.checkpoint import parse_checkpoint
from ailedger.audit.errors import AuditLogCorruptError
from ailedger.audit.merkle import inclusion_proof, leaf_hash, verify_inclusion


@dataclass(frozen=True)
class HistoryEntry:
    index: int
    entry: dict[str, Any]
    proof: list[bytes]
    proof_ok: bool


@dataclass(frozen=True)
class History:
    checkpoint_size: int
    checkpoint_root: bytes
    entries: list[HistoryEntry]


def read_history(
    directory: Path, public_key: Ed25519PublicKey, *, dataset: str | None = None
) -> History:
    """Entries covered by the latest checkpoint, optionally only those of ``dataset``."""
    path = _store.db_path(directory)
    if not path.exists():
        return History(0, b"", [])
    try:
        return _read(sqlite3.connect(f"file:{path}?mode=ro", uri=True), public_key, dataset)
    except (sqlite3.DatabaseError, LookupError, TypeError, ValueError) as exc:  # bad rows
        raise AuditLogCorruptError(
            f"audit log {path} is damaged and cannot be read ({exc}); "
            "run `ailedger audit verify`, then restore it from a backup"
        ) from exc


def _read(conn: sqlite3.Connection, public_key: Ed25519PublicKey, dataset: str | None) -> History:
    try:
        conn.execute("BEGIN")  # one snapshot: checkpoint, entries and nodes agree
        row = conn.execute("SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1").fetchone()
        checkpoint = parse_checkpoint(row[0], public_key) if row else None
        if checkpoint is None:
            return History(0, b"", [])
        nodes = _store.NodeReader(conn)
        found = []
        for idx, data in conn.execute(
            "SELECT idx, data FROM entries WHERE idx < ? ORDER BY idx", (checkpoint.size,)
        ).fetchall():
            entry = json.loads(bytes(data))
            if dataset is not None and str(entry.get("dataset", "")).lower() != dataset.lower():
                continue
            proof = inclusion_proof(idx, checkpoint.size, nodes.subtree)
            ok = verify_inclusion(
                leaf_hash(bytes(data)), idx, checkpoint.size, proof, checkpoint.root
            )
            found.append(HistoryEntry(idx, entry, proof, ok))
        return History(checkpoint.size, checkpoint.root, found)
    finally:
        conn.close()
