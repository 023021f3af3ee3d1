"""A summary of where the chain stands, for ``ailedger chain status``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ailedger.chain.connection import ChainConnection
from ailedger.errors import NotDeployedError

BLOCK_TIME_WINDOW = 10


def chain_status(connection: ChainConnection, home: Path) -> dict[str, Any]:
    from ailedger.chain.deploy import find_deployment

    web3 = connection.web3
    head = web3.eth.get_block("latest")
    number = int(head["number"])
    oldest = web3.eth.get_block(max(0, number - BLOCK_TIME_WINDOW))
    spanned = number - int(oldest["number"])
    block_time = (int(head["timestamp"]) - int(oldest["timestamp"])) / spanned if spanned else 0.0
    try:
        contracts = find_deployment(web3, home).contracts
    except NotDeployedError:
        contracts = {}
    return {
        "description": connection.description,
        "chain_id": connection.chain_id,
        "head": number,
        "head_hash": "0x" + bytes(head["hash"]).hex(),
        "head_timestamp": int(head["timestamp"]),
        "block_time_s": round(block_time, 3),
        "pending": _pending(connection),
        "contracts": contracts,
    }


def _pending(connection: ChainConnection) -> int | None:
    """Pending transactions: exact on the embedded chain, from the txpool elsewhere."""
    if connection.embedded is not None:
        return connection.embedded.pending_count
    try:  # an ailedger node says exactly; others through their pending block
        answer = connection.web3.provider.make_request("ailedger_status", [])  # type: ignore[arg-type]
        if isinstance(answer, dict) and isinstance(answer.get("result"), dict):
            return int(answer["result"]["pending"])
    except Exception:  # not an ailedger node, or an older one
        pass
    try:
        block = connection.web3.eth.get_block("pending")
        latest = connection.web3.eth.get_block("latest")
        if block["number"] == latest["number"]:
            return 0
        return len(block["transactions"])
    except Exception:  # nodes differ in what they say about pending work
        return None
