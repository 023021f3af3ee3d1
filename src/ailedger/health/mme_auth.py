"""Who may ask this node for matches: the MME ``X-Auth-Token`` header.

MME API v1.1 authenticates a peer with a token in ``X-Auth-Token``. A node accepts two
kinds:

* **Issued tokens**: random secrets this node gave to a named peer
  (``ailedger health token issue NAME``), stored as SHA-256 digests only, so the token
  file never holds a usable secret. For MME peers that are not ailedger nodes.
* **Node tokens**: between ailedger nodes no secret needs to be exchanged. A node signs
  a token addressed to the target with its account key (:mod:`ailedger.peer.signing`);
  the target accepts it if the signer is registered on chain (NodeRegistry or
  KeyRegistry), the token is addressed to it and has not expired.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from pathlib import Path

from ailedger._durable import atomic_write_json
from ailedger.peer.signing import NODE_TOKEN_PREFIX, node_token_signer


class IssuedTokens:
    """Tokens this node issued to named MME peers, kept as digests in a JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> dict[str, str]:
        if not self.path.exists():
            return {}
        loaded: dict[str, str] = json.loads(self.path.read_text())
        return loaded

    def issue(self, peer: str) -> str:
        token = secrets.token_urlsafe(32)
        digests = self._load()
        digests[hashlib.sha256(token.encode()).hexdigest()] = peer
        atomic_write_json(self.path, digests, indent=1)
        return token

    def peer_of(self, token: str) -> str | None:
        return self._load().get(hashlib.sha256(token.encode()).hexdigest())


def authenticator(
    issued: IssuedTokens, me: str, is_registered_node: Callable[[str], bool]
) -> Callable[[str | None], str | None]:
    """A function from an X-Auth-Token value to the peer's name, or None (401)."""

    def authenticate(token: str | None) -> str | None:
        if not token:
            return None
        if token.startswith(NODE_TOKEN_PREFIX + "."):
            signer = node_token_signer(token, me)
            return signer if signer is not None and is_registered_node(signer) else None
        return issued.peer_of(token)

    return authenticate
