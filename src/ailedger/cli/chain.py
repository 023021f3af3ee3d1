"""``ailedger chain``: status, serving the embedded chain, deploying to external chains."""

from __future__ import annotations

import typing

import typer

from ailedger.chain.market_windows import BID_BLOCKS, DISPUTE_BLOCKS, MAX_WINDOW_S, REVEAL_BLOCKS
from ailedger.chain.market_windows import DEV_CHAIN_WINDOWS as DEV
from ailedger.cli import _parsers as parse
from ailedger.cli._common import (
    JSON_LINES_OPTION,
    JSON_OPTION,
    console,
    emit,
    narrator,
    session,
    settings_from,
)

app = typer.Typer(
    help="Inspect the chain, serve the embedded chain over JSON-RPC, deploy contracts."
)


@app.command("status")
def status(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Show the chain's head block, recent block time, pending transactions, contracts and
    the compute market's windows."""
    from ailedger.chain.status import chain_status

    with session(ctx, unlock=False) as s:
        info = chain_status(s.chain, s.home.path)
        deployed = "ComputeMarket" in info["contracts"]
        windows = s.compute_market.windows() if deployed else None
        info["market_windows"] = windows.__dict__ if windows else None

    def render() -> None:
        console.print(f"chain      {info['description']} (id {info['chain_id']})")
        console.print(f"head       block {info['head']}  {info['head_hash']}")
        console.print(f"block time {info['block_time_s']} s (mean over the last blocks)")
        pending = info["pending"]
        console.print(f"pending    {'unknown' if pending is None else pending} transactions")
        for name, address in sorted(info["contracts"].items()):
            console.print(f"contract   {name:<12} {address}")
        if info["market_windows"]:
            w = info["market_windows"]
            console.print(
                f"market     bid window {w['bid_s']} s, reveal {w['reveal_s']} s, "
                f"dispute {w['dispute_s']} s"
            )
        if not info["contracts"]:
            console.print("contracts  not deployed: run `ailedger chain deploy`")

    emit(as_json, info, render)


@app.command("serve")
def serve(
    ctx: typer.Context,
    port: int = parse.port_option(8545, "TCP port for JSON-RPC."),
    host: str = typer.Option("127.0.0.1", help="Address to bind; keep loopback unless firewalled."),
    cors_origin: list[str] | None = typer.Option(
        None,
        "--cors-origin",
        metavar="ORIGIN",
        help="A web origin allowed to call the node from a browser, e.g. "
        "https://app.example or http://localhost:* (any port); repeatable; * allows any. "
        "Default: pages served from this machine (localhost, 127.0.0.1, [::1]).",
    ),
    as_json: bool = JSON_LINES_OPTION,
) -> None:
    """Serve this home's embedded chain as standard Ethereum JSON-RPC (until Ctrl-C):
    HTTP and WebSocket (eth_subscribe) on the same port.

    Other ailedger homes (AILEDGER_CHAIN=http://127.0.0.1:PORT), web3.py, ethers, viem
    or cast can then use it. Commands run against this home meanwhile go through it too.
    """
    from ailedger.chain.connection import open_embedded
    from ailedger.chain.embedded._cors import DEFAULT_ORIGINS, OriginPolicy
    from ailedger.chain.embedded.server import serve as serve_chain
    from ailedger.keys.home import NodeHome

    origins = OriginPolicy(cors_origin or DEFAULT_ORIGINS)  # refuses a bad one up front
    settings = settings_from(ctx)
    home = NodeHome.open(settings.home)
    connection = open_embedded(home.chain_dir, settings.cache_dir)
    assert connection.embedded is not None
    narrator(as_json)(
        f"serving the embedded chain {connection.chain_id} of {home.path} "
        f"at http://{host}:{port} and ws://{host}:{port} (Ctrl-C stops)"
    )
    serve_chain(connection.embedded, host, port, origins.patterns)


def _window_option(name: str, dev_s: int, blocks: int) -> typing.Any:
    return typer.Option(
        None,
        f"--{name}-window",
        min=1,
        max=MAX_WINDOW_S,
        metavar="S",
        help=f"Compute market {name} window in seconds (default: the larger of {dev_s} s "
        f"and {blocks} blocks).",
    )


@app.command("deploy")
def deploy(
    ctx: typer.Context,
    bid_window: int | None = _window_option("bid", DEV.bid_s, BID_BLOCKS),
    reveal_window: int | None = _window_option("reveal", DEV.reveal_s, REVEAL_BLOCKS),
    dispute_window: int | None = _window_option("dispute", DEV.dispute_s, DISPUTE_BLOCKS),
    as_json: bool = JSON_OPTION,
) -> None:
    """Deploy ailedger's contracts from this home's account and write the deployment
    manifest into the home (deployments/CHAINID-GENESIS.json). Other homes on the same
    chain need a copy of that file.

    The compute market's windows are fixed at deploy. Those not given scale
    with the network: the deploy measures the block interval on its own
    transactions, sent back to back, and each window spans at least the
    blocks named below. Everyone reads them from the contract (chain status)."""
    from ailedger.chain.deploy import deploy_contracts, manifest_path, save_manifest
    from ailedger.chain.market_windows import WindowChoice

    choice = WindowChoice(bid_window, reveal_window, dispute_window)
    with session(ctx, unlock=True) as s:
        deployment = deploy_contracts(
            s.chain.web3, s.require_account(), s.settings.cache_dir, choice
        )
        path = manifest_path(s.home.path, deployment.chain_id, deployment.genesis_hash)
        save_manifest(path, deployment)
        windows = s.compute_market.windows()
    data = {"manifest": str(path), **deployment.__dict__, "market_windows": windows.__dict__}

    def render() -> None:
        for name, address in sorted(deployment.contracts.items()):
            console.print(f"deployed {name:<12} at {address}")
        console.print(
            f"compute market windows: bid {windows.bid_s} s, reveal {windows.reveal_s} s, "
            f"dispute {windows.dispute_s} s"
        )
        console.print(f"manifest written to {path}")

    emit(as_json, data, render)
