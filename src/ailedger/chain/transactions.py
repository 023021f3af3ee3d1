"""Signing, sending and confirming transactions from a local account.

One place decides nonces, fees and gas, and turns web3's assorted failures into
:class:`TransactionRejectedError` / :class:`TransactionRevertedError` with the reason.

Threads of one process that send from one account (the provider agent's runners and its
bidders, the web app's requests) take the account's nonce one at a time: the lock is held
from reading the pending nonce until the node has the transaction, never while waiting for
a receipt, so a bid is not held up by another transaction waiting to be mined.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eth_typing import HexStr

from ailedger.errors import ChainError, TransactionRejectedError, TransactionRevertedError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3 import Web3
    from web3.types import TxReceipt

GAS_MARGIN = 1.25  # estimates are exact for the state they ran on; leave room for change
RECEIPT_TIMEOUT_S = 120

_nonce_locks: dict[str, threading.Lock] = {}
_nonce_locks_guard = threading.Lock()


def _nonce_lock(address: str) -> threading.Lock:
    with _nonce_locks_guard:
        return _nonce_locks.setdefault(address.lower(), threading.Lock())


@dataclass(frozen=True)
class TxResult:
    """A mined transaction."""

    tx_hash: str
    block_number: int
    gas_used: int
    contract_address: str | None
    receipt: TxReceipt = field(repr=False, compare=False)
    """The web3 receipt, for decoding the events the transaction emitted."""


def fee_fields(web3: Web3) -> dict[str, int]:
    """EIP-1559 fees that stay valid for several blocks of rising base fee."""
    base = int(web3.eth.get_block("latest")["baseFeePerGas"])
    tip = int(web3.eth.max_priority_fee)
    return {"maxFeePerGas": 2 * base + tip, "maxPriorityFeePerGas": tip}


def submit(web3: Web3, account: LocalAccount, tx: dict[str, Any]) -> str:
    """Fill in chain id, nonce, fees and gas, sign and send; returns the tx hash at once.

    The next transaction from this account is ordered after it by its nonce, so a caller
    can send a dependent one without waiting for this one to be mined."""
    return _sign_and_send(web3, account, tx)[0]


def send(web3: Web3, account: LocalAccount, tx: dict[str, Any]) -> TxResult:
    """Fill in chain id, nonce, fees and gas, sign, send, and wait for the receipt.

    A caller that gives ``gas`` skips the estimate (one EVM run less on a latency-critical
    path); if such a transaction reverts, the call is replayed to name the reason."""
    tx_hash, sent = _sign_and_send(web3, account, tx)
    try:
        return wait_for(web3, tx_hash)
    except TransactionRevertedError as exc:
        if "gas" not in tx:
            raise
        raise TransactionRevertedError(f"{exc}: {_replayed_reason(web3, sent)}") from exc


def _sign_and_send(
    web3: Web3, account: LocalAccount, tx: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The tx hash and the transaction as sent (every field filled in)."""
    with _nonce_lock(account.address):
        return _sign_and_send_next(web3, account, dict(tx))


def _sign_and_send_next(
    web3: Web3, account: LocalAccount, tx: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    from web3.exceptions import ContractLogicError, Web3RPCError

    tx["from"] = account.address
    tx.setdefault("chainId", int(web3.eth.chain_id))
    tx.setdefault("nonce", int(web3.eth.get_transaction_count(account.address, "pending")))
    if "gasPrice" not in tx:
        for key, value in fee_fields(web3).items():
            tx.setdefault(key, value)
    try:
        if "gas" not in tx:
            tx["gas"] = int(int(web3.eth.estimate_gas(tx)) * GAS_MARGIN)  # type: ignore[arg-type]
        signed = account.sign_transaction(tx)
        tx_hash = web3.eth.send_raw_transaction(signed.raw_transaction)
    except ContractLogicError as exc:
        raise TransactionRevertedError(f"the transaction would fail: {_reason(exc)}") from exc
    except Web3RPCError as exc:
        raise TransactionRejectedError(f"the node refused the transaction: {_reason(exc)}") from exc
    return "0x" + bytes(tx_hash).hex(), tx


def _replayed_reason(web3: Web3, tx: dict[str, Any]) -> str:
    """The revert reason of ``tx`` run again as a call on the latest state."""
    from web3.exceptions import ContractLogicError

    call = {k: tx[k] for k in ("from", "to", "data", "value") if k in tx}
    try:
        web3.eth.call(call)  # type: ignore[arg-type]
    except ContractLogicError as exc:
        return _reason(exc)
    except Exception:  # the node could not replay it: say so rather than guess
        return "reason unknown"
    return "reason unknown (the call succeeds now)"


def wait_for(web3: Web3, tx_hash: str, timeout: float = RECEIPT_TIMEOUT_S) -> TxResult:
    """Wait for the receipt, polling every 5 ms at first (a local chain seals in a few ms)
    and backing off to 0.5 s (a public network takes seconds), so neither waits long nor
    is flooded with requests. An ailedger node is asked every second whether it dropped
    the transaction, so a dropped one fails at once with the node's reason instead of
    after ``timeout``."""
    from web3.exceptions import TransactionNotFound

    give_up = time.monotonic() + timeout
    delay = 0.005
    dropped = _DroppedCheck(web3, tx_hash)
    while True:
        try:
            receipt = web3.eth.get_transaction_receipt(HexStr(tx_hash))
            break
        except TransactionNotFound:
            reason = dropped.reason()
            if reason is not None:
                raise ChainError(
                    f"transaction {tx_hash} was dropped by the node: {reason}; "
                    "send it again (with a fresh nonce if it was replaced)"
                ) from None
            if time.monotonic() >= give_up:
                raise ChainError(
                    f"transaction {tx_hash} was not mined within {timeout:.0f} s; "
                    "check the node with `ailedger chain status`"
                ) from None
            time.sleep(delay)
            delay = min(delay * 1.25, 0.5)
    if receipt["status"] != 1:
        raise TransactionRevertedError(
            f"transaction {tx_hash} reverted in block {receipt['blockNumber']}"
        )
    address = receipt.get("contractAddress")
    return TxResult(
        tx_hash,
        int(receipt["blockNumber"]),
        int(receipt["gasUsed"]),
        None if address is None else str(address),
        receipt,
    )


class _DroppedCheck:
    """Asks the node, at most once a second, whether it dropped a transaction
    (``ailedger_droppedReason``); on a node without that method (any other Ethereum
    node), it asks once and never again."""

    INTERVAL_S = 1.0

    def __init__(self, web3: Web3, tx_hash: str) -> None:
        self._web3 = web3
        self._tx_hash = tx_hash
        self._next = time.monotonic() + self.INTERVAL_S
        self._supported = True

    def reason(self) -> str | None:
        if not self._supported or time.monotonic() < self._next:
            return None
        self._next = time.monotonic() + self.INTERVAL_S
        from web3.types import RPCEndpoint

        try:
            answer = self._web3.provider.make_request(
                RPCEndpoint("ailedger_droppedReason"), [self._tx_hash]
            )
        except Exception:  # the receipt poll reports a node that is down; not this check
            return None
        if "error" in answer:
            self._supported = False
            return None
        result = answer.get("result")
        return result if isinstance(result, str) else None


def _reason(exc: Exception) -> str:
    message = getattr(exc, "message", None) or (exc.args[0] if exc.args else str(exc))
    if isinstance(message, dict):
        message = message.get("message", str(message))
    return str(message)


def fund_from_dev_account(web3: Web3, to: str, wei: int) -> TxResult:
    """Send ``wei`` of gas money from the node's unlocked development account.

    Development nodes (the embedded chain, Anvil, Hardhat) unlock a prefunded account
    for ``eth_sendTransaction``; production networks do not, and get a clear error.
    """
    from web3.exceptions import Web3RPCError

    accounts = list(web3.eth.accounts)
    if not accounts:
        raise ChainError(
            "this chain has no unlocked development account to pay gas from; "
            "ask the network's operator for ether"
        )
    try:
        tx_hash = web3.eth.send_transaction(
            {"from": accounts[0], "to": web3.to_checksum_address(to), "value": wei}  # type: ignore[typeddict-item]
        )
    except Web3RPCError as exc:
        raise TransactionRejectedError(f"funding {to} failed: {_reason(exc)}") from exc
    return wait_for(web3, "0x" + bytes(tx_hash).hex())
