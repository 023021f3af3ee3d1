"""A summary of where the chain stands, for ``ailedger chain status``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ailedger.chain.connection import ChainConnection
from ailedger.errors import NotDeployedError

if TYPE_CHECKING:
    from ailedger.session import Session

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


@dataclass(frozen=True)
class HomeOverview:
    """What the web app's home page shows: an account's balances on the home's chain and
    where the home's contracts are."""

    address: str
    ether_wei: int
    token_base_units: int | None  # None while the contracts are not deployed
    chain: str
    chain_id: int
    head: int
    contracts: dict[str, str]


def home_overview(session: Session, address: str) -> HomeOverview:
    """``address``'s balances and the chain and deployment of ``session``'s home."""
    from ailedger.chain.deploy import find_deployment

    web3 = session.chain.web3
    try:
        contracts = dict(find_deployment(web3, session.home.path).contracts)
    except NotDeployedError:
        contracts = {}
    tokens = session.token.balance_of(address) if "Token" in contracts else None
    return HomeOverview(
        address=address,
        ether_wei=session.ether_balance(address),
        token_base_units=tokens,
        chain=session.chain.description,
        chain_id=session.chain.chain_id,
        head=int(web3.eth.block_number),
        contracts=contracts,
    )
