"""Encrypt a file or directory into the blob store, and decrypt it back, streaming.

Publishing reads the plaintext once: it is encrypted segment by segment
(``crypto.stream``, STREAM over AES-256-GCM) and the ciphertext is hashed and written
to the store as it is produced, so memory stays constant whatever the size. The blob's
name is the hash of the *ciphertext*: the store never sees plaintext and a blob can be
served and verified without its key.

A directory is first packed as a tar stream (POSIX pax format) made deterministic:
entries sorted by name, mtime 0, uid/gid 0, no user/group names, modes reduced to
0644/0755; only regular files and directories (a symlink could point outside the
shared tree, so it is refused). The same tree, key and nonce prefix therefore give the
same ciphertext and blob hash.

Decryption writes to a temporary file beside ``dest`` and renames it only after the
whole stream has authenticated, so a tampered or truncated object leaves nothing at
``dest``. A directory is then unpacked into a temporary directory, refusing absolute
paths, ``..``, links and special files, and renamed into place.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, cast

from ailedger._durable import fsync_file, replace_durably
from ailedger.crypto.stream import (
    CONTENT_BYTES,
    CONTENT_TAR,
    SEGMENT_SIZE,
    Progress,
    Reader,
    StreamEncryptor,
    decrypt_stream,
    new_data_key,
)
from ailedger.store.blobs import BlobRef, BlobStore, BlobWriter
from ailedger.store.errors import StoreError, UnsafeArchiveError

_COPY_SIZE = 1024 * 1024
_TMP_PREFIX = ".ailedger-partial-"


@dataclass(frozen=True)
class EncryptedObject:
    """One encrypted object version in the store and what is needed to share it."""

    blob: BlobRef
    data_key: bytes
    object_id: bytes
    version: int
    plaintext_size: int
    is_directory: bool
    segment_size: int


def encrypt_object(
    source: Path,
    store: BlobStore,
    *,
    object_id: bytes,
    version: int,
    data_key: bytes | None = None,
    segment_size: int = SEGMENT_SIZE,
    progress: Progress | None = None,
    nonce_prefix: bytes | None = None,
) -> EncryptedObject:
    """Encrypt ``source`` (a file or a directory) into ``store`` under a data key.

    A fresh key is generated unless ``data_key`` is given; ``nonce_prefix`` exists for
    reproducible tests only.
    """
    key = new_data_key() if data_key is None else data_key
    source = Path(source)
    with store.create() as writer:
        size = encrypt_into(
            source,
            writer,
            key,
            object_id=object_id,
            version=version,
            segment_size=segment_size,
            progress=progress,
            nonce_prefix=nonce_prefix,
        )
        blob = writer.commit()
    return EncryptedObject(blob, key, object_id, version, size, source.is_dir(), segment_size)


def encrypt_into(
    source: Path,
    out: IO[bytes] | BlobWriter,
    data_key: bytes,
    *,
    object_id: bytes,
    version: int,
    segment_size: int = SEGMENT_SIZE,
    progress: Progress | None = None,
    nonce_prefix: bytes | None = None,
) -> int:
    """Write the STREAM ciphertext of ``source`` (a file, or a directory as a tar) to
    ``out``; returns the plaintext size. For callers that frame it in a file of their own."""
    is_dir = source.is_dir()
    enc = StreamEncryptor(
        out,
        data_key,
        object_id=object_id,
        version=version,
        segment_size=segment_size,
        content_type=CONTENT_TAR if is_dir else CONTENT_BYTES,
        nonce_prefix=nonce_prefix,
        progress=progress,
    )
    if is_dir:
        _pack_directory(source, enc)
    else:
        with source.open("rb") as reader:
            _copy(reader, enc)
    enc.close()
    return enc.plaintext_size


def _copy(reader: Reader, enc: StreamEncryptor) -> None:
    while chunk := reader.read(_COPY_SIZE):
        enc.write(chunk)


def _pack_directory(root: Path, enc: StreamEncryptor) -> None:
    # "w|" is tarfile's stream mode: it never seeks, so it can feed the encryptor.
    out = cast(IO[bytes], enc)
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for path, rel in _walk_sorted(root, PurePosixPath()):
            info = _tar_info(path, rel)
            if info.isdir():
                tar.addfile(info)
            else:
                with path.open("rb") as data:
                    tar.addfile(info, data)


def _walk_sorted(directory: Path, rel: PurePosixPath) -> list[tuple[Path, PurePosixPath]]:
    entries: list[tuple[Path, PurePosixPath]] = []
    for name in sorted(os.listdir(directory)):
        path, child = directory / name, rel / name
        entries.append((path, child))
        if path.is_dir() and not path.is_symlink():
            entries.extend(_walk_sorted(path, child))
    return entries


def _tar_info(path: Path, rel: PurePosixPath) -> tarfile.TarInfo:
    st = path.lstat()
    info = tarfile.TarInfo(str(rel))
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    if stat.S_ISDIR(st.st_mode):
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    elif stat.S_ISREG(st.st_mode):
        info.type, info.size = tarfile.REGTYPE, st.st_size
        info.mode = 0o755 if st.st_mode & stat.S_IXUSR else 0o644
    else:
        raise UnsafeArchiveError(
            f"{path} is not a regular file or directory (symlink or special file); "
            "replace it with a copy of its contents before sharing"
        )
    return info


def decrypt_object(
    reader: Reader,
    data_key: bytes,
    *,
    object_id: bytes,
    version: int,
    dest: Path,
    progress: Progress | None = None,
    before_commit: Callable[[], None] | None = None,
) -> bool:
    """Decrypt an object to ``dest``, only once it has fully authenticated.

    Returns True if the object was a directory. ``dest`` must not exist yet.
    ``before_commit`` runs after the whole stream authenticated and before anything
    appears at ``dest``; if it raises, nothing does (a caller checks a hash there).
    Raises the ``crypto.errors`` decryption errors, or :class:`UnsafeArchiveError`.
    """
    dest = Path(dest)
    if dest.exists() or dest.is_symlink():
        raise StoreError(f"{dest} already exists; choose a new destination")
    fd, name = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=dest.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            header = decrypt_stream(
                reader, out, data_key, object_id=object_id, version=version, progress=progress
            )
            out.flush()
            fsync_file(out.fileno())
        if before_commit is not None:
            before_commit()
        if header.content_type == CONTENT_TAR:
            _unpack_into_place(tmp, dest)
            return True
        replace_durably(tmp, dest)
        return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _unpack_into_place(archive: Path, dest: Path) -> None:
    staging = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=dest.parent))
    try:
        with tarfile.open(archive, mode="r:") as tar:
            for member in tar:
                _extract_member(tar, member, staging)
        replace_durably(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _safe_relative(name: str) -> PurePosixPath:
    rel = PurePosixPath(name)
    if not name or rel.is_absolute() or any(part in ("", "..") for part in rel.parts):
        raise UnsafeArchiveError(f"archive entry {name!r} would escape the destination")
    return rel


def _extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, staging: Path) -> None:
    rel = _safe_relative(member.name)
    target = staging.joinpath(*rel.parts)
    if member.isdir():
        target.mkdir(parents=True, exist_ok=True)
        return
    if not member.isreg():
        raise UnsafeArchiveError(
            f"archive entry {member.name!r} is a link or special file; refusing to unpack"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    source = tar.extractfile(member)
    if source is None:  # pragma: no cover - isreg() members always have data
        raise UnsafeArchiveError(f"archive entry {member.name!r} has no data")
    # "xb": a duplicate entry must not silently replace an earlier file.
    try:
        with source, target.open("xb") as out:
            shutil.copyfileobj(source, out, _COPY_SIZE)
    except FileExistsError:
        raise UnsafeArchiveError(f"archive entry {member.name!r} appears twice") from None
    target.chmod(0o755 if member.mode & stat.S_IXUSR else 0o644)
