"""The per-file SHA-256 digests of a model directory, re-hashing only what changed.

A passport is re-signed whenever its card or lineage changes; re-reading many gigabytes of
weights for a one-kilobyte edit would make that a minutes-long chore. The digests of the
last signing are kept in a cache keyed by each file's relative path, size, ``mtime_ns``,
``ctime_ns`` and inode: a file whose stat is unchanged is not read again.

Racy entries (git's "racily clean" problem): a file modified twice within one tick of the
filesystem clock keeps its ``mtime``. Before hashing we create a stamp file and read its
``mtime`` from the same clock; a file whose ``mtime`` is not older than the stamp could
still change within that tick after we read it, so its entry is kept but never reused.
Any later write to an older file moves its ``mtime`` to or past the stamp, so it is seen.

Which files are listed follows model-signing 1.1.1's file serialization exactly (the stock
verifier recomputes the list): every regular file under the directory except ``.git/``,
``.github/``, ``.gitattributes`` and ``.gitignore`` at its top; symbolic links refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ailedger._durable import PUBLIC_FILE_MODE, atomic_write_json
from ailedger.ai.errors import ModelDirectoryError

IGNORED_AT_TOP = frozenset({".git", ".gitattributes", ".github", ".gitignore"})
"""What model-signing leaves out of a directory's manifest by default."""

_CACHE_VERSION = 1
_CHUNK = 1 << 20

HashHook = Callable[[str, int], None]
"""Called with a file's relative path and size each time a file is actually read."""


@dataclass(frozen=True)
class _Stat:
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int

    @classmethod
    def of(cls, st: os.stat_result) -> _Stat:
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def list_files(model_dir: Path) -> dict[str, Path]:
    """The files model-signing would sign under ``model_dir``, by POSIX relative path."""
    if not model_dir.is_dir() or model_dir.is_symlink():
        raise ModelDirectoryError(f"{model_dir} is not a directory: pass the model's directory")
    found: dict[str, Path] = {}
    for root, dirs, files in os.walk(model_dir):
        here = Path(root)
        top = here == model_dir
        for name in sorted(dirs):
            if (here / name).is_symlink():
                raise ModelDirectoryError(
                    f"{here / name} is a symbolic link: copy its target into the model directory"
                )
            if top and name in IGNORED_AT_TOP:
                dirs.remove(name)
        for name in files:
            path = here / name
            if top and name in IGNORED_AT_TOP:
                continue
            if path.is_symlink() or not path.is_file():
                raise ModelDirectoryError(
                    f"{path} is a symbolic link or not a regular file: replace it by a file"
                )
            found[path.relative_to(model_dir).as_posix()] = path
    return found


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks (hashlib releases the GIL on each)."""
    digest = hashlib.sha256()
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as f:
        while n := f.readinto(buffer):
            digest.update(view[:n])
    return digest.hexdigest()


class DigestCache:
    """Digests from the last run, trusted only for files whose stat is unchanged."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, tuple[_Stat, str]] = {}
        with contextlib.suppress(FileNotFoundError, ValueError, KeyError, TypeError):
            # An unreadable cache only costs a full re-hash: never an error.
            document = json.loads(path.read_bytes())
            if document.get("version") == _CACHE_VERSION:
                for rel, e in document["files"].items():
                    stat = _Stat(e["size"], e["mtime_ns"], e["ctime_ns"], e["inode"])
                    self._entries[rel] = (stat, str(e["sha256"]))

    def get(self, rel: str, stat: _Stat) -> str | None:
        entry = self._entries.get(rel)
        return entry[1] if entry is not None and entry[0] == stat else None

    def save(self, digests: dict[str, tuple[_Stat, str]], clock: int) -> None:
        files = {
            rel: {
                "size": s.size,
                "mtime_ns": s.mtime_ns,
                "ctime_ns": s.ctime_ns,
                "inode": s.inode,
                "sha256": d,
            }
            for rel, (s, d) in digests.items()
            if s.mtime_ns < clock  # racy entries are not kept (see the module's docstring)
        }
        document = {"version": _CACHE_VERSION, "files": files}
        atomic_write_json(self.path, document, mode=PUBLIC_FILE_MODE)


def _filesystem_clock(directory: Path) -> int:
    """Now, as the filesystem holding ``directory`` stamps a file's mtime."""
    stamp = directory / f".ailedger-clock.{secrets.token_hex(6)}"
    fd = os.open(stamp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, b"0")
        return os.fstat(fd).st_mtime_ns
    finally:
        os.close(fd)
        os.unlink(stamp)


def digest_files(
    model_dir: Path,
    cache_path: Path | None,
    *,
    on_hash: HashHook | None = None,
    workers: int | None = None,
) -> dict[str, str]:
    """Hex SHA-256 of every file :func:`list_files` names; unchanged files come from the
    cache at ``cache_path`` (updated afterwards), or all are read when it is ``None``."""
    files = list_files(model_dir)
    cache = None
    if cache_path is not None:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        clock = _filesystem_clock(cache_path.parent)
        cache = DigestCache(cache_path)
    known: dict[str, tuple[_Stat, str]] = {}
    todo: list[tuple[str, _Stat]] = []
    for rel, path in files.items():
        stat = _Stat.of(path.stat())
        cached = cache.get(rel, stat) if cache is not None else None
        if cached is not None:
            known[rel] = (stat, cached)
        else:
            todo.append((rel, stat))

    def work(item: tuple[str, _Stat]) -> tuple[str, _Stat, str]:
        rel, before = item
        digest = sha256_file(files[rel])
        if on_hash is not None:
            on_hash(rel, before.size)
        after = _Stat.of(files[rel].stat())
        if after != before:
            raise ModelDirectoryError(
                f"{files[rel]} changed while it was being hashed: sign once writing has ended"
            )
        return rel, before, digest

    # Large files first, so the pool does not end waiting on one big straggler.
    todo.sort(key=lambda item: -item[1].size)
    with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
        for rel, stat, digest in pool.map(work, todo):
            known[rel] = (stat, digest)
    if cache is not None:
        cache.save(known, clock)
    return {rel: known[rel][1] for rel in sorted(known)}
