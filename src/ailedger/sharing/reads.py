"""Reads per grant: one counter for fetches and compute-to-data, kept by the audit log.

A grant's ``max_reads`` (copied from the dataset's policy on chain; 0 = unlimited) bounds
every way the owner's node reads the data for that grant: a gateway fetch (``read``
entries) and a compute-to-data job mounting it (``compute-read`` entries, which carry the
grant id). The count is never stored apart from the log: it is the number of ``served``
entries of those kinds naming the grant, so a restart, a crash or an entry appended by
another route of the same node cannot make it disagree with what the log shows.

Whoever allows a read holds :meth:`GrantReads.exclusive` from the check to the append,
so two reads (a fetch and a job, say) cannot both take a grant's last one.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from ailedger.errors import ForbiddenError

if TYPE_CHECKING:
    from ailedger.chain.contracts.data_market import GrantRecord

READ = "read"
COMPUTE_READ = "compute-read"
READ_KINDS = frozenset({READ, COMPUTE_READ})
SERVED = "served"


class ReadLimitReachedError(ForbiddenError):
    """The grant's reads (fetches and compute-to-data together) are used up; the
    requester needs a new grant."""


class AuditReadLog(Protocol):
    def append(self, entry: dict[str, Any]) -> int: ...

    def entries(self, start: int, stop: int) -> Any: ...

    @property
    def size(self) -> int: ...


class GrantInfo(Protocol):
    def grant_info(self, request_id: int) -> GrantRecord | None: ...


def counts_as_read(entry: Mapping[str, Any]) -> bool:
    """True for an entry that used one read of its grant."""
    grant = entry.get("grant")
    return (
        entry.get("kind") in READ_KINDS
        and entry.get("outcome") == SERVED
        and isinstance(grant, int)
        and not isinstance(grant, bool)
    )


class GrantReads:
    """The reads of every grant in ``audit``, with their limits read from ``market``;
    thread-safe. One per audit log (the node's gateway holds it)."""

    def __init__(self, audit: AuditReadLog, market: GrantInfo) -> None:
        self._audit, self._market = audit, market
        self._counts: Counter[int] = Counter()
        self._scanned = 0
        self._lock = threading.RLock()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold while checking a limit and appending the read it allows."""
        with self._lock:
            yield

    def count(self, grant: int) -> int:
        """How many reads ``grant`` has used, up to the last entry appended."""
        with self._lock:
            size = self._audit.size
            if size > self._scanned:
                for entry in self._audit.entries(self._scanned, size):
                    if counts_as_read(entry):
                        self._counts[int(entry["grant"])] += 1
                self._scanned = size
            return self._counts[grant]

    def limit(self, grant: int) -> int:
        """The grant's ``max_reads`` on chain (0: unlimited, or no such grant)."""
        record = self._market.grant_info(grant)
        return record.max_reads if record is not None else 0

    def remaining(self, grant: int, limit: int | None = None) -> int | None:
        """Reads ``grant`` has left (None: unlimited); ``limit`` if already known."""
        limit = self.limit(grant) if limit is None else limit
        return None if limit == 0 else max(0, limit - self.count(grant))

    def check(self, grant: int, limit: int | None = None) -> None:
        """Raise :class:`ReadLimitReachedError` if ``grant`` has no read left."""
        limit = self.limit(grant) if limit is None else limit
        if limit and self.count(grant) >= limit:
            raise ReadLimitReachedError(f"read limit reached ({limit} reads under this grant)")

    def append_read(self, entry: dict[str, Any]) -> int:
        """Append a read ``entry`` that names its grant if that grant has a read left;
        returns its index, or raises :class:`ReadLimitReachedError` (nothing appended)."""
        if not counts_as_read(entry):
            raise ValueError("a read entry names its grant (an int) and is served")
        with self._lock:
            self.check(int(entry["grant"]))
            return self._audit.append(entry)
