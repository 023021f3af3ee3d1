"""Filesystem durability shared by every part that writes files it must not lose."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """Make the directory's entries (creations, renames) durable: after os.replace the
    new name is on disk only once its directory is synced (POSIX rename semantics)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
