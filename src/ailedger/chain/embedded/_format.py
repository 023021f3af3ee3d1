"""Ethereum JSON-RPC shapes (execution-apis) for blocks, transactions, receipts and logs."""

from __future__ import annotations

from typing import Any

import rlp  # type: ignore[import-untyped]
from eth.abc import BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI
from eth_utils.address import to_checksum_address
from eth_utils.hexadecimal import encode_hex

RpcObject = dict[str, Any]


def qty(value: int) -> str:
    return hex(value)


def data(value: bytes) -> str:
    return encode_hex(value)


def address_or_none(value: bytes) -> str | None:
    return to_checksum_address(value) if value else None


def base_fee(header: BlockHeaderAPI) -> int:
    """The header's base fee; every block of a Shanghai chain has one."""
    return header.base_fee_per_gas or 0


def effective_gas_price(tx: SignedTransactionAPI, base_fee: int) -> int:
    """EIP-1559: the priority fee is capped by what the max fee leaves above the base fee."""
    return min(tx.max_fee_per_gas, base_fee + tx.max_priority_fee_per_gas)


def format_transaction(
    tx: SignedTransactionAPI, header: BlockHeaderAPI | None, index: int | None
) -> RpcObject:
    out: RpcObject = {
        "hash": data(tx.hash),
        "type": qty(tx.type_id or 0),
        "nonce": qty(tx.nonce),
        "from": to_checksum_address(tx.sender),
        "to": address_or_none(tx.to),
        "value": qty(tx.value),
        "gas": qty(tx.gas),
        "input": data(tx.data),
        "chainId": qty(tx.chain_id) if tx.chain_id is not None else None,
        "v": qty(tx.y_parity if tx.type_id else tx.v),  # type: ignore[attr-defined]
        "r": qty(tx.r),
        "s": qty(tx.s),
        "blockHash": data(header.hash) if header else None,
        "blockNumber": qty(header.block_number) if header else None,
        "transactionIndex": qty(index) if index is not None else None,
    }
    if tx.type_id:
        out["maxFeePerGas"] = qty(tx.max_fee_per_gas)
        out["maxPriorityFeePerGas"] = qty(tx.max_priority_fee_per_gas)
        out["accessList"] = [
            {
                "address": to_checksum_address(a),
                "storageKeys": [data(k.to_bytes(32, "big")) for k in keys],
            }
            for a, keys in tx.access_list
        ]
        out["yParity"] = qty(tx.y_parity)
        out["gasPrice"] = qty(
            effective_gas_price(tx, base_fee(header)) if header else tx.max_fee_per_gas
        )
    else:
        out["gasPrice"] = qty(tx.gas_price)
    return out


def format_logs(
    receipt: ReceiptAPI,
    header: BlockHeaderAPI,
    tx_hash: bytes,
    tx_index: int,
    first_log_index: int,
) -> list[RpcObject]:
    return [
        {
            "address": to_checksum_address(log.address),
            "topics": [data(t.to_bytes(32, "big")) for t in log.topics],
            "data": data(log.data),
            "blockNumber": qty(header.block_number),
            "blockHash": data(header.hash),
            "blockTimestamp": qty(header.timestamp),  # geth 1.15+, saves a header fetch
            "transactionHash": data(tx_hash),
            "transactionIndex": qty(tx_index),
            "logIndex": qty(first_log_index + i),
            "removed": False,
        }
        for i, log in enumerate(receipt.logs)
    ]


def format_block(header: BlockHeaderAPI, transactions: list[RpcObject] | list[str]) -> RpcObject:
    return {
        "number": qty(header.block_number),
        "hash": data(header.hash),
        "parentHash": data(header.parent_hash),
        "nonce": data(header.nonce),
        "sha3Uncles": data(header.uncles_hash),
        "logsBloom": data(header.bloom.to_bytes(256, "big")),
        "transactionsRoot": data(header.transaction_root),
        "stateRoot": data(header.state_root),
        "receiptsRoot": data(header.receipt_root),
        "miner": to_checksum_address(header.coinbase),
        "difficulty": qty(header.difficulty),
        "totalDifficulty": qty(0),
        "extraData": data(header.extra_data),
        "size": qty(len(rlp.encode(header))),
        "gasLimit": qty(header.gas_limit),
        "gasUsed": qty(header.gas_used),
        "timestamp": qty(header.timestamp),
        "baseFeePerGas": qty(base_fee(header)),
        "mixHash": data(header.mix_hash),
        "withdrawalsRoot": data(header.withdrawals_root or b""),
        "withdrawals": [],
        "uncles": [],
        "transactions": transactions,
    }
