"""Content-addressed blob store: blobs named by the SHA-256 of their bytes.

:class:`BlobStore` is the small interface every backend implements (the local
directory here; an fsspec filesystem later). :class:`DirectoryBlobStore` keeps blob
``abcdef...`` at ``ROOT/ab/cdef...``. A write goes to ``ROOT/.tmp-*`` while it is hashed,
is fsynced, and is then renamed (``os.replace``, atomic on POSIX) under its final name,
followed by an fsync of the directory: a crash leaves either the whole blob or a temp
file, never a partial blob under a real name. Temp files left by a crash are removed
when the store is opened, so one store directory belongs to one process at a time
(the node), as the chain directory does.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Protocol

from ailedger._durable import fsync_dir, fsync_file, replace_durably
from ailedger.crypto.stream import Reader
from ailedger.store.errors import BlobNotFoundError, InvalidBlobHashError

_HASH = re.compile(r"[0-9a-f]{64}")
_TMP_PREFIX = ".tmp-"
_COPY_SIZE = 1024 * 1024


@dataclass(frozen=True)
class BlobRef:
    """A stored blob: lowercase hex SHA-256 of its bytes and its size."""

    hash_hex: str
    size: int


def check_hash(hash_hex: str) -> str:
    """Return ``hash_hex`` if it is 64 lowercase hex characters, else raise.

    Blob names become paths, so anything else (``../``, separators, upper case that
    would alias another name on case-insensitive filesystems) is refused.
    """
    if not isinstance(hash_hex, str) or not _HASH.fullmatch(hash_hex):
        raise InvalidBlobHashError(f"{hash_hex!r} is not a blob hash (64 lowercase hex characters)")
    return hash_hex


class BlobWriter(Protocol):
    """An open write of one blob: ``write`` bytes, then ``commit`` (or ``abort``)."""

    def write(self, data: bytes | memoryview, /) -> int: ...

    def commit(self) -> BlobRef: ...

    def abort(self) -> None: ...

    def __enter__(self) -> BlobWriter: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Abort unless committed."""


class BlobStore(Protocol):
    """What ailedger needs from a blob backend."""

    def create(self) -> BlobWriter: ...

    def put_stream(self, reader: Reader) -> BlobRef: ...

    def open(self, hash_hex: str) -> BinaryIO: ...

    def exists(self, hash_hex: str) -> bool: ...

    def size(self, hash_hex: str) -> int: ...

    def delete(self, hash_hex: str) -> bool: ...


class _DirectoryBlobWriter:
    """Hashes while writing to a temp file; ``commit`` makes it a blob atomically."""

    def __init__(self, store: DirectoryBlobStore) -> None:
        self._store = store
        fd, name = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=store.root)
        self._tmp = Path(name)
        self._file = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self._size = 0
        self._finished = False

    def write(self, data: bytes | memoryview, /) -> int:
        self._hash.update(data)
        self._file.write(data)
        self._size += len(data)
        return len(data)

    def commit(self) -> BlobRef:
        if self._finished:
            raise ValueError("blob writer already finished")
        self._finished = True
        try:
            self._file.flush()
            fsync_file(self._file.fileno())
            self._file.close()
            ref = BlobRef(self._hash.hexdigest(), self._size)
            self._store._install(self._tmp, ref.hash_hex)
        except BaseException:
            self._discard()
            raise
        return ref

    def abort(self) -> None:
        if not self._finished:
            self._finished = True
            self._discard()

    def _discard(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()

    def __enter__(self) -> _DirectoryBlobWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Leaving the block without commit (an error, or a caller that gave up) aborts.
        self.abort()


class DirectoryBlobStore:
    """A :class:`BlobStore` in a local directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._remove_leftovers()

    def _remove_leftovers(self) -> None:
        for leftover in self.root.glob(_TMP_PREFIX + "*"):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()

    def path_of(self, hash_hex: str) -> Path:
        check_hash(hash_hex)
        return self.root / hash_hex[:2] / hash_hex[2:]

    def create(self) -> _DirectoryBlobWriter:
        return _DirectoryBlobWriter(self)

    def put_stream(self, reader: Reader) -> BlobRef:
        with self.create() as writer:
            while chunk := reader.read(_COPY_SIZE):
                writer.write(chunk)
            return writer.commit()

    def _install(self, tmp: Path, hash_hex: str) -> None:
        final = self.path_of(hash_hex)
        if final.exists():
            # Same name, same bytes: keep the existing blob (deduplication).
            tmp.unlink()
            return
        shard_is_new = not final.parent.exists()
        final.parent.mkdir(exist_ok=True)
        replace_durably(tmp, final)
        if shard_is_new:
            fsync_dir(self.root)

    def open(self, hash_hex: str) -> BinaryIO:
        try:
            return self.path_of(hash_hex).open("rb")
        except FileNotFoundError:
            raise BlobNotFoundError(f"blob {hash_hex} is not in the store") from None

    def exists(self, hash_hex: str) -> bool:
        return self.path_of(hash_hex).is_file()

    def size(self, hash_hex: str) -> int:
        try:
            return self.path_of(hash_hex).stat().st_size
        except FileNotFoundError:
            raise BlobNotFoundError(f"blob {hash_hex} is not in the store") from None

    def delete(self, hash_hex: str) -> bool:
        """Remove a blob; return False if it was not there."""
        path = self.path_of(hash_hex)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        fsync_dir(path.parent)
        return True
