"""Polled filters: ``eth_newFilter``, ``eth_newBlockFilter``, ``eth_newPendingTransactionFilter``.

A filter remembers where its client stopped reading; ``eth_getFilterChanges`` hands out
what came since. Like geth, a filter nobody polls for :data:`FILTER_TIMEOUT_S` is removed
(a client that crashed leaves no state behind), and unlike geth their number is bounded,
so a client that installs filters in a loop is refused instead of growing the node's memory.

Pending-transaction filters share one ring of the last :data:`MAX_PENDING_HASHES` admitted
hashes, each filter holding only its cursor into it, so their memory does not grow with their
number. A filter that falls more than the ring behind gets the hashes still in the ring: the
older ones are lost to it (geth keeps them all, without bound).
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

FILTER_TIMEOUT_S = 300.0  # geth's deadline for a filter that is not polled
MAX_FILTERS = 1000
MAX_PENDING_HASHES = 10_000  # the most a pending-transaction filter reports in one poll
MAX_BLOCKS_PER_POLL = 10_000  # a block filter polled after a long pause catches up in steps

FilterKind = Literal["block", "logs", "pending"]
_EXPIRY_CHECK_S = 1.0


class FilterNotFoundError(LookupError):
    """No such filter: never installed, uninstalled, or expired."""


class TooManyFiltersError(RuntimeError):
    pass


@dataclass(frozen=True)
class LogCriteria:
    """A log filter's query; a bound of None follows the head (the ``latest`` tag)."""

    from_block: int | None
    to_block: int | None
    addresses: tuple[bytes, ...] = ()
    topics: tuple[tuple[bytes, ...] | None, ...] = ()


@dataclass
class _Filter:
    kind: FilterKind
    next_block: int  # the first block this filter has not reported yet
    polled_at: float
    criteria: LogCriteria | None = None
    next_pending: int = 0  # a pending filter's cursor: the first hash it has not reported
    full_transactions: bool = False  # a pending filter reports whole transactions


class _PendingRing:
    """The last admitted transaction hashes, numbered in order of admission."""

    def __init__(self, size: int) -> None:
        self.hashes: deque[str] = deque(maxlen=size)
        self.end = 0  # the number the next hash will get

    def append(self, tx_hash: str) -> None:
        self.hashes.append(tx_hash)
        self.end += 1

    def since(self, cursor: int) -> list[str]:
        """The hashes numbered ``cursor`` and later that the ring still holds."""
        skip = max(0, cursor - (self.end - len(self.hashes)))
        return list(itertools.islice(self.hashes, skip, None))


@dataclass(frozen=True)
class BlockRange:
    """Blocks ``start..end`` (inclusive) to report; empty when ``start > end``."""

    start: int
    end: int

    @property
    def empty(self) -> bool:
        return self.start > self.end


class FilterRegistry:
    """The installed filters of one node. Thread-safe."""

    def __init__(
        self,
        *,
        timeout_s: float = FILTER_TIMEOUT_S,
        limit: int = MAX_FILTERS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._timeout_s = timeout_s
        self._limit = limit
        self._clock = clock
        self._lock = threading.Lock()
        self._filters: dict[str, _Filter] = {}
        self._pending = _PendingRing(MAX_PENDING_HASHES)
        # Admitted hashes are kept only while some pending filter can report them: a
        # node nobody polls for pending transactions keeps none.
        self._pending_filters = 0
        self._next_expiry = 0.0  # admissions look for expired filters at most this often

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._filters)

    def install(
        self,
        kind: FilterKind,
        head: int,
        criteria: LogCriteria | None = None,
        *,
        full_transactions: bool = False,
    ) -> str:
        """A new filter reporting what comes after block ``head``; returns its id."""
        with self._lock:
            self._expire()
            if len(self._filters) >= self._limit:
                raise TooManyFiltersError(
                    f"too many filters (at most {self._limit}); uninstall unused ones"
                )
            filter_id = "0x" + secrets.token_hex(16)
            first = head + 1
            if criteria is not None and criteria.from_block is not None:
                first = max(first, criteria.from_block)
            self._filters[filter_id] = _Filter(
                kind,
                first,
                self._clock(),
                criteria,
                next_pending=self._pending.end,
                full_transactions=full_transactions,
            )
            if kind == "pending":
                self._pending_filters += 1
            return filter_id

    def uninstall(self, filter_id: str) -> bool:
        with self._lock:
            return self._remove(filter_id)

    def _remove(self, filter_id: str) -> bool:
        flt = self._filters.pop(filter_id, None)
        if flt is not None and flt.kind == "pending":
            self._pending_filters -= 1
            if not self._pending_filters:
                self._pending.hashes.clear()  # nobody left to report them to
        return flt is not None

    def kind(self, filter_id: str) -> FilterKind:
        with self._lock:
            return self._get(filter_id).kind

    def criteria(self, filter_id: str) -> LogCriteria:
        """A log filter's query (``eth_getFilterLogs``); polling it keeps it alive."""
        with self._lock:
            flt = self._get(filter_id)
            flt.polled_at = self._clock()
            if flt.criteria is None:
                raise FilterNotFoundError("filter not found")  # geth: not a log filter
            return flt.criteria

    def take_blocks(self, filter_id: str, head: int) -> tuple[FilterKind, BlockRange]:
        """The blocks a block or log filter has not reported, marked as reported."""
        with self._lock:
            flt = self._get(filter_id)
            flt.polled_at = self._clock()
            end = head
            if flt.criteria is not None and flt.criteria.to_block is not None:
                end = min(end, flt.criteria.to_block)
            if flt.kind == "block":
                end = min(end, flt.next_block + MAX_BLOCKS_PER_POLL - 1)
            taken = BlockRange(flt.next_block, end)
            if not taken.empty:
                flt.next_block = end + 1
            return flt.kind, taken

    def take_pending(self, filter_id: str) -> tuple[list[str], bool]:
        """The transaction hashes a pending filter has not reported, and whether it
        reports whole transactions rather than hashes."""
        with self._lock:
            flt = self._get(filter_id)
            flt.polled_at = self._clock()
            hashes = self._pending.since(flt.next_pending)
            flt.next_pending = self._pending.end
            return hashes, flt.full_transactions

    def add_pending(self, tx_hash: str) -> None:
        """A transaction entered the pool: every pending filter will report it."""
        with self._lock:
            now = self._clock()
            if now >= self._next_expiry:  # an abandoned filter stops the ring filling
                self._next_expiry = now + _EXPIRY_CHECK_S
                self._expire()
            if self._pending_filters:
                self._pending.append(tx_hash)

    @property
    def pending_hashes_kept(self) -> int:
        with self._lock:
            return len(self._pending.hashes)

    def _get(self, filter_id: str) -> _Filter:
        self._expire()
        flt = self._filters.get(filter_id)
        if flt is None:
            raise FilterNotFoundError("filter not found")
        return flt

    def _expire(self) -> None:
        deadline = self._clock() - self._timeout_s
        stale = [fid for fid, flt in self._filters.items() if flt.polled_at < deadline]
        for fid in stale:
            self._remove(fid)
