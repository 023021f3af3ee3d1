"""The ``ailedger`` entry point. Heavy libraries load inside commands, so ``--help``
answers quickly."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer

from ailedger.cli import (
    account,
    audit,
    chain,
    data,
    fl,
    health,
    job,
    market,
    model,
    node,
    patient,
    privacy,
    provider,
    token,
    wearables,
)
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
app.add_typer(patient.app, name="patient")
app.add_typer(job.app, name="job")
app.add_typer(provider.app, name="provider")
app.add_typer(privacy.app, name="privacy")
app.add_typer(model.app, name="model")
app.add_typer(model.decision_app, name="decision")
app.add_typer(market.app, name="market")
app.add_typer(fl.app, name="fl")
app.add_typer(wearables.app, name="wearables")
# The budget is a dataset's, so `data budget` shows it too (the same command).
data.app.command("budget")(privacy.budget)


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
    """Run the command in ``sys.argv``. Every refusal ends as one line on stderr, ``error:``
    and what to do, with exit status 2 for a misused command line and 1 for the rest."""
    # Typer 0.29 vendors click; its exceptions live there, not in the click package.
    import typer._click.exceptions as click

    from ailedger.errors import AiledgerError

    try:
        # standalone_mode=False: click's usage errors reach us, to be told in one line
        # like every other refusal instead of in a box.
        code = app(standalone_mode=False)
    except click.NoArgsIsHelpError as exc:
        assert exc.ctx is not None  # click sets it for this error
        console.print(exc.ctx.get_help())
        raise SystemExit(2) from None
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        _fail(exc.format_message() + hint, 2)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code or 1)
    except typer.Abort:
        _fail("aborted", 1)
    except AiledgerError as exc:
        _fail(str(exc), 1)
    except OSError as exc:  # a path given on the command line that cannot be used
        where = f": {exc.filename}" if exc.filename else ""
        _fail(f"{exc.strerror or exc}{where}", 1)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise SystemExit(130) from None
    if isinstance(code, int) and code:  # typer.Exit(code) from a command
        raise SystemExit(code)


def _fail(message: str, code: int) -> NoReturn:
    from rich.markup import escape

    # One line whatever the message holds: scripts read the first line of stderr.
    line = " ".join(message.split())
    err_console.print(f"[bold red]error:[/bold red] {escape(line)}", soft_wrap=True)
    raise SystemExit(code) from None
