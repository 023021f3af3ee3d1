"""The chain store's background WAL checkpoint: it moves committed blocks into the
database file without the writer's help, and leaves durability to the WAL."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ailedger.chain.embedded._kvstore import (
    AUTOCHECKPOINT_BACKSTOP_PAGES,
    StagedSqliteDB,
    WalCheckpointer,
    open_sqlite,
)


def _commit_blocks(kv: StagedSqliteDB, checkpointer: WalCheckpointer | None, n: int) -> None:
    for i in range(n):
        kv[b"key %d" % i] = b"value %d" % i
        kv.commit()
        if checkpointer is not None:
            checkpointer.committed()


def _rows_in_main_file(db: Path, scratch: Path) -> int:
    """Rows readable from the database file alone, as if the WAL had never existed."""
    copy = scratch / "main-only.sqlite"
    shutil.copyfile(db, copy)
    conn = sqlite3.connect(copy)
    try:
        return int(conn.execute("SELECT count(*) FROM kv").fetchone()[0])
    except sqlite3.OperationalError:  # the table itself is still only in the WAL
        return 0
    finally:
        conn.close()


def _wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


@contextlib.contextmanager
def _store(db: Path, every: int) -> Iterator[tuple[StagedSqliteDB, WalCheckpointer]]:
    conn = open_sqlite(db)
    checkpointer = WalCheckpointer(db, every=every)
    try:
        yield StagedSqliteDB(conn), checkpointer
    finally:
        checkpointer.close()
        conn.close()


def test_checkpointer_moves_commits_into_the_database_file(tmp_path: Path) -> None:
    db = tmp_path / "chain.sqlite"
    with _store(db, every=4) as (kv, checkpointer):
        _commit_blocks(kv, checkpointer, 8)
        assert _wait_for(lambda: checkpointer.checkpoints >= 2)
        assert _rows_in_main_file(db, tmp_path) == 8


def test_the_writers_own_checkpoint_is_only_a_backstop(tmp_path: Path) -> None:
    conn = open_sqlite(tmp_path / "chain.sqlite")
    try:
        pages = conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        assert pages == AUTOCHECKPOINT_BACKSTOP_PAGES > 1000  # above SQLite's default
        assert conn.execute("PRAGMA journal_size_limit").fetchone()[0] > 0
    finally:
        conn.close()


def test_without_it_commits_stay_in_the_wal(tmp_path: Path) -> None:
    """The control: the writer alone does not checkpoint this early (its backstop is far
    larger), so the test above shows the checkpointer's work, not SQLite's."""
    db = tmp_path / "chain.sqlite"
    conn = open_sqlite(db)
    kv = StagedSqliteDB(conn)
    try:
        _commit_blocks(kv, None, 8)
        assert _rows_in_main_file(db, tmp_path) == 0
        assert kv[b"key 7"] == b"value 7"  # committed all the same, in the WAL
    finally:
        conn.close()


def test_checkpointer_runs_only_every_n_commits(tmp_path: Path) -> None:
    with _store(tmp_path / "chain.sqlite", every=100) as (kv, checkpointer):
        _commit_blocks(kv, checkpointer, 99)
        time.sleep(0.2)
        assert checkpointer.checkpoints == 0
        _commit_blocks(kv, checkpointer, 1)
        assert _wait_for(lambda: checkpointer.checkpoints == 1)
