"""The ``ailedger`` entry point. Heavy libraries load inside commands, so ``--help``
answers quickly."""

from __future__ import annotations

from pathlib import Path

import typer

from ailedger.cli import account, audit, chain, data, health, job, node, provider, token
from ailedger.cli._common import (
    JSON_LINES_OPTION,
    JSON_OPTION,
    GlobalOptions,
    console,
    emit,
    err_console,
    narrator,
    settings_from,
)

app = typer.Typer(
    help="ailedger: a ledger for AI. Share data under your control, pay for data and "
    "compute with tokens, and trace every AI decision to its sources.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(account.app, name="account")
app.add_typer(token.app, name="token")
app.add_typer(chain.app, name="chain")
app.add_typer(data.app, name="data")
app.add_typer(node.app, name="node")
app.add_typer(audit.app, name="audit")
app.add_typer(health.app, name="health")
app.add_typer(job.app, name="job")
app.add_typer(provider.app, name="provider")


@app.callback()
def root(
    ctx: typer.Context,
    home: Path = typer.Option(
        None,
        "--home",
        envvar="AILEDGER_HOME",
        help="Node home with keys and config [default: ~/.ailedger].",
    ),
    chain_: str = typer.Option(
        None,
        "--chain",
        envvar="AILEDGER_CHAIN",
        help="'embedded' or a JSON-RPC URL; overrides the home's setting.",
    ),
) -> None:
    ctx.obj = GlobalOptions(home=home, chain=chain_)


@app.command("init")
def init(
    ctx: typer.Context,
    chain_url: str = typer.Option(
        None, "--chain-url", help="Record a JSON-RPC URL as this home's chain [default: embedded]."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a node home: an encrypted Ethereum account, an X25519 encryption key and
    a config file. The passphrase comes from AILEDGER_PASSPHRASE or a prompt."""
    from ailedger.keys.home import NodeHome
    from ailedger.keys.passphrase import resolve_passphrase

    settings = settings_from(ctx)
    passphrase = resolve_passphrase(settings.passphrase, confirm=True)
    home = NodeHome.init(settings.home, passphrase, chain=chain_url or settings.chain or "embedded")
    data = {
        "home": str(home.path),
        "address": home.address,
        "encryption_public_key": home.encryption_public_key.hex(),
        "chain": home.config.chain,
    }

    def render() -> None:
        console.print(f"created ailedger home {home.path}")
        console.print(f"  account         {home.address}")
        console.print(f"  encryption key  {home.encryption_public_key.hex()}")
        console.print(f"  chain           {home.config.chain}")
        console.print("next: `ailedger token faucet` (dev chains) or `ailedger account show`")

    emit(as_json, data, render)


@app.command("demo")
def demo(
    directory: Path = typer.Option(
        None, "--dir", help="Where the demo's homes live [default: a new temporary directory]."
    ),
    as_json: bool = JSON_LINES_OPTION,
) -> None:
    """Run the end-to-end demo on a fresh embedded chain, telling what happens."""
    from ailedger.demo.story import run_demo

    run_demo(directory, narrator(as_json))


def main() -> None:
    from ailedger.errors import AiledgerError

    try:
        app()
    except AiledgerError as exc:
        err_console.print(f"[bold red]error:[/bold red] {exc}")
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise SystemExit(130) from None
