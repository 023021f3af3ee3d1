"""Private directories and JSON key files in the node home.

Key files are written with :func:`ailedger._durable.atomic_write` (mode 0600 from
creation, fsync, rename, directory fsync): a crash never leaves a truncated keystore.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ailedger._durable import fsync_dir

PRIVATE_DIR_MODE = 0o700


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
