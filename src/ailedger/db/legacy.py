"""Stores of homes made before ``node.sqlite``: read them once, then set them aside.

Such a home kept its owner records and its patients in SQLite files of their own. A
capability adopts its file on first open: it reads the rows here, copies them into the
database in one transaction (inserting only what is missing, so a crash before the file
is set aside just adopts it again), then calls :func:`retire_legacy_file`. The file is
renamed, not deleted: it stays as a backup and is never read again.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import Any

from ailedger._durable import fsync_dir

ADOPTED_SUFFIX = ".adopted"


def read_legacy_rows(path: Path, query: str) -> list[tuple[Any, ...]]:
    """The rows ``query`` selects from the legacy store at ``path``. Opened read-write so
    SQLite replays its write-ahead log: committed rows may still be only there."""
    connection = sqlite3.connect(path)
    try:
        return connection.execute(query).fetchall()
    finally:
        connection.close()


def retire_legacy_file(path: Path) -> None:
    """Rename an adopted store to ``<name>.adopted``; another process may have done it."""
    with contextlib.suppress(FileNotFoundError):
        os.replace(path, path.with_name(path.name + ADOPTED_SUFFIX))
    for leftover in ("-wal", "-shm"):
        path.with_name(path.name + leftover).unlink(missing_ok=True)
    fsync_dir(path.parent)
