"""The node's durable audit log: an RFC 6962 Merkle log with C2SP signed checkpoints.

Every data access is appended as canonical JSON (sorted keys, no spaces, UTF-8) and becomes
leaf ``SHA-256(0x00 || bytes)`` of an RFC 6962 / RFC 9162 Merkle tree. ``append`` returns
the entry's index only after the SQLite transaction holding it has committed
(``synchronous=FULL``), so every acknowledged index survives ``kill -9`` or power loss.

Group commit: callers queue their entries and wait; one committer thread takes everything
queued, writes it in one transaction (one WAL ``fsync``) and wakes them, so the cost of an
``fsync`` is shared by all concurrent appenders (tessera's design). The queue is bounded:
past ``max_pending`` entries, ``append`` raises :class:`~ailedger.errors.BackPressureError`
with a ``retry_after`` estimated from the recent commit rate.

Checkpoints (C2SP tlog-checkpoint, see :mod:`ailedger.audit.checkpoint`) are signed on the
committer path, inside the batch's transaction, at most ``checkpoint_interval`` seconds
after any append (0.5 s by default), so the log is always consistent with its last one.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ailedger.audit import _store
from ailedger.audit.checkpoint import Checkpoint, parse_checkpoint, sign_checkpoint
from ailedger.audit.entry import JsonScalar, canonical_json
from ailedger.audit.errors import AuditLogCorruptError, AuditLogError
from ailedger.audit.merkle import (
    consistency_proof,
    fold_frontier,
    inclusion_proof,
    leaf_hash,
)
from ailedger.audit.receipt import make_receipt
from ailedger.audit.verify import VerifyResult, verify_directory
from ailedger.errors import BackPressureError

DEFAULT_ORIGIN = "ailedger.audit"
__all__ = ["DEFAULT_ORIGIN", "AuditLog", "AuditLogCorruptError", "AuditLogError"]


@dataclass
class _Pending:
    data: list[bytes]
    done: threading.Event = field(default_factory=threading.Event)
    first: int = -1
    error: BaseException | None = None


class AuditLog:
    """A durable, append-only, signed Merkle log of data accesses in ``directory``."""

    def __init__(
        self,
        directory: Path | str,
        key: Ed25519PrivateKey,
        *,
        origin: str = DEFAULT_ORIGIN,
        checkpoint_interval: float = 0.5,
        max_pending: int = 10_000,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._key, self.origin = key, origin
        self._interval, self._max_pending = checkpoint_interval, max_pending
        lock_fd = _store.lock_directory(self.directory)
        if lock_fd is None:
            raise AuditLogError(
                f"audit log {self.directory} is open in another process or object; close it first"
            )
        self._lock_fd = lock_fd
        try:
            self._open_store()
        except sqlite3.DatabaseError as exc:
            os.close(self._lock_fd)
            raise AuditLogCorruptError(
                f"audit log {self.directory} is damaged and cannot be opened ({exc}); "
                "restore it from a backup"
            ) from exc
        except BaseException:
            os.close(self._lock_fd)
            raise
        self._cond = threading.Condition()
        self._queue: deque[_Pending] = deque()
        self._pending, self._rate = 0, 1000.0
        self._closing = self._checkpoint_wanted = False
        self._failure: BaseException | None = None
        self._read_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="audit-committer", daemon=True)
        self._thread.start()

    # -- opening -------------------------------------------------------------------------

    def _open_store(self) -> None:
        path = _store.db_path(self.directory)
        self._writer = _store.connect(path)
        self._reader = _store.connect(path)
        _store.create_schema(self._writer)
        self._check_meta(_store.read_meta(self._writer))
        self._size = _store.stored_size(self._writer)
        nodes = _store.NodeReader(self._writer)
        self._frontier = nodes.frontier(self._size)
        rows = _store.checkpoint_rows(self._writer)
        self._checkpoint = parse_checkpoint(rows[-1][3], self.public_key) if rows else None
        if rows and (
            self._checkpoint is None
            or self._checkpoint.size > self._size
            or nodes.subtree(0, self._checkpoint.size) != self._checkpoint.root
        ):
            raise AuditLogCorruptError(
                f"audit log {self.directory} does not match its last checkpoint; "
                "run verify() on it to find the first bad entry"
            )
        self._last_checkpoint_time = time.monotonic() if rows else float("-inf")

    def _check_meta(self, meta: dict[str, str]) -> None:
        raw = self.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        wanted = {"version": _store.FORMAT_VERSION, "origin": self.origin,
                  "public_key": base64.b64encode(raw).decode()}  # fmt: skip
        if not meta:
            _store.write_meta(self._writer, wanted)
        for name in (n for n, value in wanted.items() if meta and meta.get(n) != value):
            raise AuditLogError(
                f"audit log {self.directory} has {name} {meta.get(name)!r}, not {wanted[name]!r}: "
                "open it with the key and origin it was created with"
            )

    # -- appending -----------------------------------------------------------------------

    def append(self, entry: Mapping[str, JsonScalar]) -> int:
        """Durably append ``entry``; returns its index once committed, or raises."""
        return self._submit([canonical_json(entry)])

    def extend(self, entries: Iterable[Mapping[str, JsonScalar]], chunk: int = 10_000) -> list[int]:
        """Bulk load, ``chunk`` entries per transaction; returns each chunk's first index.

        A chunk's entries get consecutive indices; chunks of concurrent callers may interleave.
        """
        data = [canonical_json(entry) for entry in entries]
        return [self._submit(data[i : i + chunk]) for i in range(0, len(data), chunk)]

    def _submit(self, data: list[bytes]) -> int:
        item = _Pending(data)
        with self._cond:
            self._raise_if_unusable()
            if self._pending and self._pending + len(data) > self._max_pending:
                retry = max(0.01, self._pending / self._rate)
                raise BackPressureError(
                    f"audit log has {self._pending} entries waiting to commit; "
                    f"retry after {retry:.2f} s",
                    retry_after=retry,
                )
            self._queue.append(item)
            self._pending += len(data)
            self._cond.notify_all()
        item.done.wait()
        if item.error is not None:
            raise AuditLogError(f"audit entry was not stored: {item.error}") from item.error
        return item.first

    def _raise_if_unusable(self) -> None:
        if self._closing:
            raise AuditLogError("the audit log is closed; open it again to append")
        if self._failure is not None:
            raise AuditLogError(
                f"the audit log stopped after a storage failure ({self._failure}); reopen it"
            ) from self._failure

    # -- the committer thread --------------------------------------------------------------

    def _run(self) -> None:
        try:
            while self._commit_next():
                pass
        except BaseException as exc:  # a dead committer must fail callers, never hang them
            with self._cond:
                self._failure = exc
                self._fail_queue(exc)
                self._cond.notify_all()

    def _checkpoint_wait(self) -> float | None:
        """Seconds until a checkpoint is due, 0 if due now, None if nothing to checkpoint."""
        covered = self._checkpoint.size if self._checkpoint else 0
        if self._size <= covered:
            return None
        if self._checkpoint_wanted:
            return 0.0
        return max(0.0, self._last_checkpoint_time + self._interval - time.monotonic())

    def _commit_next(self) -> bool:
        with self._cond:
            while not self._queue and not self._closing and self._checkpoint_wait() != 0.0:
                self._cond.wait(self._checkpoint_wait())
            if self._closing and not self._queue and self._checkpoint_wait() is None:
                return False
            batch = list(self._queue)
            self._queue.clear()
        started = time.monotonic()
        try:
            self._write(batch)
        except Exception as exc:
            with self._cond:
                self._pending -= sum(len(item.data) for item in batch)
            for item in batch:
                item.error = exc
                item.done.set()
            raise
        with self._cond:
            count = sum(len(item.data) for item in batch)
            self._pending -= count
            if count:
                self._rate = max(count / max(time.monotonic() - started, 1e-4), 1.0)
            self._cond.notify_all()
        for item in batch:
            item.done.set()
        return True

    def _write(self, batch: list[_Pending]) -> None:
        frontier, size = list(self._frontier), self._size
        entries: list[tuple[int, bytes]] = []
        nodes: list[_store.NodeRow] = []
        for item in batch:
            item.first = size
            for data in item.data:
                entries.append((size, data))
                size = _store.push_leaf(frontier, size, leaf_hash(data), nodes)
        checkpoint = None
        with self._cond:
            due = self._checkpoint_due_after(size)
        if due:
            checkpoint = sign_checkpoint(
                self._key, self.origin, size, fold_frontier(frontier), int(time.time())
            )
        row = (size, checkpoint.root, checkpoint.timestamp, checkpoint.note) if checkpoint else None
        _store.insert_batch(self._writer, entries, nodes, row)
        with self._cond:
            self._frontier, self._size = frontier, size
            if checkpoint is not None:
                self._checkpoint, self._checkpoint_wanted = checkpoint, False
                self._last_checkpoint_time = time.monotonic()

    def _checkpoint_due_after(self, size: int) -> bool:
        covered = self._checkpoint.size if self._checkpoint else 0
        if size <= covered:
            return False
        elapsed = time.monotonic() - self._last_checkpoint_time
        return self._checkpoint_wanted or self._closing or elapsed >= self._interval

    def _fail_queue(self, exc: BaseException) -> None:
        while self._queue:
            item = self._queue.popleft()
            item.error = exc
            item.done.set()

    # -- checkpoints -----------------------------------------------------------------------

    def checkpoint_now(self) -> Checkpoint:
        """Have the committer sign a checkpoint covering every entry committed so far."""
        with self._cond:
            self._raise_if_unusable()
            target = self._size
            if target == 0:
                raise AuditLogError("the audit log is empty: append an entry before a checkpoint")
            if self._checkpoint is not None and self._checkpoint.size >= target:
                return self._checkpoint  # asking now would sign the *next* entry early
            self._checkpoint_wanted = True
            self._cond.notify_all()
            while self._checkpoint is None or self._checkpoint.size < target:
                self._raise_if_unusable()
                self._cond.wait(0.1)
            return self._checkpoint

    def latest_checkpoint(self) -> Checkpoint | None:
        with self._cond:
            return self._checkpoint

    def checkpoints(self) -> list[Checkpoint]:
        """Every checkpoint this log has issued, oldest first, as persisted."""
        with self._read_lock:
            rows = _store.checkpoint_rows(self._reader)
        return [
            Checkpoint(origin=self.origin, size=s, root=r, timestamp=t, note=n)
            for s, r, t, n in rows
        ]

    # -- reading ---------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Number of committed (durable) entries."""
        with self._cond:
            return self._size

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._key.public_key()

    def entry_bytes(self, index: int) -> bytes:
        self._check_index(index, self.size)
        with self._read_lock:
            row = self._reader.execute(
                "SELECT data FROM entries WHERE idx = ?", (index,)
            ).fetchone()
        if row is None:
            raise AuditLogCorruptError(f"audit entry {index} is missing from storage")
        return bytes(row[0])

    def entry(self, index: int) -> dict[str, JsonScalar]:
        loaded: dict[str, JsonScalar] = json.loads(self.entry_bytes(index))
        return loaded

    def entries_bytes(self, start: int, stop: int) -> list[bytes]:
        """Entries ``[start, stop)`` as stored (canonical JSON), the bytes their leaves hash."""
        stop = min(stop, self.size)
        with self._read_lock:
            rows = self._reader.execute(
                "SELECT data FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx", (start, stop)
            ).fetchall()
        return [bytes(data) for (data,) in rows]

    def entries(self, start: int, stop: int) -> list[dict[str, JsonScalar]]:
        stop = min(stop, self.size)
        with self._read_lock:
            rows = self._reader.execute(
                "SELECT data FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx", (start, stop)
            ).fetchall()
        return [json.loads(bytes(data)) for (data,) in rows]

    def root(self, size: int | None = None) -> bytes:
        """RFC 6962 MTH of the first ``size`` entries (default: all committed)."""
        size = self.size if size is None else size
        self._check_size(size)
        if size == 0:
            return fold_frontier([])
        with self._read_lock:
            return _store.NodeReader(self._reader).subtree(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        size = self.size if size is None else size
        self._check_size(size)
        self._check_index(index, size)
        with self._read_lock:
            return inclusion_proof(index, size, _store.NodeReader(self._reader).subtree)

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        self._check_size(size2)
        if not 0 < size1 <= size2:
            raise ValueError(f"no consistency proof from size {size1} to size {size2}")
        with self._read_lock:
            return consistency_proof(size1, size2, _store.NodeReader(self._reader).subtree)

    def _check_size(self, size: int) -> None:
        if not 0 <= size <= self.size:
            raise ValueError(f"tree size {size} is outside 0..{self.size}")

    @staticmethod
    def _check_index(index: int, size: int) -> None:
        if not 0 <= index < size:
            raise IndexError(f"audit entry {index} does not exist in a log of {size} entries")

    def receipt(self, index: int) -> dict[str, Any]:
        """A self-contained proof that entry ``index`` is in the log (see ``verify_receipt``)."""
        self._check_index(index, self.size)
        checkpoint = self.latest_checkpoint()
        if checkpoint is None or checkpoint.size <= index:
            checkpoint = self.checkpoint_now()
        proof = self.inclusion_proof(index, checkpoint.size)
        return make_receipt(index, self.entry_bytes(index), checkpoint.note, proof)

    def verify(
        self, public_key: Ed25519PublicKey, anchored: Iterable[tuple[int, bytes]] = ()
    ) -> VerifyResult:
        """Re-derive the whole log from its entries; see :func:`verify_directory`."""
        return verify_directory(self.directory, public_key, anchored)

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Commit what is queued, sign a final checkpoint, and release the directory."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._cond.notify_all()
        self._thread.join()
        self._writer.close()
        self._reader.close()
        os.close(self._lock_fd)

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
