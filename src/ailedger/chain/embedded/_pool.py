"""The pending pool: admitted transactions not yet sealed, per sender in nonce order.

Three places a transaction can be, as in geth's txpool:

* **ready**: its nonce follows the sender's chain nonce (or the sender's previous ready
  transaction) without a gap. The sealer takes ready transactions in arrival order,
  which for one sender is nonce order.
* **future**: its nonce is above the next one the sender can use. It is held until the
  gap fills, then promoted behind the transaction that filled it. Bounded per sender
  and in total: past a bound the sender gets an error (back-pressure), not silence.
  One that waits longer than ``HELD_LIFETIME_S`` (geth's ``txpool.lifetime``, 3 hours)
  is dropped (:meth:`PendingPool.expire`), so a gap that never fills does not keep its
  room, nor the sender's, forever.
* **in flight**: taken by the sealer, executing or being committed. It can no longer be
  replaced; its receipt follows the commit.

A ready or future transaction is replaced by one with the same sender and nonce paying
at least ``PRICE_BUMP_PERCENT`` more in both fee cap and tip (geth's rule). The replaced
one leaves the pool at once, so it can never be sealed next to its replacement.

Not thread-safe: the node guards the pool with its pool lock.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from eth.abc import SignedTransactionAPI

from ailedger.errors import TransactionRejectedError

PRICE_BUMP_PERCENT = 10
MAX_FUTURE_PER_SENDER = 64
MAX_FUTURE_TOTAL = 1024
HELD_LIFETIME_S = 3 * 3600.0

Slot = tuple[bytes, int]  # (sender, nonce)


class PendingPool:
    def __init__(
        self,
        *,
        max_future_per_sender: int = MAX_FUTURE_PER_SENDER,
        max_future_total: int = MAX_FUTURE_TOTAL,
        held_lifetime_s: float = HELD_LIFETIME_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_future_per_sender = max_future_per_sender
        self._max_future_total = max_future_total
        self._held_lifetime_s = held_lifetime_s
        self._clock = clock
        # Future transactions by hash, oldest first, with the time they began to wait:
        # every entry is added at the clock's current time, so the order is by time.
        self._held_since: OrderedDict[bytes, float] = OrderedDict()
        # Assigning to an existing key keeps its place: a replacement keeps its turn.
        self._ready: OrderedDict[Slot, SignedTransactionAPI] = OrderedDict()
        self._future: dict[bytes, dict[int, SignedTransactionAPI]] = {}
        self._future_total = 0
        self._in_flight: dict[bytes, SignedTransactionAPI] = {}
        self._by_hash: dict[bytes, SignedTransactionAPI] = {}  # ready and future
        # Per sender, the nonce after its last ready or in-flight transaction, and how
        # many it has in the pool; the nonce is forgotten with the last one, so the map
        # does not grow with every address that ever sent.
        self._next_nonce: dict[bytes, int] = {}
        self._per_sender: dict[bytes, int] = {}

    # ------------------------------------------------------------------ queries

    def next_nonce(self, sender: bytes, state_nonce: int) -> int:
        """The nonce the sender's next new transaction must carry to be ready."""
        return max(state_nonce, self._next_nonce.get(sender, 0))

    def occupant(self, sender: bytes, nonce: int) -> SignedTransactionAPI | None:
        """The replaceable (ready or future) transaction in this slot, if any."""
        ready = self._ready.get((sender, nonce))
        if ready is not None:
            return ready
        return self._future.get(sender, {}).get(nonce)

    def knows(self, tx_hash: bytes) -> bool:
        return tx_hash in self._by_hash or tx_hash in self._in_flight

    def is_unsealed(self, tx_hash: bytes) -> bool:
        """Ready or in flight: a receipt is on its way without anyone's help."""
        tx = self._by_hash.get(tx_hash)
        if tx is not None:
            return self._ready.get((tx.sender, tx.nonce)) is tx
        return tx_hash in self._in_flight

    def get(self, tx_hash: bytes) -> SignedTransactionAPI | None:
        return self._by_hash.get(tx_hash) or self._in_flight.get(tx_hash)

    @property
    def ready_count(self) -> int:
        return len(self._ready)

    @property
    def held_lifetime_s(self) -> float:
        return self._held_lifetime_s

    @property
    def future_count(self) -> int:
        return self._future_total

    @property
    def idle(self) -> bool:
        """Nothing ready and nothing in flight (future transactions wait for others)."""
        return not self._ready and not self._in_flight

    # ---------------------------------------------------------------- admission

    def add(self, tx: SignedTransactionAPI, sender: bytes, state_nonce: int) -> None:
        """Queue ``tx`` as ready, future or a replacement. The caller checked that a
        replacement pays enough (:func:`check_replacement`) and that a nonce below
        :meth:`next_nonce` has an occupant."""
        expected = self.next_nonce(sender, state_nonce)
        old = self.occupant(sender, tx.nonce)
        if old is not None:
            self._replace(old, tx, sender)
        elif tx.nonce == expected:
            self._make_ready(tx, sender)
            self._promote(sender)
        elif tx.nonce > expected:
            self._hold(tx, sender, expected)
        else:
            raise AssertionError("a nonce below the next one must replace an occupant")

    def _replace(self, old: SignedTransactionAPI, new: SignedTransactionAPI, sender: bytes) -> None:
        slot = (sender, new.nonce)
        if slot in self._ready:
            self._ready[slot] = new
        else:
            self._future[sender][new.nonce] = new
            del self._held_since[old.hash]
            self._held_since[new.hash] = self._clock()
        del self._by_hash[old.hash]
        self._by_hash[new.hash] = new

    def _make_ready(self, tx: SignedTransactionAPI, sender: bytes) -> None:
        self._ready[(sender, tx.nonce)] = tx
        self._by_hash[tx.hash] = tx
        self._next_nonce[sender] = tx.nonce + 1
        self._per_sender[sender] = self._per_sender.get(sender, 0) + 1

    def _promote(self, sender: bytes) -> None:
        held = self._future.get(sender)
        while held:
            tx = held.pop(self._next_nonce[sender], None)
            if tx is None:
                break
            self._future_total -= 1
            del self._held_since[tx.hash]
            self._ready[(sender, tx.nonce)] = tx
            self._next_nonce[sender] = tx.nonce + 1
        if not held:
            self._future.pop(sender, None)

    def _hold(self, tx: SignedTransactionAPI, sender: bytes, expected: int) -> None:
        held = self._future.setdefault(sender, {})
        if len(held) >= self._max_future_per_sender:
            raise TransactionRejectedError(
                f"account limit exceeded: {len(held)} transactions already wait for nonce "
                f"{expected}; send that nonce first"
            )
        if self._future_total >= self._max_future_total:
            if not held:
                del self._future[sender]
            raise TransactionRejectedError(
                f"txpool is full: {self._future_total} transactions wait for nonce gaps "
                "to fill; retry later"
            )
        held[tx.nonce] = tx
        self._by_hash[tx.hash] = tx
        self._future_total += 1
        self._held_since[tx.hash] = self._clock()
        self._per_sender[sender] = self._per_sender.get(sender, 0) + 1

    # ------------------------------------------------------------------ sealing

    def take(self, limit: int) -> list[SignedTransactionAPI]:
        """Move up to ``limit`` ready transactions, oldest first, in flight."""
        batch: list[SignedTransactionAPI] = []
        while self._ready and len(batch) < limit:
            _, tx = self._ready.popitem(last=False)
            del self._by_hash[tx.hash]
            self._in_flight[tx.hash] = tx
            batch.append(tx)
        return batch

    def put_back(self, txs: list[SignedTransactionAPI]) -> None:
        """Return in-flight transactions that did not fit a block to the head of the
        ready queue, in their order."""
        for tx in reversed(txs):
            del self._in_flight[tx.hash]
            expected = self._next_nonce.get(tx.sender)
            if expected is not None and tx.nonce > expected:
                # A transaction before it was dropped in the same block: wait for the gap.
                self._future.setdefault(tx.sender, {})[tx.nonce] = tx
                self._future_total += 1
                self._held_since[tx.hash] = self._clock()
                self._by_hash[tx.hash] = tx
                continue
            slot = (tx.sender, tx.nonce)
            self._ready[slot] = tx
            self._ready.move_to_end(slot, last=False)
            self._by_hash[tx.hash] = tx

    def sealed(self, txs: list[SignedTransactionAPI]) -> None:
        """In-flight transactions whose block is committed."""
        for tx in txs:
            del self._in_flight[tx.hash]
            self._leave(tx.sender)

    def _leave(self, sender: bytes) -> None:
        left = self._per_sender[sender] - 1
        if left:
            self._per_sender[sender] = left
        else:
            del self._per_sender[sender]
            # the chain's nonce says it all now (a sender with only held transactions
            # never had one)
            self._next_nonce.pop(sender, None)

    def drop(self, tx: SignedTransactionAPI) -> bool:
        """An in-flight transaction failed before execution (its sender's funds ran out,
        say): its slot is free again, and the sender's ready transactions behind it go
        back to waiting for that nonce instead of failing in turn. False, and nothing
        done, when ``tx`` is no longer in flight (dropped already, put back or sealed)."""
        if self._in_flight.pop(tx.hash, None) is None:
            return False
        sender = tx.sender
        self._next_nonce[sender] = min(self._next_nonce[sender], tx.nonce)
        self._leave(sender)
        behind = [slot for slot in self._ready if slot[0] == sender and slot[1] > tx.nonce]
        for slot in behind:
            later = self._ready.pop(slot)
            self._future.setdefault(sender, {})[later.nonce] = later
            self._future_total += 1  # may pass the bound: these were admitted already
            self._held_since[later.hash] = self._clock()
        return True

    def expire(self) -> list[SignedTransactionAPI]:
        """Drop the future transactions that have waited longer than the lifetime and
        return them, oldest first."""
        deadline = self._clock() - self._held_lifetime_s
        expired: list[SignedTransactionAPI] = []
        while self._held_since:
            tx_hash, since = next(iter(self._held_since.items()))
            if since > deadline:
                break
            del self._held_since[tx_hash]
            tx = self._by_hash.pop(tx_hash)
            held = self._future[tx.sender]
            del held[tx.nonce]
            if not held:
                del self._future[tx.sender]
            self._future_total -= 1
            self._leave(tx.sender)
            expired.append(tx)
        return expired


def check_replacement(old: SignedTransactionAPI, new: SignedTransactionAPI) -> None:
    """geth's price bump: the new fee cap and tip each strictly above the old ones and at
    least ``PRICE_BUMP_PERCENT`` more."""
    old_cap, old_tip = old.max_fee_per_gas, old.max_priority_fee_per_gas
    new_cap, new_tip = new.max_fee_per_gas, new.max_priority_fee_per_gas
    bump = 100 + PRICE_BUMP_PERCENT
    enough = (
        new_cap > old_cap
        and new_tip > old_tip
        and new_cap * 100 >= old_cap * bump
        and new_tip * 100 >= old_tip * bump
    )
    if not enough:
        raise TransactionRejectedError("replacement transaction underpriced")
