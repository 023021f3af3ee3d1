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
    from ailedger.account import token_balance
    from ailedger.units import format_amount

    with session(ctx, unlock=False) as s:
        who = s.address if address is None else parse.address(address)
        amount = token_balance(s, who)
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
    from ailedger.account import transfer_tokens
    from ailedger.units import format_amount, parse_amount

    value = parse_amount(amount)
    recipient = parse.address(to)
    with session(ctx, unlock=True) as s:
        sent = transfer_tokens(s, recipient, value)
    data = {
        "tx": sent.tx_hash,
        "block": sent.block,
        "to": recipient,
        "base_units": str(value),
    }
    emit(
        as_json,
        data,
        lambda: tx_line(f"sent {format_amount(value)} to {recipient}", sent.tx_hash, sent.block),
    )


@app.command("faucet")
def faucet(
    ctx: typer.Context,
    amount: str = typer.Argument("1000", help="AIL to mint (at most 10000 per call)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Mint test AIL to this home's account. Only development chains allow it; gas
    money is fetched first from the chain's development account if the account has none."""
    from ailedger.account import mint_test_tokens
    from ailedger.units import format_amount, parse_amount

    value = parse_amount(amount)
    with session(ctx, unlock=True) as s:
        minted = mint_test_tokens(s, value)
    data = {
        "tx": minted.tx_hash,
        "block": minted.block,
        "base_units": str(value),
        "balance_base_units": str(minted.balance),
    }
    emit(
        as_json,
        data,
        lambda: tx_line(
            f"minted {format_amount(value)}; balance {format_amount(minted.balance)}",
            minted.tx_hash,
            minted.block,
        ),
    )
