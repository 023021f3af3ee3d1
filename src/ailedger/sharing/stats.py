"""Reads per dataset and earnings, counted from the owner's audit log as it grows.

The log already holds every served read (``read``, ``compute-read``) and every grant the
chain decided (``grant``, logged by the node from ``AccessGranted`` with its amount), so
these numbers are never stored apart from it. Like :class:`~ailedger.sharing.reads.GrantReads`,
the counters read only the entries appended since the last call: a page showing them
costs the new entries, not the whole log.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ailedger.sharing.reads import AuditReadLog, GrantInfo, counts_as_read

GRANT = "grant"
_CHUNK = 5_000  # entries read at once while catching up
MAX_POINTS = 200
"""Most points an earnings series returns: a chart of a busy year stays small."""


@dataclass(frozen=True)
class DatasetNumbers:
    reads: int
    grants: int
    earned: int  # token base units


class OwnerStats:
    """Counters over ``audit``; a grant entry logged without its amount (by an older node)
    has it read from ``market`` once. Thread-safe."""

    def __init__(self, audit: AuditReadLog, market: GrantInfo) -> None:
        self._audit, self._market = audit, market
        self._reads: Counter[str] = Counter()
        self._grants: Counter[str] = Counter()
        self._earned: Counter[str] = Counter()
        self._payments: list[tuple[int, int]] = []  # (time, amount), in log order
        self._scanned = 0
        self._lock = threading.Lock()

    def _catch_up(self) -> None:
        size = self._audit.size
        while self._scanned < size:
            stop = min(size, self._scanned + _CHUNK)
            for entry in self._audit.entries(self._scanned, stop):
                self._count(entry)
            self._scanned = stop

    def _count(self, entry: dict[str, Any]) -> None:
        dataset = entry.get("dataset")
        if not isinstance(dataset, str):
            return
        dataset = dataset.lower()
        if counts_as_read(entry):
            self._reads[dataset] += 1
        elif entry.get("kind") == GRANT and isinstance(entry.get("grant"), int):
            amount = entry.get("amount")
            if not isinstance(amount, int) or isinstance(amount, bool):
                record = self._market.grant_info(int(entry["grant"]))
                amount = getattr(record, "amount", 0) if record is not None else 0
            when = entry.get("time")
            self._grants[dataset] += 1
            self._earned[dataset] += int(amount)
            self._payments.append((int(when) if isinstance(when, int) else 0, int(amount)))

    def numbers(self, dataset: str) -> DatasetNumbers:
        """Reads served, grants given and tokens earned for ``dataset`` (``0x...``)."""
        key = dataset.lower()
        with self._lock:
            self._catch_up()
            return DatasetNumbers(self._reads[key], self._grants[key], self._earned[key])

    def total_earned(self) -> int:
        with self._lock:
            self._catch_up()
            return sum(self._earned.values())

    def earnings_over_time(self) -> list[tuple[int, int]]:
        """Cumulative earnings (time, base units) after each grant, thinned to at most
        ``MAX_POINTS`` points (the last one always kept)."""
        with self._lock:
            self._catch_up()
            payments = sorted(self._payments)
        total, series = 0, []
        for when, amount in payments:
            total += amount
            series.append((when, total))
        if len(series) <= MAX_POINTS:
            return series
        step = -(-len(series) // MAX_POINTS)
        return [*series[step - 1 :: step][: MAX_POINTS - 1], series[-1]]
