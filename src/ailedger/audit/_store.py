"""SQLite storage of the audit log: entries, RFC 6962 perfect-subtree hashes, checkpoints.

Why SQLite (WAL, ``synchronous=FULL``) rather than an append-only file with ``fsync``: a
batch writes entries, their leaf hashes, the interior hashes they complete and sometimes a
checkpoint, and all of it must become durable atomically; SQLite gives that in one
transaction (one WAL ``fsync`` per group commit), survives ``kill -9`` and power loss
without a recovery routine of our own, and gives indexed random access to any entry or
node for proofs. The rest of the node already stores its chain this way.

Tables (``id`` of a node = ``level << 48 | index``; level 0 holds the leaf hashes, and
node ``(level, i)`` is MTH of leaves ``[i * 2**level, (i + 1) * 2**level)``, RFC 6962 §2.1)::

    meta(key TEXT PRIMARY KEY, value TEXT)          origin, public key, format version
    entries(idx INTEGER PRIMARY KEY, data BLOB)      canonical JSON bytes of each entry
    nodes(id INTEGER PRIMARY KEY, hash BLOB)         every perfect subtree, written once
    checkpoints(size INTEGER PRIMARY KEY, root BLOB, time INTEGER, note TEXT)
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from ailedger.audit.merkle import node_hash, split_point

LEVEL_SHIFT = 48
FORMAT_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (idx INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (id INTEGER PRIMARY KEY, hash BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (
    size INTEGER PRIMARY KEY, root BLOB NOT NULL, time INTEGER NOT NULL, note TEXT NOT NULL
);
"""

NodeRow = tuple[int, bytes]


def db_path(directory: Path) -> Path:
    return directory / "audit.sqlite3"


def node_id(level: int, index: int) -> int:
    return (level << LEVEL_SHIFT) | index


def connect(path: Path, *, timeout: float = 10.0) -> sqlite3.Connection:
    """A connection in autocommit mode; writers use explicit ``BEGIN IMMEDIATE``."""
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def create_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(_SCHEMA)


def read_meta(conn: sqlite3.Connection) -> dict[str, str]:
    return {str(k): str(v) for k, v in conn.execute("SELECT key, value FROM meta")}


def write_meta(conn: sqlite3.Connection, values: dict[str, str]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", values.items())
    conn.execute("COMMIT")


def stored_size(conn: sqlite3.Connection) -> int:
    (top,) = conn.execute("SELECT MAX(idx) FROM entries").fetchone()
    return 0 if top is None else int(top) + 1


def push_leaf(frontier: list[bytes], size: int, leaf: bytes, rows: list[NodeRow]) -> int:
    """Append one leaf to the compact range ``frontier`` of a tree of ``size`` leaves.

    ``frontier`` holds the perfect subtrees of the tree, largest first (one per set bit of
    ``size``). Each subtree the leaf completes is appended to ``rows``. Returns the new size.
    """
    rows.append((node_id(0, size), leaf))
    digest, level, index = leaf, 0, size
    while index & 1:  # a right child: merge with its left sibling, the last frontier entry
        digest = node_hash(frontier.pop(), digest)
        level, index = level + 1, index >> 1
        rows.append((node_id(level, index), digest))
    frontier.append(digest)
    return size + 1


class NodeReader:
    """Reads stored perfect-subtree hashes and combines them into any range's hash."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def node(self, level: int, index: int) -> bytes:
        row = self._conn.execute(
            "SELECT hash FROM nodes WHERE id = ?", (node_id(level, index),)
        ).fetchone()
        if row is None:
            raise LookupError(f"audit log node ({level}, {index}) is missing")
        return bytes(row[0])

    def subtree(self, start: int, stop: int) -> bytes:
        """MTH of leaves ``[start, stop)`` from O(log n) stored nodes (RFC 6962 §2.1)."""
        n = stop - start
        if n & (n - 1) == 0 and start % n == 0:
            return self.node(n.bit_length() - 1, start >> (n.bit_length() - 1))
        k = split_point(n)
        return node_hash(self.subtree(start, start + k), self.subtree(start + k, stop))

    def frontier(self, size: int) -> list[bytes]:
        """The perfect subtrees of the tree of ``size`` leaves, largest first."""
        hashes, start = [], 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                hashes.append(self.node(level, start >> level))
                start += 1 << level
        return hashes


def insert_batch(
    conn: sqlite3.Connection,
    entries: Iterable[tuple[int, bytes]],
    nodes: Iterable[NodeRow],
    checkpoint: tuple[int, bytes, int, str] | None,
) -> None:
    """Write one group commit in one transaction; durable when this returns."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany("INSERT INTO entries VALUES (?, ?)", entries)
        conn.executemany("INSERT INTO nodes VALUES (?, ?)", nodes)
        if checkpoint is not None:
            conn.execute("INSERT INTO checkpoints VALUES (?, ?, ?, ?)", checkpoint)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def checkpoint_rows(conn: sqlite3.Connection) -> list[tuple[int, bytes, int, str]]:
    return [
        (int(s), bytes(r), int(t), str(n))
        for s, r, t, n in conn.execute(
            "SELECT size, root, time, note FROM checkpoints ORDER BY size"
        )
    ]


def is_locked(directory: Path) -> bool:
    """Whether a writer (an open :class:`AuditLog`) holds the directory's lock now.

    Probes with a shared lock, released at once, so concurrent verifiers do not block
    each other; a writer opening in that very instant is refused as if another held it.
    """
    try:
        fd = os.open(directory / "LOCK", os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the probe's lock
    return False


def lock_directory(directory: Path) -> int | None:
    """``flock`` the log directory for this process (released by the kernel on ``kill -9``).

    Returns the lock's file descriptor, or None when another holder has it.
    """
    fd = os.open(directory / "LOCK", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
