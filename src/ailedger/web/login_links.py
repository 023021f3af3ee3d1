"""One-time sign-in links: ``ailedger node login-link`` writes one, the node consumes it.

The CLI and the node are two processes sharing only the home, so a link is a file
there: ``web-login/<sha256 of the code>.json`` (0600, written durably) holding when it
expires and whether it signs in read-only. The code itself is never stored, and travels
in the link's fragment (``/login#code=...``), which browsers do not send to servers:
it reaches the node only in the body of ``POST /api/v1/auth/link``. Consuming a link
deletes its file: of two requests with the same code, only the one whose ``unlink``
succeeds signs in.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import time
from pathlib import Path
from typing import Final

from ailedger._durable import atomic_write_json
from ailedger.errors import UnauthenticatedError

LINK_LIFETIME_S: Final = 5 * 60
ADDRESS_FILE: Final = "serving.json"
_CODE: Final = re.compile(r"[A-Za-z0-9_-]{43}")  # token_urlsafe(32)


def links_dir(home: Path) -> Path:
    from ailedger.home_layout import HomeLayout

    return HomeLayout(home).web_login


def create_link(home: Path, *, read_only: bool, now: float | None = None) -> str:
    """A new one-time code for ``home``'s node, valid for five minutes."""
    code = secrets.token_urlsafe(32)
    folder = links_dir(home)
    folder.mkdir(mode=0o700, exist_ok=True)
    expires = (time.time() if now is None else now) + LINK_LIFETIME_S
    atomic_write_json(_path(folder, code), {"expires": expires, "read_only": read_only})
    return code


def consume_link(home: Path, code: str, *, now: float | None = None) -> bool:
    """Use up ``code``; whether it signs in read-only. A code that is unknown, used or
    expired raises :class:`UnauthenticatedError` (and an expired one is gone too)."""
    unusable = UnauthenticatedError(
        "this sign-in link is unknown, already used or expired: run "
        "`ailedger node login-link` for a new one"
    )
    if not _CODE.fullmatch(code):
        raise unusable
    path = _path(links_dir(home), code)
    try:
        document = json.loads(path.read_bytes())
        os.unlink(path)  # the one request whose unlink succeeds owns the link
    except (OSError, ValueError):
        raise unusable from None
    if not isinstance(document, dict) or not isinstance(document.get("expires"), int | float):
        raise unusable
    if document["expires"] <= (time.time() if now is None else now):
        raise unusable
    return document.get("read_only") is True


def _path(folder: Path, code: str) -> Path:
    return folder / f"{hashlib.sha256(code.encode()).hexdigest()}.json"


def record_address(home: Path, url: str) -> None:
    """Note where the node's web app is served, for ``ailedger node login-link``."""
    folder = links_dir(home)
    folder.mkdir(mode=0o700, exist_ok=True)
    atomic_write_json(folder / ADDRESS_FILE, {"url": url})


def recorded_address(home: Path) -> str | None:
    """Where the node last served its web app (None if it never has)."""
    try:
        document = json.loads((links_dir(home) / ADDRESS_FILE).read_bytes())
    except (OSError, ValueError):
        return None
    url = document.get("url") if isinstance(document, dict) else None
    return url if isinstance(url, str) else None
