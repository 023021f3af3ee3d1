"""The compute market's time windows, chosen for the network it is deployed on.

ComputeMarket takes bids for ``bid`` seconds after a job is posted, keeps reveals open
for ``reveal`` seconds and gives a k = 1 requester ``dispute`` seconds to dispute a
result (``contracts/ComputeMarket.vy``). The contract measures them in block
timestamps, so what a window must hold depends on how fast the network includes a
transaction: a provider sees a posting one block after it lands and its bid lands a block
later. On the embedded chain, which seals a block within milliseconds of a transaction,
the chain is not what a bidder waits for: its own machine is (seeing the posting, reading
the job's ``job.toml`` from the requester's node, signing the bid), and a 2-second window
proved too short on a loaded two-core machine. Bids are taken for 10 s there; a job does
not wait that long to start, because its requester closes the auction as soon as k
eligible bids are in (``compute.requester.job.close_when_ready``), so only an auction
that fails waits the window out before it refunds. On a network sealing every 12 s a
fixed short window would close before any bid could be mined; it is widened to span
several blocks.

The windows are fixed in the contract at deploy (immutables) and read back from it by
everyone else (:meth:`ailedger.compute.market.ComputeMarketClient.windows`), so no party
assumes them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from ailedger.errors import ConfigError

if TYPE_CHECKING:
    from web3 import Web3

# The contract bounds every window to (0, 365 days].
MAX_WINDOW_S: Final = 365 * 86400
# How many of the network's block intervals each window spans at least: a bid needs one
# block to be seen and one to land, twice over for slow pollers; a reveal or a dispute is
# one transaction that may wait out a congested spell of blocks.
BID_BLOCKS: Final = 4
REVEAL_BLOCKS: Final = 30
DISPUTE_BLOCKS: Final = 60


@dataclass(frozen=True)
class MarketWindows:
    """Seconds for ComputeMarket's bid, reveal and dispute windows."""

    bid_s: int
    reveal_s: int
    dispute_s: int

    def __post_init__(self) -> None:
        for name, value in (
            ("bid", self.bid_s),
            ("reveal", self.reveal_s),
            ("dispute", self.dispute_s),
        ):
            if not 0 < value <= MAX_WINDOW_S:
                raise ConfigError(
                    f"the {name} window must be 1 to {MAX_WINDOW_S} seconds (365 days), not {value}"
                )

    @classmethod
    def for_block_interval(cls, seconds: float) -> MarketWindows:
        """Windows for a network that takes ``seconds`` per block: the development
        windows, widened to span ``BID_BLOCKS``/``REVEAL_BLOCKS``/``DISPUTE_BLOCKS``
        blocks where the network is slower than that."""
        if not math.isfinite(seconds) or seconds < 0:
            raise ConfigError(f"a block interval must be finite and >= 0 s, not {seconds}")
        return cls(
            bid_s=min(MAX_WINDOW_S, max(DEV_CHAIN_WINDOWS.bid_s, math.ceil(BID_BLOCKS * seconds))),
            reveal_s=min(
                MAX_WINDOW_S,
                max(DEV_CHAIN_WINDOWS.reveal_s, math.ceil(REVEAL_BLOCKS * seconds)),
            ),
            dispute_s=min(
                MAX_WINDOW_S,
                max(DEV_CHAIN_WINDOWS.dispute_s, math.ceil(DISPUTE_BLOCKS * seconds)),
            ),
        )


@dataclass(frozen=True)
class WindowChoice:
    """The windows an operator fixed (``ailedger chain deploy --bid-window ...``); those
    left None are scaled to the network's measured block interval at deploy."""

    bid_s: int | None = None
    reveal_s: int | None = None
    dispute_s: int | None = None

    @property
    def measures(self) -> bool:
        """Whether any window is left to the measurement."""
        return None in (self.bid_s, self.reveal_s, self.dispute_s)

    def resolve(self, block_interval_s: float) -> MarketWindows:
        """The windows in force on a network taking ``block_interval_s`` per block."""
        scaled = MarketWindows.for_block_interval(block_interval_s)
        return MarketWindows(
            bid_s=scaled.bid_s if self.bid_s is None else self.bid_s,
            reveal_s=scaled.reveal_s if self.reveal_s is None else self.reveal_s,
            dispute_s=scaled.dispute_s if self.dispute_s is None else self.dispute_s,
        )


# A chain that includes a transaction within milliseconds (the embedded chain, a dev
# node mining on demand): bids for 10 s, reveals within 5 minutes, disputes within 10.
DEV_CHAIN_WINDOWS: Final = MarketWindows(bid_s=10, reveal_s=300, dispute_s=600)


def observed_block_interval(web3: Web3, blocks: Sequence[int]) -> float:
    """Seconds the chain took per transaction, from the blocks that held transactions
    sent back to back (each after the previous one's receipt), in sending order.

    This is the interval that matters to the market's parties, who wait for one
    transaction before sending the next; unlike the mean gap between recent headers it is
    not stretched by idle time on a chain that mines only on demand. Block timestamps
    have whole seconds, so a fast chain measures a fraction of a second or zero."""
    if len(blocks) < 2:
        raise ConfigError("measuring the block interval needs at least two transactions")
    first = int(web3.eth.get_block(blocks[0])["timestamp"])
    last = int(web3.eth.get_block(blocks[-1])["timestamp"])
    return max(0, last - first) / (len(blocks) - 1)
