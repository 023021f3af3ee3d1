"""Reads per grant: one counter for fetches and compute-to-data, kept by the audit log.

A grant's ``max_reads`` (copied from the dataset's policy on chain; 0 = unlimited) bounds
every way the owner's node reads the data for that grant: a gateway fetch (``read``
entries) and a compute-to-data job mounting it (``compute-read`` entries, which carry the
grant id), and a listing used at its owner's node on the buyer's behalf (``served-use``
entries, one per request, with ``uses``: the predictions it made). The count is never
stored apart from the log: it is the sum of the uses of the ``served`` entries of those
kinds naming the grant (a read is one use), so a restart, a crash or an entry appended by
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
SERVED_USE = "served-use"
READ_KINDS = frozenset({READ, COMPUTE_READ, SERVED_USE})
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
        and uses_of(entry) > 0
    )


def uses_of(entry: Mapping[str, Any]) -> int:
    """The uses an entry takes from its grant: its ``uses`` (a positive whole number), or
    1 for an entry without one (a fetch, a compute-to-data read); 0 for a malformed one."""
    uses = entry.get("uses", 1)
    if isinstance(uses, bool) or not isinstance(uses, int) or uses < 1:
        return 0
    return uses


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
                        self._counts[int(entry["grant"])] += uses_of(entry)
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

    def check(self, grant: int, limit: int | None = None, uses: int = 1) -> None:
        """Raise :class:`ReadLimitReachedError` unless ``grant`` has ``uses`` left."""
        limit = self.limit(grant) if limit is None else limit
        if not limit:
            return
        used = self.count(grant)
        if used >= limit:
            raise ReadLimitReachedError(f"read limit reached ({limit} reads under this grant)")
        if used + uses > limit:
            raise ReadLimitReachedError(
                f"this grant has {limit - used} of its {limit} uses left; "
                f"{uses} were asked for: ask for fewer, or buy a new grant"
            )

    def append_read(self, entry: dict[str, Any]) -> int:
        """Append a read ``entry`` that names its grant if that grant has a read left;
        returns its index, or raises :class:`ReadLimitReachedError` (nothing appended)."""
        if not counts_as_read(entry):
            raise ValueError("a read entry names its grant (an int), is served, and uses >= 1")
        with self._lock:
            self.check(int(entry["grant"]), uses=uses_of(entry))
            return self._audit.append(entry)
