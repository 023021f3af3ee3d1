"""Priority fees as the chain's recent blocks paid them: ``eth_feeHistory`` rewards and the
``eth_maxPriorityFeePerGas`` suggestion, computed the way geth's gas price oracle does."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from eth.abc import BlockHeaderAPI

from ailedger.chain.embedded._format import base_fee, effective_gas_price
from ailedger.chain.embedded.node import EmbeddedChain

GWEI = 10**9
DEFAULT_TIP = GWEI
"""Suggested when recent blocks say nothing (no transactions paying a tip), and the least
ever suggested: Anvil and Hardhat suggest 1 gwei too, and on a chain with one sealer any
tip is included, so wallets that follow the suggestion overpay by at most this much."""
MAX_TIP = 500 * GWEI  # geth's cap on the suggestion
ORACLE_BLOCKS = 20  # geth: the last 20 blocks
ORACLE_PERCENTILE = 60
SAMPLES_PER_BLOCK = 3  # geth: the 3 cheapest transactions of each block
IGNORE_TIP_BELOW = 2  # wei; geth's ignorePrice: tips this low are not a market signal
MAX_FEE_HISTORY_BLOCKS = 1024
_CACHED_BLOCKS = 2048


@dataclass(frozen=True)
class _Paid:
    tip: int
    tx_hash: bytes


class FeeOracle:
    """Tips of recent blocks, cached per block hash (a sealed block never changes), and
    the suggestion per head (wallets ask before every transaction)."""

    def __init__(self, chain: EmbeddedChain) -> None:
        self._chain = chain
        self._lock = threading.Lock()
        self._blocks: OrderedDict[bytes, list[_Paid]] = OrderedDict()
        self._suggestion: tuple[bytes, int] | None = None

    def rewards(self, header: BlockHeaderAPI, percentiles: list[float]) -> list[int]:
        """geth's feeHistory reward: the tip at each percentile of the block's gas,
        transactions ordered by tip; 0 for an empty block."""
        paid = self._paid(header)
        if not paid:
            return [0 for _ in percentiles]
        gas = [self._gas_used(p.tx_hash) for p in paid]
        total = sum(gas)
        out = []
        for percentile in percentiles:
            threshold = total * percentile / 100
            index, so_far = 0, gas[0]
            while so_far < threshold and index < len(paid) - 1:
                index += 1
                so_far += gas[index]
            out.append(paid[index].tip)
        return out

    def suggested_tip(self, head: BlockHeaderAPI) -> int:
        """geth's oracle: the 60th percentile of the cheapest tips of the last 20 blocks."""
        with self._lock:
            if self._suggestion is not None and self._suggestion[0] == head.hash:
                return self._suggestion[1]
        samples: list[int] = []
        number = int(head.block_number)
        while number >= 0 and head.block_number - number < ORACLE_BLOCKS:
            header = head if number == head.block_number else self._chain.header(number)
            if header is None:
                break
            tips = [p.tip for p in self._paid(header) if p.tip >= IGNORE_TIP_BELOW]
            samples.extend(tips[:SAMPLES_PER_BLOCK])  # _paid is sorted by tip
            number -= 1
        suggestion = DEFAULT_TIP
        if samples:
            samples.sort()
            chosen = samples[(len(samples) - 1) * ORACLE_PERCENTILE // 100]
            suggestion = min(MAX_TIP, max(DEFAULT_TIP, chosen))
        with self._lock:
            self._suggestion = (head.hash, suggestion)
        return suggestion

    def _gas_used(self, tx_hash: bytes) -> int:
        receipt = self._chain.receipt(tx_hash)
        return int(receipt["gasUsed"], 16) if receipt else 0

    def _paid(self, header: BlockHeaderAPI) -> list[_Paid]:
        """The block's transactions' tips, cheapest first."""
        with self._lock:
            cached = self._blocks.get(header.hash)
            if cached is not None:
                self._blocks.move_to_end(header.hash)
                return cached
        fee = base_fee(header)
        paid = sorted(
            (
                _Paid(effective_gas_price(tx, fee) - fee, tx.hash)
                for tx in self._chain.transactions(header)
            ),
            key=lambda p: p.tip,
        )
        with self._lock:
            self._blocks[header.hash] = paid
            while len(self._blocks) > _CACHED_BLOCKS:
                self._blocks.popitem(last=False)
        return paid
