"""``ailedger node``: run this home's node service (the data gateway)."""

from __future__ import annotations

import typer

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
from ailedger.errors import HomeError

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
    web: bool = typer.Option(
        True, "--web/--no-web", help="Serve the web app beside the gateway (same port)."
    ),
    auditors: list[str] = typer.Option(
        [],
        "--auditor",
        help="An address that may sign in to the web app read-only (repeatable).",
    ),
    as_json: bool = JSON_LINES_OPTION,
) -> None:
    """Serve your datasets to granted requesters, and the web app (until Ctrl-C).
    Registers the gateway URL and your encryption key on chain if needed, and anchors
    the audit log."""
    from ailedger.node.service import run_node

    checked = [parse.address(a) for a in auditors]
    with session(ctx, unlock=True) as s:
        url = public_url or f"http://{host}:{port}"
        run_node(s, host, port, url, anchor_every, narrator(as_json), web=web, auditors=checked)


@app.command("login-link")
def login_link(
    ctx: typer.Context,
    read_only: bool = typer.Option(
        False, "--read-only", help="Sign in as an auditor: see everything, change nothing."
    ),
    port: int = typer.Option(
        None,
        min=1,
        max=65535,
        help="Port of the node's web app [default: where it last served, else 8700].",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Print a one-time link that signs a browser in to this home's web app (valid
    once, for five minutes; the code is in the link's #fragment, never sent in a URL)."""
    from ailedger.web.login_links import LINK_LIFETIME_S, create_link, recorded_address

    home = settings_from(ctx).home
    if not (home / "config.toml").exists():
        raise HomeError(f"no node home at {home}: run `ailedger init` first")
    recorded = recorded_address(home) or "http://127.0.0.1:8700"
    base = f"http://127.0.0.1:{port}" if port else recorded
    code = create_link(home, read_only=read_only)
    link = f"{base}/login#code={code}"
    role = "auditor (read-only)" if read_only else "operator"
    emit(
        as_json,
        {"url": link, "role": role, "expires_in_s": LINK_LIFETIME_S},
        lambda: console.print(
            f"{link}\nopen it in a browser on this machine within "
            f"{LINK_LIFETIME_S // 60} minutes; it signs in once, as {role}",
            soft_wrap=True,
        ),
    )
