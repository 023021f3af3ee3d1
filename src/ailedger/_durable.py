"""Crash-safe file writes, shared by every part that writes files it must not lose.

A file a reader may open at any moment (a key, a manifest, a job's salt, a token store)
must never be seen half-written, and a write the caller was told succeeded must survive a
power loss. :func:`atomic_write` gives both, the same way everywhere:

1. the temporary file is created next to the target (so the rename cannot cross
   filesystems) with ``O_CREAT | O_EXCL`` and its final mode: a secret is never readable
   by others, not even for the instant between a write and a ``chmod``;
2. the data is written and the file ``fsync``-ed;
3. ``os.replace`` moves it over the target (rename(2): atomic on POSIX, a reader sees the
   old or the new file, never a mix);
4. the directory is ``fsync``-ed: the new name is on disk only once its directory is.

A crash at any step leaves the old content or the new one (and perhaps a ``.*.tmp`` file
nobody reads). Writers that stream large data (the blob store, object decryption, job
uploads) keep their own streaming loop and finish with :func:`fsync_file` and
:func:`replace_durably`, the same guarantees in two steps.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

PRIVATE_FILE_MODE = 0o600
"""Keys, tokens, salts, anything only this node's user may read."""

PUBLIC_FILE_MODE = 0o644
"""Files that hold no secret (caches, manifests)."""


def atomic_write(path: Path, data: bytes, *, mode: int = PRIVATE_FILE_MODE) -> None:
    """Replace ``path`` with ``data`` atomically and durably; the file gets ``mode``
    (narrowed by the umask, never widened) from the moment it exists."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    fd = os.open(tmp, flags, mode)
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str, *, mode: int = PRIVATE_FILE_MODE) -> None:
    """:func:`atomic_write` of ``text`` as UTF-8."""
    atomic_write(path, text.encode("utf-8"), mode=mode)


def atomic_write_json(
    path: Path, document: Any, *, mode: int = PRIVATE_FILE_MODE, indent: int | None = None
) -> None:
    """:func:`atomic_write` of ``document`` as JSON with sorted keys (stable on disk)."""
    text = json.dumps(document, indent=indent, sort_keys=True)
    atomic_write(path, (text + "\n").encode("utf-8"), mode=mode)


def fsync_file(fd: int) -> None:
    """Flush a streamed file's data to disk before it is renamed into place: without it a
    power loss can leave the new name pointing at an empty or partial file."""
    os.fsync(fd)


def replace_durably(source: Path, target: Path) -> None:
    """Move a finished (fsync-ed) file over ``target`` and make the rename durable."""
    os.replace(source, target)
    fsync_dir(target.parent)


def fsync_dir(directory: Path) -> None:
    """Make the directory's entries (creations, renames) durable: after os.replace the
    new name is on disk only once its directory is synced (POSIX rename semantics)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
