"""Who may ask this node for matches: the MME ``X-Auth-Token`` header.

MME API v1.1 authenticates a peer with a token in ``X-Auth-Token``. A node accepts two
kinds:

* **Issued tokens**: random secrets this node gave to a named peer
  (``ailedger health token issue NAME``), stored as SHA-256 digests only, so the token
  file never holds a usable secret. For MME peers that are not ailedger nodes.
* **Node tokens**: between ailedger nodes no secret needs to be exchanged. A node signs
  (EIP-191) ``ailedger-mme|<target node>|<expiry>`` with its account key; the target
  accepts it if the signer is a node registered on chain (NodeRegistry), the target is
  itself and the expiry is at most ``NODE_TOKEN_LIFETIME_S`` ahead. The format is
  ``ailedger1.<signer>.<expiry>.<signature hex>``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ailedger._durable import atomic_write_json

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

NODE_TOKEN_PREFIX = "ailedger1"
NODE_TOKEN_LIFETIME_S = 600


def _message(target: str, expiry: int) -> str:
    return f"ailedger-mme|{target.lower()}|{expiry}"


def node_token(account: LocalAccount, target: str, lifetime_s: int = 300) -> str:
    """A short-lived token proving to ``target`` that this node's account asks."""
    from eth_account.messages import encode_defunct

    expiry = int(time.time()) + lifetime_s
    signed = account.sign_message(encode_defunct(text=_message(target, expiry)))
    return f"{NODE_TOKEN_PREFIX}.{account.address}.{expiry}.{bytes(signed.signature).hex()}"


def node_token_signer(token: str, me: str, now: float | None = None) -> str | None:
    """The account that signed a valid node token addressed to ``me``, else None."""
    from eth_account import Account
    from eth_account.messages import encode_defunct

    parts = token.split(".")
    if len(parts) != 4 or parts[0] != NODE_TOKEN_PREFIX or not parts[2].isdigit():
        return None
    _, claimed, expiry_text, signature = parts
    expiry, now = int(expiry_text), time.time() if now is None else now
    if not now <= expiry <= now + NODE_TOKEN_LIFETIME_S:
        return None
    try:
        signer = Account.recover_message(
            encode_defunct(text=_message(me, expiry)), signature=bytes.fromhex(signature)
        )
    except Exception:  # eth-account raises assorted errors for malformed signatures
        return None
    return str(signer) if signer.lower() == claimed.lower() else None


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
