"""Admission checks for raw transactions, with the error texts geth users know.

Every check here runs before a transaction is queued, so a rejected transaction gets
its reason in the ``eth_sendRawTransaction`` answer instead of silently never mining.
Messages follow go-ethereum's ``core/txpool`` and ``core`` error strings.
"""

from __future__ import annotations

from eth.abc import AccountDatabaseAPI, SignedTransactionAPI, TransactionBuilderAPI
from eth_typing import Address
from eth_utils.address import to_checksum_address

from ailedger.errors import TransactionRejectedError


def decode_raw(builder: type[TransactionBuilderAPI], raw: bytes) -> SignedTransactionAPI:
    try:
        tx = builder.decode(raw)
        # py-evm's legacy validate() reports this as "Insufficient gas"; geth's text instead
        if tx.gas < tx.intrinsic_gas:
            raise TransactionRejectedError(
                f"intrinsic gas too low: have {tx.gas}, want {tx.intrinsic_gas}"
            )
        tx.validate()
    except TransactionRejectedError:
        raise
    except Exception as exc:  # py-evm raises rlp, ValidationError and ValueError alike
        raise TransactionRejectedError(f"rlp: invalid transaction encoding ({exc})") from exc
    return tx


def sender_of(tx: SignedTransactionAPI) -> bytes:
    try:
        return tx.sender
    except Exception as exc:  # bad signature values surface as assorted errors
        raise TransactionRejectedError("invalid sender") from exc


def check_chain_id(tx: SignedTransactionAPI, chain_id: int) -> None:
    if tx.chain_id is None:
        raise TransactionRejectedError(
            "only replay-protected (EIP-155) transactions allowed over RPC"
        )
    if tx.chain_id != chain_id:
        raise TransactionRejectedError(
            f"invalid chain id for signer: have {tx.chain_id} want {chain_id}"
        )


def check_nonce(tx: SignedTransactionAPI, sender: bytes, expected_nonce: int) -> None:
    """A new transaction (not a replacement) must not reuse a nonce. One above
    ``expected_nonce`` is fine: the pool holds it until the gap fills."""
    if tx.nonce < expected_nonce:
        raise TransactionRejectedError(
            f"nonce too low: address {_Checksummed(sender)}, tx: {tx.nonce} state: {expected_nonce}"
        )


def check_against_state(
    tx: SignedTransactionAPI,
    sender: bytes,
    state: AccountDatabaseAPI,
    block_gas_limit: int,
    base_fee: int,
) -> None:
    """Raise for anything that would keep ``tx`` out of a block built on ``state``."""
    if tx.gas > block_gas_limit:
        raise TransactionRejectedError("exceeds block gas limit")
    if tx.intrinsic_gas > tx.gas:
        raise TransactionRejectedError(
            f"intrinsic gas too low: have {tx.gas}, want {tx.intrinsic_gas}"
        )
    who = _Checksummed(sender)  # formatted only if a message needs it
    if tx.max_fee_per_gas < base_fee:
        raise TransactionRejectedError(
            f"max fee per gas less than block base fee: address {who}, "
            f"maxFeePerGas: {tx.max_fee_per_gas}, baseFee: {base_fee}"
        )
    cost = tx.gas * tx.max_fee_per_gas + tx.value
    balance = state.get_balance(Address(sender))
    if balance < cost:
        raise TransactionRejectedError(
            f"insufficient funds for gas * price + value: address {who} have {balance} want {cost}"
        )


class _Checksummed:
    def __init__(self, address: bytes) -> None:
        self._address = address

    def __str__(self) -> str:
        return str(to_checksum_address(self._address))
