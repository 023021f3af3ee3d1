"""The audit log read a page at a time, as its owner and its auditors look at it.

Everything here reads the log's SQLite store read-only (the running node keeps
appending) inside one snapshot, and never loads the whole log for one answer: a page of
history is one indexed query with ``LIMIT``/``OFFSET`` (filters by dataset or kind are
evaluated by SQLite's JSON functions, not in Python), a proof costs O(log n) stored
subtree hashes (RFC 6962 §2.1.1), and the timeline is a ``GROUP BY`` over the entries'
``time`` field.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ailedger.audit import _store
from ailedger.audit.checkpoint import Checkpoint, parse_checkpoint
from ailedger.audit.errors import AuditLogCorruptError
from ailedger.audit.merkle import consistency_proof, inclusion_proof, leaf_hash, verify_inclusion
from ailedger.audit.receipt import make_receipt
from ailedger.errors import NotFoundError

MAX_PAGE = 500  # the most entries one page of history holds
# SQLite reads each entry's canonical JSON as text for its JSON functions (they refuse BLOBs).
_FIELD = "json_extract(CAST(data AS TEXT), '$.{}')"


@dataclass(frozen=True)
class HistoryEntry:
    """An entry with its inclusion proof under the checkpoint the history was read at."""

    index: int
    entry: dict[str, Any]
    proof: list[bytes]
    proof_ok: bool


@dataclass(frozen=True)
class HistoryPage:
    """One page of the entries a signed checkpoint covers, matching a filter.

    ``size`` counts every stored entry (an unsigned tail included), ``total`` those under
    the checkpoint that match the filter; ``entries`` are ``offset`` on, at most a page.
    """

    checkpoint_size: int
    checkpoint_root: bytes
    checkpoint_time: int
    size: int
    total: int
    offset: int
    entries: list[HistoryEntry]


@dataclass(frozen=True)
class EntryReceipt:
    """An entry and a receipt for it (``audit.receipt`` format) under ``checkpoint``, the
    latest anchored one that covers it when there is one (so whoever holds the receipt can
    compare its root with the chain's), else the latest signed one."""

    index: int
    entry: dict[str, Any]
    leaf_hash: bytes
    receipt: dict[str, Any]
    checkpoint: Checkpoint
    anchored: bool
    proof_ok: bool


@contextmanager
def _snapshot(directory: Path) -> Iterator[sqlite3.Connection | None]:
    """A read-only connection in one transaction, or None when there is no log yet."""
    path = _store.db_path(directory)
    if not path.exists():
        yield None
        return
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.DatabaseError as exc:
        raise _damaged(path, exc) from exc
    try:
        conn.execute("BEGIN")  # checkpoint, entries and nodes agree
        yield conn
    except (sqlite3.DatabaseError, LookupError, TypeError, ValueError) as exc:  # bad rows
        raise _damaged(path, exc) from exc
    finally:
        conn.close()


def _damaged(path: Path, exc: Exception) -> AuditLogCorruptError:
    return AuditLogCorruptError(
        f"audit log {path} is damaged and cannot be read ({exc}); "
        "run `ailedger audit verify`, then restore it from a backup"
    )


def _latest_checkpoint(conn: sqlite3.Connection, public_key: Ed25519PublicKey) -> Checkpoint | None:
    row = conn.execute("SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1").fetchone()
    return parse_checkpoint(row[0], public_key) if row else None


def history_page(
    directory: Path,
    public_key: Ed25519PublicKey,
    *,
    dataset: str | None = None,
    kind: str | None = None,
    offset: int = 0,
    limit: int | None = 50,
    newest_first: bool = True,
) -> HistoryPage:
    """Entries the latest signed checkpoint covers (optionally only those about
    ``dataset`` or of ``kind``), each proved against that checkpoint; ``limit`` None reads
    them all (the CLI), else at most :data:`MAX_PAGE`."""
    limit = None if limit is None else max(0, min(limit, MAX_PAGE))
    offset = max(0, offset)
    with _snapshot(directory) as conn:
        if conn is None:
            return HistoryPage(0, b"", 0, 0, 0, offset, [])
        size = _store.stored_size(conn)
        checkpoint = _latest_checkpoint(conn, public_key)
        if checkpoint is None:
            return HistoryPage(0, b"", 0, size, 0, offset, [])
        where, params = ["idx < ?"], list[object]([checkpoint.size])
        if dataset is not None:
            where.append(f"lower(CAST({_FIELD.format('dataset')} AS TEXT)) = lower(?)")
            params.append(dataset)
        if kind is not None:
            where.append(f"{_FIELD.format('kind')} = ?")
            params.append(kind)
        clause = " AND ".join(where)
        (total,) = conn.execute(f"SELECT COUNT(*) FROM entries WHERE {clause}", params).fetchone()
        order = "DESC" if newest_first else "ASC"
        rows = conn.execute(
            f"SELECT idx, data FROM entries WHERE {clause} ORDER BY idx {order} LIMIT ? OFFSET ?",
            [*params, -1 if limit is None else limit, offset],
        ).fetchall()
        nodes = _store.NodeReader(conn)
        found = []
        for idx, data in rows:
            proof = inclusion_proof(idx, checkpoint.size, nodes.subtree)
            ok = verify_inclusion(
                leaf_hash(bytes(data)), idx, checkpoint.size, proof, checkpoint.root
            )
            found.append(HistoryEntry(idx, json.loads(bytes(data)), proof, ok))
        return HistoryPage(
            checkpoint.size,
            checkpoint.root,
            checkpoint.timestamp,
            size,
            int(total),
            offset,
            found,
        )


def entry_receipt(
    directory: Path,
    public_key: Ed25519PublicKey,
    index: int,
    anchors: Sequence[tuple[int, bytes]] = (),
) -> EntryReceipt:
    """Entry ``index`` with a receipt under the latest anchored checkpoint that covers it
    (its size and root among ``anchors``), or under the latest signed checkpoint."""
    with _snapshot(directory) as conn:
        row = None
        if conn is not None and 0 <= index < 2**63:
            row = conn.execute("SELECT data FROM entries WHERE idx = ?", (index,)).fetchone()
        if conn is None or row is None:
            raise NotFoundError(
                f"the audit log has no entry {index}; list them with GET /api/v1/audit/entries"
            )
        data = bytes(row[0])
        checkpoint, anchored = _covering_checkpoint(conn, public_key, index, anchors)
        if checkpoint is None:
            raise NotFoundError(
                f"audit entry {index} is not under a signed checkpoint yet; the running node "
                "signs new entries within a second, ask again"
            )
        proof = inclusion_proof(index, checkpoint.size, _store.NodeReader(conn).subtree)
        leaf = leaf_hash(data)
        return EntryReceipt(
            index,
            json.loads(data),
            leaf,
            make_receipt(index, data, checkpoint.note, proof),
            checkpoint,
            anchored,
            verify_inclusion(leaf, index, checkpoint.size, proof, checkpoint.root),
        )


def _covering_checkpoint(
    conn: sqlite3.Connection,
    public_key: Ed25519PublicKey,
    index: int,
    anchors: Sequence[tuple[int, bytes]],
) -> tuple[Checkpoint | None, bool]:
    """The newest anchored checkpoint covering ``index`` that is in the log and signed by
    ``public_key``, else the newest signed one."""
    for size, root in sorted(anchors, reverse=True):
        if size <= index:
            break
        row = conn.execute("SELECT note FROM checkpoints WHERE size = ?", (size,)).fetchone()
        checkpoint = parse_checkpoint(row[0], public_key) if row else None
        if checkpoint is not None and checkpoint.root == root:
            return checkpoint, True
    latest = _latest_checkpoint(conn, public_key)
    if latest is None or latest.size <= index:
        return None, False
    return latest, False


def timeline(directory: Path, bucket_s: int) -> list[tuple[int, int]]:
    """(start of bucket in unix seconds, entries logged in it), oldest first, for entries
    that carry a ``time``; buckets with no entry are left out."""
    if bucket_s <= 0:
        raise ValueError("a timeline bucket is a positive number of seconds")
    with _snapshot(directory) as conn:
        if conn is None:
            return []
        when = _FIELD.format("time")
        rows = conn.execute(
            f"SELECT CAST({when} AS INTEGER) / ? * ? AS bucket, COUNT(*) FROM entries "
            f"WHERE json_type(CAST(data AS TEXT), '$.time') = 'integer' "
            "GROUP BY bucket ORDER BY bucket",
            (bucket_s, bucket_s),
        ).fetchall()
        return [(int(b), int(n)) for b, n in rows]


def checkpoint_series(directory: Path, *, limit: int = 1000) -> list[tuple[int, int, bytes]]:
    """(time, size, root) of the latest ``limit`` checkpoints the log stores, oldest first
    (as stored: verification checks their signatures, this only draws them)."""
    with _snapshot(directory) as conn:
        if conn is None:
            return []
        rows = conn.execute(
            "SELECT time, size, root FROM checkpoints ORDER BY size DESC LIMIT ?", (limit,)
        ).fetchall()
        return [(int(t), int(s), bytes(r)) for t, s, r in reversed(rows)]


def consistency(directory: Path, size1: int, size2: int) -> list[bytes]:
    """RFC 6962 §2.1.2 proof that the log's tree of ``size1`` is a prefix of ``size2``,
    from the stored subtree hashes."""
    with _snapshot(directory) as conn:
        if conn is None or not 0 < size1 <= size2 <= _store.stored_size(conn):
            raise NotFoundError(f"the audit log has no trees of sizes {size1} and {size2}")
        return consistency_proof(size1, size2, _store.NodeReader(conn).subtree)
