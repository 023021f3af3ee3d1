"""Matchmaker Exchange peers outside the chain: MME nodes this node asks by URL and token.

The on-chain NodeRegistry names the ailedger nodes; an MME node that is not one (a
hospital's patientMatcher, a national matchmaker) is added here by its operator with the
``X-Auth-Token`` that node issued, the path it serves ``/match`` on (``/match`` unless said)
and the MME version it speaks (``1.0`` for most nodes; it decides the ``Content-Type`` and
``Accept`` this node sends). The peers live in the home's ``health/mme-peers.json``, created
0600 like the home's other secrets at rest (the surrogate key, issued-token digests): the
token is usable as it stands, so the file is never readable by others, a wider file is
narrowed when it is read, and no listing, log entry or error message ever shows a token.

A URL is ``https``, or ``http`` only to this machine (a token sent in clear over a network
would be anyone's); it carries no credentials, query or fragment.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ailedger._durable import PRIVATE_FILE_MODE, atomic_write_json
from ailedger.errors import ConfigError, NotFoundError
from ailedger.health.mme_schema import content_type, speaks

DEFAULT_PATH = "/match"
DEFAULT_VERSION = (1, 0)
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class OutsidePeer:
    """One MME node outside the chain; ``token`` never appears in its ``repr``."""

    name: str
    url: str
    token: str = field(repr=False)
    path: str = DEFAULT_PATH
    version: tuple[int, int] = DEFAULT_VERSION

    def __post_init__(self) -> None:
        _check_name(self.name)
        _check_url(self.url)
        if not self.path.startswith("/") or len(self.path) > 200 or not self.path.isprintable():
            raise ConfigError(f"a peer's path starts with / (e.g. /match), not {self.path[:40]!r}")
        if any(c in self.path for c in "?# "):
            raise ConfigError("a peer's path has no query, fragment or space")
        if not speaks(self.version):
            raise ConfigError(
                f"MME v{self.version[0]}.{self.version[1]} is not spoken here: choose 1.0 or 1.1"
            )
        token = self.token
        if not token or len(token) > 1000 or not (token.isascii() and token.isprintable()):
            raise ConfigError(
                "give the X-Auth-Token the peer issued (printable ASCII, at most 1000 characters)"
            )

    @property
    def match_url(self) -> str:
        return self.url.rstrip("/") + self.path

    @property
    def media_type(self) -> str:
        """What this node sends as ``Content-Type`` and ``Accept`` to the peer."""
        return content_type(self.version)

    def shown(self) -> dict[str, str]:
        """What a listing shows of the peer: everything but the token."""
        version = f"{self.version[0]}.{self.version[1]}"
        return {"name": self.name, "url": self.url, "path": self.path, "version": version}


def parse_version(text: str) -> tuple[int, int]:
    """``"1.0"`` -> ``(1, 0)``; anything else is a :class:`ConfigError`."""
    major, dot, minor = text.strip().partition(".")
    if not (dot and major.isdigit() and minor.isdigit() and len(text) <= 9):
        raise ConfigError(f"an MME version reads like 1.0 or 1.1, not {text[:20]!r}")
    return int(major), int(minor)


def _check_name(name: str) -> None:
    if not name.strip() or len(name) > 100 or not name.isprintable():
        raise ConfigError(f"name the peer in 1 to 100 printable characters, not {name[:40]!r}")
    if re.fullmatch(r"0x[0-9a-fA-F]{40}", name):
        raise ConfigError("an account address names an on-chain node: call the peer otherwise")


def _check_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port
    except ValueError:
        raise ConfigError(f"{url[:80]!r} is not a URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigError(f"a peer's URL is https://host[:port][/prefix], not {url[:80]!r}")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise ConfigError("a peer's URL carries no credentials, query or fragment")
    if parts.scheme == "http" and host not in _LOOPBACK:
        raise ConfigError(
            f"{host} is reached over plain http, which would send the token in clear: use https"
        )


class OutsidePeers:
    """The outside MME peers of one home, in a private JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> dict[str, dict[str, Any]]:
        if not self.path.exists():
            return {}
        if stat.S_IMODE(self.path.stat().st_mode) & ~PRIVATE_FILE_MODE:
            os.chmod(self.path, PRIVATE_FILE_MODE)  # tokens: readable by this user only
        loaded: dict[str, dict[str, Any]] = json.loads(self.path.read_text())
        return loaded

    def all(self) -> list[OutsidePeer]:
        return [
            OutsidePeer(
                name,
                raw["url"],
                raw["token"],
                raw.get("path", DEFAULT_PATH),
                parse_version(raw.get("version", "1.0")),
            )
            for name, raw in sorted(self._load().items())
        ]

    def named(self, names: list[str]) -> list[OutsidePeer]:
        """The peers called ``names``; an unknown name is a :class:`NotFoundError`."""
        peers = {p.name: p for p in self.all()}
        missing = [n for n in names if n not in peers]
        if missing:
            raise NotFoundError(
                f"no outside MME peer named {missing[0]!r}; `ailedger health peer list` shows them"
            )
        return [peers[n] for n in names]

    def add(self, peer: OutsidePeer) -> bool:
        """Add or replace ``peer``; True if it replaced one of the same name."""
        peers = self._load()
        replaced = peer.name in peers
        peers[peer.name] = {**peer.shown(), "token": peer.token}
        atomic_write_json(self.path, peers, indent=1)
        return replaced

    def remove(self, name: str) -> bool:
        """Forget the peer ``name``; False if there was none."""
        peers = self._load()
        if peers.pop(name, None) is None:
            return False
        atomic_write_json(self.path, peers, indent=1)
        return True
