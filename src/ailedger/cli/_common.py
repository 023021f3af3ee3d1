"""What every command shares: settings from flags, the error boundary, output."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console

if TYPE_CHECKING:
    from ailedger.session import Session
    from ailedger.settings import Settings

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)
T = TypeVar("T")

JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON instead of text.")


@dataclass
class GlobalOptions:
    home: Path | None
    chain: str | None


def settings_from(ctx: typer.Context) -> Settings:
    from ailedger.settings import load_settings

    options: GlobalOptions = ctx.obj
    return load_settings(home=options.home, chain=options.chain)


@contextmanager
def session(ctx: typer.Context, *, unlock: bool) -> Iterator[Session]:
    from ailedger.session import open_session

    with open_session(settings_from(ctx), unlock=unlock) as opened:
        yield opened


def emit(as_json: bool, data: dict[str, Any], render: Callable[[], None]) -> None:
    """Print ``data`` as JSON, or call ``render`` for people."""
    if as_json:
        console.print_json(json.dumps(data))
    else:
        render()


def narrator(as_json: bool) -> Callable[[str], None]:
    """How a long-running command tells what happens: rich text for people, or one JSON
    object per line (``{"say": text}``, markup stripped) for programs following along."""
    if as_json:
        from rich.text import Text

        return lambda line: print(json.dumps({"say": Text.from_markup(line).plain}), flush=True)
    # soft_wrap: long lines (paths, commands to copy) stay whole for copy and paste.
    return lambda line: console.print(line, soft_wrap=True)


JSON_LINES_OPTION = typer.Option(
    False, "--json", help="Print each event as a JSON object on its own line."
)


def tx_line(what: str, tx_hash: str, block: int) -> None:
    console.print(f"{what}\n  tx {tx_hash} in block {block}")
