"""A key/value store for py-evm that commits whole blocks atomically to SQLite.

py-evm writes trie nodes, headers and receipts through a plain key/value interface.
Writes are staged in memory and reach disk only in :meth:`StagedSqliteDB.commit`, one
SQLite transaction per block (WAL, ``synchronous=FULL``): after a crash the store holds
exactly the blocks whose commit returned, and nothing of a half-built one. Callers
add their own rows (receipt and log indexes) to the same transaction, so the indexes
can never disagree with the chain state.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from eth.db.backends.base import BaseDB

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;
"""

# Trie nodes are read far more often than written; a bounded cache keeps hot state
# in memory without letting a long-lived node grow without limit.
_CACHE_ENTRIES = 200_000
_DELETED = None
# The background checkpointer copies the WAL into the database file every this many
# commits. SQLite rewinds the WAL only after a checkpoint that caught up with every frame,
# which a background one rarely does while blocks keep coming; so the writer keeps its
# own automatic checkpoint as a backstop, at twice SQLite's default size. By then most
# frames are already copied, so the one commit that runs it has little left to do.
CHECKPOINT_EVERY_COMMITS = 64
AUTOCHECKPOINT_BACKSTOP_PAGES = 2_000
# After a rewind, a WAL that grew past this (a very large block) is truncated back.
_WAL_SIZE_LIMIT_BYTES = 16 * 1024 * 1024

log = logging.getLogger(__name__)


class StagedSqliteDB(BaseDB):
    """py-evm database whose writes stay in memory until :meth:`commit`."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._conn.executescript(_SCHEMA)
        self._staged: dict[bytes, bytes | None] = {}
        self._cache: OrderedDict[bytes, bytes] = OrderedDict()

    def __getitem__(self, key: bytes) -> bytes:
        if key in self._staged:
            value = self._staged[key]
            if value is _DELETED:
                raise KeyError(key)
            return value
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        row = self._conn.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        value = bytes(row[0])
        self._remember(key, value)
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._staged[key] = value

    def __delitem__(self, key: bytes) -> None:
        if not self._exists(key):
            raise KeyError(key)
        self._staged[key] = _DELETED

    def _exists(self, key: bytes) -> bool:
        try:
            self[key]
        except KeyError:
            return False
        return True

    def _remember(self, key: bytes, value: bytes) -> None:
        self._cache[key] = value
        if len(self._cache) > _CACHE_ENTRIES:
            self._cache.popitem(last=False)

    def commit(self, extra: Callable[[sqlite3.Connection], None] | None = None) -> None:
        """Write every staged change, plus ``extra``'s rows, in one durable transaction."""
        upserts = [(k, v) for k, v in self._staged.items() if v is not _DELETED]
        deletes = [(k,) for k, v in self._staged.items() if v is _DELETED]
        with self._conn:  # one transaction: all of it reaches disk, or none
            self._conn.executemany("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)", upserts)
            self._conn.executemany("DELETE FROM kv WHERE k = ?", deletes)
            if extra is not None:
                extra(self._conn)
        for key, value in upserts:
            self._remember(key, value)
        for (key,) in deletes:
            self._cache.pop(key, None)
        self._staged.clear()

    def discard(self) -> None:
        """Forget staged changes (a block that failed to build)."""
        self._staged.clear()

    @property
    def has_staged(self) -> bool:
        return bool(self._staged)


def open_sqlite(path: Path) -> sqlite3.Connection:
    """Open the chain database with the durability settings the node relies on."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk (WAL fsynced) before it returns, so a receipt we hand
    # out survives kill -9 and power loss alike.
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_BACKSTOP_PAGES}")
    conn.execute(f"PRAGMA journal_size_limit={_WAL_SIZE_LIMIT_BYTES}")
    # `with conn:` needs Python-managed transactions; isolation_level=None disables
    # them, so switch back to deferred mode for the context manager to BEGIN/COMMIT.
    conn.isolation_level = "DEFERRED"
    integrity = conn.execute("PRAGMA quick_check").fetchone()[0]
    if integrity != "ok":
        raise sqlite3.DatabaseError(
            f"chain database {path} failed its integrity check: {integrity}"
        )
    return conn


def open_reader(path: Path) -> sqlite3.Connection:
    """A read-only connection to the chain database, for reads that must see only
    committed blocks (each statement reads the latest committed snapshot)."""
    uri = path.resolve().as_uri() + "?mode=ro"  # percent-encodes any ? or # in the path
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


class WalCheckpointer:
    """Copies the WAL into the database file on a thread and a connection of its own.

    SQLite checkpoints automatically inside the commit that crosses its threshold, so
    every few dozen blocks one block's receipts waited for a checkpoint's writes and
    fsync as well (a commit's median was 1.6 ms, its 99th percentile 11 ms). A passive
    checkpoint here runs beside the writer (the sqlite3 module releases the GIL while
    SQLite works) and never blocks it. Durability does not depend on it: a commit is
    durable once its WAL frames are fsynced, checkpointed or not.
    """

    def __init__(self, path: Path, every: int = CHECKPOINT_EVERY_COMMITS) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA busy_timeout=5000")
        # The database file is fsynced after each checkpoint, whatever the build's default.
        self._conn.execute("PRAGMA synchronous=FULL")
        self._every = every
        self._commits = 0
        self._due = threading.Event()
        self._stopping = False
        self.checkpoints = 0  # completed checkpoint runs, for tests and diagnostics
        self._thread = threading.Thread(
            target=self._run, name="ailedger-wal-checkpoint", daemon=True
        )
        self._thread.start()

    def committed(self) -> None:
        """Count one commit (called by the writer after it returned)."""
        self._commits += 1
        if self._commits >= self._every:
            self._commits = 0
            self._due.set()

    def close(self) -> None:
        self._stopping = True
        self._due.set()
        self._thread.join()
        self._conn.close()

    def _run(self) -> None:
        while True:
            self._due.wait()
            self._due.clear()
            if self._stopping:
                return
            try:
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error:
                # The writer's backstop checkpoint still bounds the WAL; say why this
                # one failed and try again after the next batch of commits.
                log.exception("background WAL checkpoint failed")
                continue
            self.checkpoints += 1
