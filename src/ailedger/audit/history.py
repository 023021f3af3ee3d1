""" "Who accessed my data?": entries of the audit log with their inclusion proofs.

Reads the log's SQLite store read-only, so the owner can ask while the node that owns
the log keeps appending. Each entry is proved against the latest signed checkpoint
(RFC 9162 §2.1.3) whose signature is checked with the log's public key. A page at a
time: :func:`ailedger.audit.browse.history_page`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ailedger.audit.browse import HistoryEntry, history_page

__all__ = ["History", "HistoryEntry", "read_history"]


@dataclass(frozen=True)
class History:
    checkpoint_size: int
    checkpoint_root: bytes
    entries: list[HistoryEntry]


def read_history(
    directory: Path, public_key: Ed25519PublicKey, *, dataset: str | None = None
) -> History:
    """Entries covered by the latest checkpoint, optionally only those of ``dataset``."""
    page = history_page(directory, public_key, dataset=dataset, limit=None, newest_first=False)
    return History(page.checkpoint_size, page.checkpoint_root, page.entries)
