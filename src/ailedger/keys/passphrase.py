"""Where the home's passphrase comes from: ``AILEDGER_PASSPHRASE``, else a terminal prompt.

Scripts and services set ``AILEDGER_PASSPHRASE``; people at a terminal are asked with
``getpass`` (no echo). Without either there is no safe way to get a passphrase, so the
caller gets an error that says which variable to set rather than a hang on a closed stdin.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable

from ailedger.errors import KeyError_

_PROMPT = "Passphrase for the ailedger home: "
_CONFIRM_PROMPT = "Repeat the passphrase: "


def resolve_passphrase(
    settings_passphrase: str | None,
    *,
    confirm: bool,
    prompt: Callable[[str], str] | None = None,
    interactive: bool | None = None,
) -> str:
    """Return the passphrase to use.

    ``settings_passphrase`` is the value of ``AILEDGER_PASSPHRASE`` (``None`` when unset)
    and wins when given. Otherwise the user is prompted when stdin is a terminal, twice
    when ``confirm`` is true (choosing a new passphrase, where a typo would lock the keys
    away). ``prompt`` and ``interactive`` replace ``getpass`` and the terminal check in
    tests. An empty passphrase is refused: it would leave the keys unprotected.
    """
    if settings_passphrase is not None:
        if not settings_passphrase:
            raise KeyError_("AILEDGER_PASSPHRASE is set but empty; set it to the passphrase")
        return settings_passphrase
    if interactive is None:
        interactive = sys.stdin is not None and sys.stdin.isatty()
    if not interactive:
        raise KeyError_(
            "a passphrase is needed and no terminal is attached to ask for it; "
            "set AILEDGER_PASSPHRASE"
        )
    ask = getpass.getpass if prompt is None else prompt
    passphrase = _ask(ask, _PROMPT)
    if not passphrase:
        raise KeyError_("the passphrase is empty; enter a non-empty passphrase")
    if confirm and _ask(ask, _CONFIRM_PROMPT) != passphrase:
        raise KeyError_("the two passphrases differ; run the command again")
    return passphrase


def _ask(ask: Callable[[str], str], text: str) -> str:
    try:
        return ask(text)
    except EOFError:
        raise KeyError_(
            "the passphrase prompt was closed before an answer; set AILEDGER_PASSPHRASE"
        ) from None
