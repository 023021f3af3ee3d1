"""The embedded chain's py-evm configuration: one Shanghai VM, no proof of work.

Shanghai, not Cancun, because the contracts are compiled for Shanghai so that the same
bytecode runs on consortium chains that have not adopted Cancun (the test suite runs it on
Anvil pinned to Shanghai).
"""

from __future__ import annotations

import time
from typing import Any

from eth.abc import AtomicDatabaseAPI, BlockHeaderAPI
from eth.chains.base import MiningChain
from eth.constants import BLANK_ROOT_HASH, ZERO_ADDRESS
from eth.vm.forks.shanghai import ShanghaiVM
from eth_typing import BlockNumber

BLOCK_GAS_LIMIT = 30_000_000
INITIAL_BASE_FEE = 1_000_000_000  # 1 gwei, as on Ethereum at London


class LedgerChain(MiningChain):
    """A MiningChain whose gas limit stays constant and whose blocks need no seal."""

    vm_configuration = ((BlockNumber(0), ShanghaiVM),)
    chain_id = 7357

    def create_header_from_parent(
        self, parent_header: BlockHeaderAPI, **header_params: Any
    ) -> BlockHeaderAPI:
        # A single sealer seals many blocks a second: timestamps follow the wall clock
        # and may repeat, but never go backwards (Hardhat's allowBlocksWithSameTimestamp).
        header_params.setdefault("gas_limit", parent_header.gas_limit)
        header_params.setdefault("timestamp", max(int(time.time()), parent_header.timestamp))
        return super().create_header_from_parent(parent_header, **header_params)


def chain_class(chain_id: int) -> type[LedgerChain]:
    return type(f"LedgerChain{chain_id}", (LedgerChain,), {"chain_id": chain_id})


def create_genesis(db: AtomicDatabaseAPI, chain_id: int, alloc: dict[bytes, int]) -> LedgerChain:
    """Write block 0 with ``alloc`` (address -> wei) prefunded."""
    params: dict[str, Any] = {
        "difficulty": 0,
        "gas_limit": BLOCK_GAS_LIMIT,
        "timestamp": int(time.time()),
        "extra_data": b"ailedger embedded chain",
        "coinbase": ZERO_ADDRESS,
        "nonce": b"\x00" * 8,
        "mix_hash": b"\x00" * 32,
        "base_fee_per_gas": INITIAL_BASE_FEE,
        "withdrawals_root": BLANK_ROOT_HASH,
    }
    state: dict[Any, Any] = {
        address: {"balance": wei, "nonce": 0, "code": b"", "storage": {}}
        for address, wei in alloc.items()
    }
    return chain_class(chain_id).from_genesis(db, params, state)  # type: ignore[return-value]


def load_chain(db: AtomicDatabaseAPI, chain_id: int) -> LedgerChain:
    return chain_class(chain_id)(db)
