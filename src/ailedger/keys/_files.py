"""Crash-safe writes of small private files (keys, config) in the node home.

A key file must never be seen half-written: a crash between ``open`` and ``close`` of the
final name could leave a truncated keystore and lose the account. Each file is therefore
written to a temporary file in the *same* directory (so the rename cannot cross
filesystems), flushed with ``fsync``, moved over the final name with ``os.replace``
(atomic on POSIX, rename(2)), and the directory itself is ``fsync``-ed so the new entry
survives a power loss (the rename is durable only once the directory is on disk).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ailedger._durable import fsync_dir

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def write_private(path: Path, data: bytes) -> None:
    """Atomically replace ``path`` with ``data``, readable by the owner only (0600)."""
    # mkstemp creates the file with mode 0600 and O_EXCL, so the secret is never
    # readable by others, not even for the instant before a chmod.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fchmod(tmp.fileno(), PRIVATE_FILE_MODE)
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    fsync_dir(path.parent)


def write_private_json(path: Path, document: dict[str, Any]) -> None:
    """Atomically write ``document`` as indented JSON (0600)."""
    write_private(path, (json.dumps(document, indent=2, sort_keys=True) + "\n").encode())


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) and restrict it to its owner (0700)."""
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    # mkdir's mode is filtered by the umask and ignored when the directory exists.
    os.chmod(path, PRIVATE_DIR_MODE)
    fsync_dir(path.parent)


def read_json_object(path: Path) -> dict[str, Any]:
    """Read a JSON object; raise ``OSError`` or ``ValueError`` for the caller to translate."""
    document = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise ValueError("the file does not hold a JSON object")
    return document
