"""``ailedger account``: the home's account and its balances."""

from __future__ import annotations

import typer

from ailedger.cli._common import JSON_OPTION, console, emit, session, tx_line

app = typer.Typer(help="Show the home's account; get gas money on development chains.")


@app.command("show")
def show(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Show the account address, its encryption key, and its ether and AIL balances."""
    from ailedger.units import format_amount

    with session(ctx, unlock=False) as s:
        ether = s.ether_balance()
        tokens = s.token.balance_of(s.address)
        registered = s.key_registry.key_of(s.address)
        data = {
            "address": s.address,
            "home": str(s.home.path),
            "chain": s.chain.description,
            "chain_id": s.chain.chain_id,
            "encryption_public_key": s.home.encryption_public_key.hex(),
            "encryption_key_registered": registered == s.home.encryption_public_key,
            "ether_wei": str(ether),
            "token_base_units": str(tokens),
        }

        def render() -> None:
            console.print(f"account  {s.address}")
            console.print(f"home     {s.home.path}")
            console.print(f"chain    {s.chain.description} (id {s.chain.chain_id})")
            state = "registered on chain" if data["encryption_key_registered"] else "not registered"
            console.print(f"enc key  {data['encryption_public_key']} ({state})")
            console.print(f"gas      {format_amount(ether, 'ETH')}")
            console.print(f"tokens   {format_amount(tokens)}")

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
    from ailedger.chain.transactions import fund_from_dev_account
    from ailedger.units import format_amount, parse_amount

    wei = parse_amount(amount, "ETH")
    with session(ctx, unlock=False) as s:
        result = fund_from_dev_account(s.chain.web3, s.address, wei)
        balance = s.ether_balance()
    data = {"tx": result.tx_hash, "block": result.block_number, "ether_wei": str(balance)}
    emit(
        as_json,
        data,
        lambda: tx_line(
            f"received {format_amount(wei, 'ETH')}; balance {format_amount(balance, 'ETH')}",
            result.tx_hash,
            result.block_number,
        ),
    )


@app.command("register-key")
def register_key(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Publish the home's X25519 encryption key in the on-chain key registry,
    so data owners can wrap data keys to it."""
    with session(ctx, unlock=True) as s:
        result = s.key_registry.register(s.home.encryption_public_key)
        version = s.key_registry.version_of(s.address)
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
