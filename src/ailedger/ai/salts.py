"""The salts that link decision leaves to their inputs, and their destruction (redaction).

A decision's audit entry holds ``SHA-256(salt || canonical JSON of the features)``, never
the features. Only the salt's holders (the node, and the person in their receipt) can
confirm an input against it; a 32-byte random salt makes guessing inputs hopeless
(DESIGN: no hashed identifiers that could be confirmed by guessing). Destroying the salt
redacts the decision: the leaf, and every checkpoint and anchor over it, stays intact.

The EU AI Act (Article 12, with Article 19/26(6)) asks deployers of high-risk systems to
keep automatically generated logs for at least six months, so a salt is destroyed only
once the configured retention (:func:`retention_seconds`, at least 183 days) has passed
since its decision.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from ailedger.ai.errors import DecisionError, RetentionError
from ailedger.errors import ConfigError

MIN_RETENTION_DAYS = 183
DEFAULT_RETENTION_S = MIN_RETENTION_DAYS * 24 * 3600


def retention_seconds(days: int) -> int:
    """The configured retention (``AILEDGER_DECISION_RETENTION_DAYS``) in seconds; never
    shorter than the six months the law asks, so a setting cannot cut a log short."""
    if days < MIN_RETENTION_DAYS:
        raise ConfigError(
            f"AILEDGER_DECISION_RETENTION_DAYS={days} is shorter than the {MIN_RETENTION_DAYS} "
            "days (six months) deployers must keep decision logs (EU AI Act Art. 19, 26(6)); "
            "set it to 183 or more, or leave it unset"
        )
    return days * 24 * 3600


_SCHEMA = """CREATE TABLE IF NOT EXISTS salts (
    idx INTEGER PRIMARY KEY, salt BLOB, time INTEGER NOT NULL, redacted_at INTEGER)"""
_INSERT = "INSERT INTO salts (idx, salt, time) VALUES (?, ?, ?)"


@dataclass
class _Pending:
    row: tuple[int, bytes, int]
    done: bool = False
    error: DecisionError | None = None


def _stored_error(index: int, exc: sqlite3.Error) -> DecisionError:
    if isinstance(exc, sqlite3.IntegrityError):
        return DecisionError(
            f"a salt for audit entry {index} is already stored: each decision is one new "
            "entry; is this salt store shared by two audit logs?"
        )
    return DecisionError(f"the salt of audit entry {index} was not stored ({exc}): retry")


class SaltStore:
    """Salts by audit index in SQLite (WAL, ``synchronous=FULL``) at ``directory``."""

    def __init__(self, directory: Path | str) -> None:
        self.path = Path(directory) / "decision-salts.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # the connection
        self._cond = threading.Condition()  # the queue of salts waiting to commit
        self._queue: list[_Pending] = []
        self._writing = False
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA secure_delete=ON")  # a destroyed salt's bytes are zeroed
        self._conn.execute(_SCHEMA)

    def put(self, index: int, salt: bytes, time: int) -> None:
        """Keep ``salt`` for the decision at audit ``index``, made at unix ``time``.

        Returns once it is committed. Concurrent callers share one transaction (one
        ``fsync``): the first to find no write running writes what is queued (group
        commit, as the audit log does), so a salt costs little more than its leaf.
        """
        item = _Pending((index, salt, time))
        with self._cond:
            self._queue.append(item)
            while not item.done:
                if self._writing:
                    self._cond.wait()
                    continue
                self._writing, batch, self._queue = True, self._queue, []
                self._cond.release()
                try:
                    self._write(batch)
                finally:
                    self._cond.acquire()
                    self._writing = False
                    for written in batch:
                        written.done = True
                    self._cond.notify_all()
        if item.error is not None:
            raise item.error

    def _write(self, batch: list[_Pending]) -> None:
        """Commit ``batch`` in one transaction; failures land on the callers they concern."""
        with self._lock:
            try:
                with self._conn:  # one transaction: one fsync for the batch
                    self._conn.execute("BEGIN IMMEDIATE")
                    self._conn.executemany(_INSERT, [item.row for item in batch])
                return
            except sqlite3.IntegrityError:
                pass  # a duplicate index: write them one by one to fail only its caller
            except sqlite3.Error as exc:
                for item in batch:
                    item.error = _stored_error(item.row[0], exc)
                return
            for item in batch:
                try:
                    self._conn.execute(_INSERT, item.row)
                except sqlite3.Error as exc:
                    item.error = _stored_error(item.row[0], exc)

    def get(self, index: int) -> bytes | None:
        """The salt of decision ``index``; None once it has been redacted."""
        return self._row(index)[0]

    def redacted_at(self, index: int) -> int | None:
        return self._row(index)[2]

    def _row(self, index: int) -> tuple[bytes | None, int, int | None]:
        with self._lock:
            row = self._conn.execute(
                "SELECT salt, time, redacted_at FROM salts WHERE idx = ?", (index,)
            ).fetchone()
        if row is None:
            raise DecisionError(f"no decision salt for audit entry {index}: not a decision here")
        return (None if row[0] is None else bytes(row[0])), int(row[1]), row[2]

    def redact(self, index: int, now: int, retention_s: int = DEFAULT_RETENTION_S) -> None:
        """Destroy decision ``index``'s salt, once ``retention_s`` has passed since it."""
        _, made, redacted = self._row(index)
        if redacted is not None:
            return  # already destroyed: redaction is idempotent
        if now < made + retention_s:
            days = (made + retention_s - now) / 86400
            raise RetentionError(
                f"decision {index} must be kept until {made + retention_s} (unix time; "
                f"{days:.1f} more days): its log is retained {retention_s // 86400} days "
                "after the decision (EU AI Act Art. 12/19); redact it after that"
            )
        with self._lock:
            self._conn.execute(
                "UPDATE salts SET salt = NULL, redacted_at = ? WHERE idx = ?", (now, index)
            )

    def redacted(self, start: int, stop: int) -> list[int]:
        """Indices in ``[start, stop)`` whose salt has been destroyed."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT idx FROM salts WHERE idx >= ? AND idx < ? AND salt IS NULL ORDER BY idx",
                (start, stop),
            ).fetchall()
        return [int(r[0]) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
