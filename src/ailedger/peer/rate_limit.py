"""How many requests the node takes from one peer address: a token bucket per address.

Each address may send ``burst`` requests at once and ``rate`` per second after that;
past it, :meth:`PeerRateLimiter.admit` raises
:class:`~ailedger.errors.TooManyRequestsError` (429) saying when a token will be back
(``Retry-After``). Routes whose every request is written to the audit log take a limit,
so that one sender cannot grow the log (or the work) without bound.

The address is the TCP peer the server sees: behind a reverse proxy every client shares
the proxy's address, and the proxy is where clients must be told apart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ailedger.errors import TooManyRequestsError

DEFAULT_RATE = 5.0  # a requester fetches a few datasets a minute; a flood is thousands
DEFAULT_BURST = 20
MAX_TRACKED_PEERS = 10_000  # past this, idle addresses (full buckets) are forgotten


@dataclass
class _Bucket:
    tokens: float
    updated: float


class PeerRateLimiter:
    """Token buckets, one per peer address; thread-safe."""

    def __init__(
        self,
        rate: float = DEFAULT_RATE,
        burst: int = DEFAULT_BURST,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_peers: int = MAX_TRACKED_PEERS,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a rate limit needs a positive rate and a burst of at least 1")
        self.rate, self.burst = rate, burst
        self._clock, self._max_peers = clock, max_peers
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def admit(self, peer: str) -> None:
        """Take one token for ``peer``, or raise :class:`TooManyRequestsError`."""
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(peer)
            if bucket is None:
                self._forget_idle(now)
                bucket = self._buckets[peer] = _Bucket(float(self.burst), now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens < 1:
                wait = (1 - bucket.tokens) / self.rate
                raise TooManyRequestsError(
                    f"too many requests from {peer}; retry in {wait:.1f} s", retry_after=wait
                )
            bucket.tokens -= 1

    def _forget_idle(self, now: float) -> None:
        if len(self._buckets) < self._max_peers:
            return
        refill = self.burst / self.rate  # an address idle this long is back to a full bucket
        idle = [peer for peer, b in self._buckets.items() if now - b.updated >= refill]
        for peer in idle:
            del self._buckets[peer]
        if len(self._buckets) >= self._max_peers:  # all busy: the oldest goes
            del self._buckets[min(self._buckets, key=lambda p: self._buckets[p].updated)]
