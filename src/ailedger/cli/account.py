"""``ailedger account``: the home's account and its balances."""

from __future__ import annotations

import typer

from ailedger.cli._common import JSON_OPTION, console, emit, session, tx_line

app = typer.Typer(help="Show the home's account; get gas money on development chains.")


@app.command("show")
def show(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Show the account address, its encryption key, and its ether and AIL balances."""
    from ailedger.account import summary
    from ailedger.units import format_amount

    with session(ctx, unlock=False) as s:
        found = summary(s)
    data = {
        "address": found.address,
        "home": found.home,
        "chain": found.chain,
        "chain_id": found.chain_id,
        "encryption_public_key": found.encryption_public_key,
        "encryption_key_registered": found.encryption_key_registered,
        "ether_wei": str(found.ether_wei),
        "token_base_units": str(found.token_base_units),
    }

    def render() -> None:
        console.print(f"account  {found.address}")
        console.print(f"home     {found.home}")
        console.print(f"chain    {found.chain} (id {found.chain_id})")
        state = "registered on chain" if found.encryption_key_registered else "not registered"
        console.print(f"enc key  {found.encryption_public_key} ({state})")
        console.print(f"gas      {format_amount(found.ether_wei, 'ETH')}")
        console.print(f"tokens   {format_amount(found.token_base_units)}")

    emit(as_json, data, render)


@app.command("fund")
def fund(
    ctx: typer.Context,
    amount: str = typer.Option("10", help="Ether to receive, e.g. 2.5."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Receive ether for gas from a development chain's unlocked account.

    Works on the embedded chain, Anvil and Hardhat; production networks refuse.
    """
    from ailedger.account import fund_gas
    from ailedger.units import format_amount, parse_amount

    wei = parse_amount(amount, "ETH")
    with session(ctx, unlock=False) as s:
        sent = fund_gas(s, wei)
    data = {"tx": sent.tx_hash, "block": sent.block, "ether_wei": str(sent.balance)}
    emit(
        as_json,
        data,
        lambda: tx_line(
            f"received {format_amount(wei, 'ETH')}; balance {format_amount(sent.balance, 'ETH')}",
            sent.tx_hash,
            sent.block,
        ),
    )


@app.command("register-key")
def register_key(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Publish the home's X25519 encryption key in the on-chain key registry,
    so data owners can wrap data keys to it."""
    from ailedger.account import register_encryption_key

    with session(ctx, unlock=True) as s:
        result, version = register_encryption_key(s)
    data = {"tx": result.tx_hash, "block": result.block_number, "version": version}
    emit(
        as_json,
        data,
        lambda: tx_line(
            f"registered encryption key (version {version}) for {s.address}",
            result.tx_hash,
            result.block_number,
        ),
    )
