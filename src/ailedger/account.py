"""The home's account: its address, balances, and the few transactions on its own money.

``ailedger account`` / ``ailedger token`` and the web app's account routes call these, so
both show the same numbers and send the same transactions. Amounts are base units
(``units.parse_amount`` reads what people write).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ailedger.chain.transactions import TxResult
    from ailedger.session import Session

FAUCET_MAX_PER_CALL = 10_000 * 10**18
"""The Token contract's ``FAUCET_MAX_PER_CALL``: more is refused here, before a revert."""


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s]+")


def shown_chain(description: str) -> str:
    """``description`` of a chain connection with each URL cut to its scheme, host and
    port: a JSON-RPC provider's URL often carries an API key (in its path or query) or a
    password, which a page or an API answer must not show."""

    def public(match: re.Match[str]) -> str:
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(match.group(0))
            host, port = parts.hostname or "", parts.port
        except ValueError:
            return "(a URL)"
        host = f"[{host}]" if ":" in host else host
        return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")

    return _URL.sub(public, description)


@dataclass(frozen=True)
class AccountSummary:
    address: str
    home: str
    chain: str
    chain_id: int
    encryption_public_key: str
    encryption_key_registered: bool
    ether_wei: int
    token_base_units: int


@dataclass(frozen=True)
class Sent:
    """A transaction on the account's money, and the balance after it."""

    tx_hash: str
    block: int
    balance: int


def summary(session: Session) -> AccountSummary:
    """The account, its encryption key (and whether the chain has it), its balances."""
    registered = session.key_registry.key_of(session.address)
    return AccountSummary(
        address=session.address,
        home=str(session.home.path),
        chain=session.chain.description,
        chain_id=session.chain.chain_id,
        encryption_public_key=session.home.encryption_public_key.hex(),
        encryption_key_registered=registered == session.home.encryption_public_key,
        ether_wei=session.ether_balance(),
        token_base_units=session.token.balance_of(session.address),
    )


def token_balance(session: Session, address: str) -> int:
    return session.token.balance_of(address)


def transfer_tokens(session: Session, to: str, amount: int) -> Sent:
    """Send ``amount`` AIL base units to ``to``; refused before sending if the balance
    does not cover it."""
    from ailedger.errors import UnprocessableError
    from ailedger.units import format_amount

    held = session.token.balance_of(session.address)
    if amount > held:
        raise UnprocessableError(
            f"the account holds {format_amount(held)}, less than the {format_amount(amount)} "
            "to send; get tokens first (a faucet on development chains)"
        )
    result = session.token.transfer(to, amount)
    return Sent(result.tx_hash, result.block_number, session.token.balance_of(session.address))


def mint_test_tokens(session: Session, amount: int) -> Sent:
    """Mint test AIL on a development chain (gas money first, if the account has none)."""
    from ailedger.chain.transactions import fund_from_dev_account
    from ailedger.errors import UnprocessableError
    from ailedger.session import GAS_FUNDING_WEI

    if amount > FAUCET_MAX_PER_CALL:
        raise UnprocessableError(
            "the faucet mints at most 10000 AIL per call (its per-call limit); ask for less"
        )
    if session.ether_balance() == 0:
        fund_from_dev_account(session.chain.web3, session.address, GAS_FUNDING_WEI)
    result = session.token.faucet(amount)
    return Sent(result.tx_hash, result.block_number, session.token.balance_of(session.address))


def fund_gas(session: Session, wei: int) -> Sent:
    """Receive ``wei`` of ether for gas from a development chain's unlocked account."""
    from ailedger.chain.transactions import fund_from_dev_account

    result: TxResult = fund_from_dev_account(session.chain.web3, session.address, wei)
    return Sent(result.tx_hash, result.block_number, session.ether_balance())


def register_encryption_key(session: Session) -> tuple[TxResult, int]:
    """Publish the home's X25519 key in the key registry; returns (tx, key version)."""
    result = session.key_registry.register(session.home.encryption_public_key)
    return result, session.key_registry.version_of(session.address)
