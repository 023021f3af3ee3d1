"""``/api/v1/account``: the home's account, its balances, token transfers, and (on
development chains) the faucets, as ``ailedger account`` and ``ailedger token`` do.

Amounts go in as decimal text (``"12.5"``, read by ``units.parse_amount``) and come out
as base units in strings (a uint256 does not fit a JSON number).
"""

from __future__ import annotations

import re
from typing import Annotated, Final

from fastapi import APIRouter, Form, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from ailedger.errors import ConfigError, RequestRefusedError, UnprocessableError
from ailedger.web.api._refusals import as_refusals
from ailedger.web.deps import Context, Operator, SignedIn
from ailedger.web.render import page

ADDRESS: Final = r"^0x[0-9a-fA-F]{40}$"
_ADDRESS = re.compile(ADDRESS)
FormAmount = Annotated[str, Form(min_length=1, max_length=100)]


class AccountOut(BaseModel):
    address: str
    home: str
    chain: str
    chain_id: int
    encryption_public_key: str
    encryption_key_registered: bool
    ether_wei: str
    token_base_units: str


class BalanceOut(BaseModel):
    address: str
    base_units: str


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str = Field(pattern=ADDRESS, description="EIP-55 checksummed, or all lower case")
    amount: str = Field(max_length=100, description="AIL, e.g. 12.5")


class AmountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: str = Field(max_length=100, description="e.g. 2.5")


class SentOut(BaseModel):
    tx: str
    block: int
    balance: str = Field(description="the balance after it, base units (wei for ether)")


class KeyRegisteredOut(BaseModel):
    tx: str
    block: int
    version: int


def checked_address(text: str) -> str:
    """``text`` as an EIP-55 address; mixed case must carry a right checksum."""
    from eth_utils.address import is_checksum_address, to_checksum_address

    digits = text[2:]
    if not _ADDRESS.fullmatch(text) or (
        digits != digits.lower() and digits != digits.upper() and not is_checksum_address(text)
    ):
        raise UnprocessableError(
            f"{text[:60]!r} is not an Ethereum address (0x + 40 hex digits, with a right "
            "EIP-55 checksum if in mixed case; write it in lower case to skip the check)"
        )
    return str(to_checksum_address(text))


def amount_of(text: str, unit: str = "AIL") -> int:
    from ailedger.units import parse_amount

    try:
        return parse_amount(text, unit)
    except ConfigError as exc:
        raise UnprocessableError(str(exc)) from exc


def account_out(ctx: Context) -> AccountOut:
    from ailedger.account import shown_chain, summary

    with as_refusals():
        found = summary(ctx.session)
    return AccountOut(
        address=found.address,
        home=found.home,
        chain=shown_chain(found.chain),
        chain_id=found.chain_id,
        encryption_public_key=found.encryption_public_key,
        encryption_key_registered=found.encryption_key_registered,
        ether_wei=str(found.ether_wei),
        token_base_units=str(found.token_base_units),
    )


def router() -> APIRouter:
    from ailedger import account

    api = APIRouter(prefix="/api/v1/account", tags=["account"])

    @api.get("", response_model=AccountOut)
    def show(ctx: Context, user: SignedIn) -> AccountOut:
        """The home's account, its encryption key, its ether and AIL balances."""
        return account_out(ctx)

    @api.get("/balances/{address}", response_model=BalanceOut)
    def balance(
        address: Annotated[str, PathParam(max_length=42)], ctx: Context, user: SignedIn
    ) -> BalanceOut:
        """The AIL balance of any account."""
        who = checked_address(address)
        with as_refusals():
            return BalanceOut(address=who, base_units=str(account.token_balance(ctx.session, who)))

    @api.post("/transfer", response_model=SentOut)
    def transfer(body: TransferIn, ctx: Context, user: Operator) -> SentOut:
        """Send AIL from the home's account."""
        to, value = checked_address(body.to), amount_of(body.amount)
        with ctx.writing(), as_refusals():
            sent = account.transfer_tokens(ctx.session, to, value)
        return SentOut(tx=sent.tx_hash, block=sent.block, balance=str(sent.balance))

    @api.post("/faucet", response_model=SentOut)
    def faucet(body: AmountIn, ctx: Context, user: Operator) -> SentOut:
        """Mint test AIL (development chains only; at most 10000 per call)."""
        value = amount_of(body.amount)
        with ctx.writing(), as_refusals():
            sent = account.mint_test_tokens(ctx.session, value)
        return SentOut(tx=sent.tx_hash, block=sent.block, balance=str(sent.balance))

    @api.post("/fund", response_model=SentOut)
    def fund(body: AmountIn, ctx: Context, user: Operator) -> SentOut:
        """Receive ether for gas from a development chain's unlocked account."""
        wei = amount_of(body.amount, "ETH")
        with ctx.writing(), as_refusals():
            sent = account.fund_gas(ctx.session, wei)
        return SentOut(tx=sent.tx_hash, block=sent.block, balance=str(sent.balance))

    @api.post("/register-key", response_model=KeyRegisteredOut)
    def register_key(ctx: Context, user: Operator) -> KeyRegisteredOut:
        """Publish the home's encryption key on chain, so owners can wrap data keys to it."""
        with ctx.writing(), as_refusals():
            result, version = account.register_encryption_key(ctx.session)
        return KeyRegisteredOut(tx=result.tx_hash, block=result.block_number, version=version)

    return api


def pages() -> APIRouter:
    """``/account``: the account and its balances, with forms for the faucets and a
    transfer (htmx posts to the fragment routes below, which call the same functions)."""
    from ailedger import account

    html = APIRouter(include_in_schema=False)

    @html.get("/account", response_class=HTMLResponse)
    def account_page(request: Request, ctx: Context, user: SignedIn) -> HTMLResponse:
        return page(request, "account.html", account=account_out(ctx), message="", error="")

    def after(request: Request, ctx: Context, message: str) -> HTMLResponse:
        return page(
            request, "_account_panel.html", account=account_out(ctx), message=message, error=""
        )

    def refused(request: Request, ctx: Context, exc: RequestRefusedError) -> HTMLResponse:
        return page(
            request, "_account_panel.html", account=account_out(ctx), message="", error=exc.reason
        )

    @html.post("/account/faucet", response_class=HTMLResponse)
    def faucet_form(
        request: Request, ctx: Context, user: Operator, amount: FormAmount
    ) -> HTMLResponse:
        try:
            value = amount_of(amount)
            with ctx.writing(), as_refusals():
                sent = account.mint_test_tokens(ctx.session, value)
        except RequestRefusedError as exc:
            return refused(request, ctx, exc)
        return after(request, ctx, f"minted {amount} AIL (tx {sent.tx_hash})")

    @html.post("/account/fund", response_class=HTMLResponse)
    def fund_form(
        request: Request, ctx: Context, user: Operator, amount: FormAmount
    ) -> HTMLResponse:
        try:
            wei = amount_of(amount, "ETH")
            with ctx.writing(), as_refusals():
                sent = account.fund_gas(ctx.session, wei)
        except RequestRefusedError as exc:
            return refused(request, ctx, exc)
        return after(request, ctx, f"received {amount} ETH for gas (tx {sent.tx_hash})")

    @html.post("/account/transfer", response_class=HTMLResponse)
    def transfer_form(
        request: Request,
        ctx: Context,
        user: Operator,
        to: Annotated[str, Form(max_length=42)],
        amount: FormAmount,
    ) -> HTMLResponse:
        try:
            recipient, value = checked_address(to), amount_of(amount)
            with ctx.writing(), as_refusals():
                sent = account.transfer_tokens(ctx.session, recipient, value)
        except RequestRefusedError as exc:
            return refused(request, ctx, exc)
        return after(request, ctx, f"sent {amount} AIL to {recipient} (tx {sent.tx_hash})")

    @html.post("/account/register-key", response_class=HTMLResponse)
    def register_key_form(request: Request, ctx: Context, user: Operator) -> HTMLResponse:
        try:
            with ctx.writing(), as_refusals():
                _, version = account.register_encryption_key(ctx.session)
        except RequestRefusedError as exc:
            return refused(request, ctx, exc)
        return after(request, ctx, f"encryption key registered, version {version}")

    return html
