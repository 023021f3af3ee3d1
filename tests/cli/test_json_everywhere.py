"""The README promises `--json` on every command, for scripts."""

from __future__ import annotations

from typing import Any

import typer

from ailedger.cli.app import app


def _commands(group: Any, prefix: str = "") -> dict[str, Any]:
    """Leaf commands by full name (Typer's vendored click groups have ``commands``)."""
    found: dict[str, Any] = {}
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            found |= _commands(command, f"{prefix}{name} ")
        else:
            found[f"{prefix}{name}"] = command
    return found


def test_every_command_takes_json() -> None:
    commands = _commands(typer.main.get_command(app))
    assert len(commands) > 30
    missing = sorted(
        name
        for name, command in commands.items()
        if not any("--json" in getattr(p, "opts", ()) for p in command.params)
    )
    assert missing == [], f"commands without --json: {missing}"
