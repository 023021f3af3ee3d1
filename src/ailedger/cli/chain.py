"""``ailedger chain``: status, serving the embedded chain, deploying to external chains."""

from __future__ import annotations

import typer

from ailedger.cli._common import JSON_OPTION, console, emit, session, settings_from

app = typer.Typer(
    help="Inspect the chain, serve the embedded chain over JSON-RPC, deploy contracts."
)


@app.command("status")
def status(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Show the chain's head block, recent block time, pending transactions and contracts."""
    from ailedger.chain.status import chain_status

    with session(ctx, unlock=False) as s:
        info = chain_status(s.chain, s.home.path)

    def render() -> None:
        console.print(f"chain      {info['description']} (id {info['chain_id']})")
        console.print(f"head       block {info['head']}  {info['head_hash']}")
        console.print(f"block time {info['block_time_s']} s (mean over the last blocks)")
        pending = info["pending"]
        console.print(f"pending    {'unknown' if pending is None else pending} transactions")
        for name, address in sorted(info["contracts"].items()):
            console.print(f"contract   {name:<12} {address}")
        if not info["contracts"]:
            console.print("contracts  not deployed: run `ailedger chain deploy`")

    emit(as_json, info, render)


@app.command("serve")
def serve(
    ctx: typer.Context,
    port: int = typer.Option(8545, help="TCP port for JSON-RPC."),
    host: str = typer.Option("127.0.0.1", help="Address to bind; keep loopback unless firewalled."),
) -> None:
    """Serve this home's embedded chain as standard Ethereum JSON-RPC (until Ctrl-C).

    Other ailedger homes (AILEDGER_CHAIN=http://127.0.0.1:PORT), web3.py, ethers or
    cast can then use it. Commands run against this home meanwhile go through it too.
    """
    from ailedger.chain.connection import open_embedded
    from ailedger.chain.embedded.server import serve as serve_chain
    from ailedger.keys.home import NodeHome

    settings = settings_from(ctx)
    home = NodeHome.open(settings.home)
    connection = open_embedded(home.chain_dir, settings.cache_dir)
    assert connection.embedded is not None
    console.print(
        f"serving the embedded chain {connection.chain_id} of {home.path} "
        f"at http://{host}:{port} (Ctrl-C stops)"
    )
    serve_chain(connection.embedded, host, port)


@app.command("deploy")
def deploy(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Deploy ailedger's contracts from this home's account and write the deployment
    manifest into the home (deployments/CHAINID-GENESIS.json). Other homes on the same
    chain need a copy of that file."""
    from ailedger.chain.deploy import deploy_contracts, manifest_path, save_manifest

    with session(ctx, unlock=True) as s:
        deployment = deploy_contracts(s.chain.web3, s.require_account(), s.settings.cache_dir)
        path = manifest_path(s.home.path, deployment.chain_id, deployment.genesis_hash)
        save_manifest(path, deployment)
    data = {"manifest": str(path), **deployment.__dict__}

    def render() -> None:
        for name, address in sorted(deployment.contracts.items()):
            console.print(f"deployed {name:<12} at {address}")
        console.print(f"manifest written to {path}")

    emit(as_json, data, render)
