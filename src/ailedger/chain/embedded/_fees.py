"""Priority fees as the chain's recent blocks paid them: ``eth_feeHistory`` rewards and the
``eth_maxPriorityFeePerGas`` suggestion, computed the way geth's gas price oracle does."""

from __future__ import annotations

import threading
from collections import OrderedDict

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
_CACHED_BLOCKS = 4 * ORACLE_BLOCKS  # the oracle's window, with room for a few new heads
_CACHED_REWARDS = MAX_FEE_HISTORY_BLOCKS  # (block, percentiles) answers: at most 100 tips each


class FeeOracle:
    """Tips of recent blocks, cached per block hash (a sealed block never changes), and
    the suggestion per head (wallets ask before every transaction)."""

    def __init__(self, chain: EmbeddedChain) -> None:
        self._chain = chain
        self._lock = threading.Lock()
        self._samples: OrderedDict[bytes, tuple[bytes, list[int]]] = OrderedDict()
        self._rewards: OrderedDict[tuple[bytes, tuple[float, ...]], tuple[int, ...]] = OrderedDict()
        self._suggestion: tuple[bytes, int] | None = None

    def rewards(self, header: BlockHeaderAPI, percentiles: list[float]) -> list[int]:
        """geth's feeHistory reward: the tip at each percentile of the block's gas,
        transactions ordered by tip; 0 for an empty block. Cached per block hash and
        percentiles, as geth caches them: wallets ask for the same few recent blocks at
        the same percentiles every few seconds, and each answer reads the whole block
        and one receipt per transaction."""
        key = (header.hash, tuple(percentiles))
        with self._lock:
            cached = self._rewards.get(key)
            if cached is not None:
                self._rewards.move_to_end(key)
                return list(cached)
        rewards = self._block_rewards(header, percentiles)
        with self._lock:
            self._rewards[key] = tuple(rewards)
            while len(self._rewards) > _CACHED_REWARDS:
                self._rewards.popitem(last=False)
        return rewards

    def _block_rewards(self, header: BlockHeaderAPI, percentiles: list[float]) -> list[int]:
        fee = base_fee(header)
        paid = sorted(
            (effective_gas_price(tx, fee) - fee, self._gas_used(tx.hash))
            for tx in self._chain.transactions(header)
        )
        if not paid:
            return [0 for _ in percentiles]
        total = sum(gas for _, gas in paid)
        out = []
        for percentile in percentiles:
            threshold = total * percentile / 100
            index, so_far = 0, paid[0][1]
            while so_far < threshold and index < len(paid) - 1:
                index += 1
                so_far += paid[index][1]
            out.append(paid[index][0])
        return out

    def suggested_tip(self, head: BlockHeaderAPI) -> int:
        """geth's oracle: the 60th percentile of the cheapest tips of the last 20 blocks."""
        with self._lock:
            if self._suggestion is not None and self._suggestion[0] == head.hash:
                return self._suggestion[1]
        samples: list[int] = []
        # Walked by parent hash: a block already sampled needs no header read either.
        block_hash: bytes = head.hash
        header: BlockHeaderAPI | None = head
        for number in range(head.block_number, max(-1, head.block_number - ORACLE_BLOCKS), -1):
            sampled = self._cheapest_tips(block_hash, number, header)
            if sampled is None:
                break
            block_hash, tips = sampled
            samples.extend(tips)
            header = None
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

    def _cheapest_tips(
        self, block_hash: bytes, number: int, header: BlockHeaderAPI | None
    ) -> tuple[bytes, list[int]] | None:
        """The block's parent hash and its few cheapest tips that are a market signal (the
        oracle's samples); None if there is no block ``number``."""
        with self._lock:
            cached = self._samples.get(block_hash)
            if cached is not None:
                return cached
        if header is None:
            header = self._chain.header(number)
            if header is None:
                return None
        fee = base_fee(header)
        tips = sorted(
            tip
            for tip in (
                effective_gas_price(tx, fee) - fee for tx in self._chain.transactions(header)
            )
            if tip >= IGNORE_TIP_BELOW
        )[:SAMPLES_PER_BLOCK]
        sampled = (header.parent_hash, tips)
        with self._lock:
            self._samples[header.hash] = sampled
            while len(self._samples) > _CACHED_BLOCKS:
                self._samples.popitem(last=False)
        return sampled
