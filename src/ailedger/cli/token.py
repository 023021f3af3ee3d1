"""``ailedger token``: the AIL payment token."""

from __future__ import annotations

import typer

from ailedger.cli import _parsers as parse
from ailedger.cli._common import JSON_OPTION, console, emit, session, tx_line

app = typer.Typer(help="Check balances, pay, and (on development chains) mint AIL tokens.")


@app.command("balance")
def balance(
    ctx: typer.Context,
    address: str = typer.Argument(None, help="Account to look up; default: this home's."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show the AIL balance of an account."""
    from ailedger.units import format_amount

    with session(ctx, unlock=False) as s:
        who = s.address if address is None else parse.address(address)
        amount = s.token.balance_of(who)
    emit(
        as_json,
        {"address": who, "base_units": str(amount)},
        lambda: console.print(f"{who}: {format_amount(amount)}"),
    )


@app.command("transfer")
def transfer(
    ctx: typer.Context,
    to: str = typer.Argument(..., help="Recipient address (0x...)."),
    amount: str = typer.Argument(..., help="AIL to send, e.g. 12.5."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Send AIL from this home's account to another account."""
    from ailedger.units import format_amount, parse_amount

    value = parse_amount(amount)
    recipient = parse.address(to)
    with session(ctx, unlock=True) as s:
        result = s.token.transfer(recipient, value)
    data = {
        "tx": result.tx_hash,
        "block": result.block_number,
        "to": recipient,
        "base_units": str(value),
    }
    emit(
        as_json,
        data,
        lambda: tx_line(
            f"sent {format_amount(value)} to {recipient}", result.tx_hash, result.block_number
        ),
    )


@app.command("faucet")
def faucet(
    ctx: typer.Context,
    amount: str = typer.Argument("1000", help="AIL to mint (at most 10000 per call)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Mint test AIL to this home's account. Only development chains allow it; gas
    money is fetched first from the chain's development account if the account has none."""
    from ailedger.chain.transactions import fund_from_dev_account
    from ailedger.session import GAS_FUNDING_WEI
    from ailedger.units import format_amount, parse_amount

    value = parse_amount(amount)
    with session(ctx, unlock=True) as s:
        if s.ether_balance() == 0:
            fund_from_dev_account(s.chain.web3, s.address, GAS_FUNDING_WEI)
        result = s.token.faucet(value)
        total = s.token.balance_of(s.address)
    data = {
        "tx": result.tx_hash,
        "block": result.block_number,
        "base_units": str(value),
        "balance_base_units": str(total),
    }
    emit(
        as_json,
        data,
        lambda: tx_line(
            f"minted {format_amount(value)}; balance {format_amount(total)}",
            result.tx_hash,
            result.block_number,
        ),
    )
