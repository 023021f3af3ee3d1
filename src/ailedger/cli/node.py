"""``ailedger node``: run this home's node service (the data gateway)."""

from __future__ import annotations

import typer

from ailedger.cli import _parsers as parse
from ailedger.cli._common import JSON_LINES_OPTION, narrator, session

app = typer.Typer(help="Run this home's node: the data gateway that serves your datasets.")


@app.command("start")
def start(
    ctx: typer.Context,
    port: int = parse.port_option(8700, "TCP port of the gateway."),
    host: str = typer.Option("127.0.0.1", help="Address to bind."),
    public_url: str = typer.Option(
        None, help="URL others reach this gateway at [default: http://HOST:PORT]."
    ),
    anchor_every: float = typer.Option(
        10.0,
        min=0.0,
        max=parse.MAX_WAIT_S,
        help="Seconds between on-chain anchors of the audit log (0: never).",
    ),
    as_json: bool = JSON_LINES_OPTION,
) -> None:
    """Serve your datasets to granted requesters (until Ctrl-C). Registers the gateway
    URL and your encryption key on chain if needed, and anchors the audit log."""
    from ailedger.node.service import run_node

    with session(ctx, unlock=True) as s:
        url = public_url or f"http://{host}:{port}"
        run_node(s, host, port, url, anchor_every, narrator(as_json))
