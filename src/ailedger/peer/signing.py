"""Signed messages between nodes: one EIP-191 scheme, two uses.

No secret is shared between ailedger nodes. A caller signs (EIP-191 ``personal_sign``)
a message naming the node it addresses with its account key, and the callee recovers the
signer, then decides on chain what that account may do. Both uses have the same shape,
``<prefix>.<signer>.<unix time>.<signature hex>``, and are produced and checked by the
same code; only the signed message and the time rule differ:

* **Signed requests** (``X-Ailedger-Signature``, prefix ``ailedger-req1``) over

      ailedger-job|<target node address>|<METHOD>|<path>|<unix time>|<sha256 of the body>

  accepted within ``WINDOW_S`` of the signing time either way. Binding the target,
  method, path and body hash means a captured header cannot be replayed against another
  node, route, job or body; the window bounds replays of the *same* request, which the
  routes make harmless (fetches are reads; uploads and own entries are idempotent or
  logged as sent).
* **Node tokens** (MME ``X-Auth-Token``, prefix ``ailedger1``) over
  ``ailedger-mme|<target node>|<expiry>``, accepted until the expiry if that is at most
  ``NODE_TOKEN_LIFETIME_S`` ahead. MME API v1.1 authenticates a peer by a token, not a
  signed request, so the token covers no body; the format is kept for ailedger nodes
  already talking to each other.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

PREFIX = "ailedger-req1"
WINDOW_S = 120
NODE_TOKEN_PREFIX = "ailedger1"
NODE_TOKEN_LIFETIME_S = 600
EMPTY_BODY_SHA256 = hashlib.sha256(b"").digest()


def _request_message(target: str, method: str, path: str, stamp: int, digest: bytes) -> str:
    return f"ailedger-job|{target.lower()}|{method.upper()}|{path}|{stamp}|{digest.hex()}"


def _token_message(target: str, expiry: int) -> str:
    return f"ailedger-mme|{target.lower()}|{expiry}"


def _sign(account: LocalAccount, prefix: str, stamp: int, message: str) -> str:
    from eth_account.messages import encode_defunct

    signed = account.sign_message(encode_defunct(text=message))
    return f"{prefix}.{account.address}.{stamp}.{bytes(signed.signature).hex()}"


def _signer(
    value: str | None,
    prefix: str,
    message_at: Callable[[int], str],
    stamp_ok: Callable[[int], bool],
) -> str | None:
    """The account that signed ``message_at(stamp)`` in ``value``, or None if the value is
    missing, malformed, refused by ``stamp_ok`` or signed over anything else."""
    from eth_account import Account
    from eth_account.messages import encode_defunct

    parts = (value or "").split(".")
    # ASCII digits only, and few: str.isdigit() also accepts "²" and int() refuses it or
    # a 5,000-digit stamp with ValueError, which would turn a bad header into a 500.
    if len(parts) != 4 or parts[0] != prefix or not re.fullmatch(r"[0-9]{1,12}", parts[2]):
        return None
    _, claimed, stamp_text, signature = parts
    stamp = int(stamp_text)
    if not stamp_ok(stamp):
        return None
    try:
        signer = Account.recover_message(
            encode_defunct(text=message_at(stamp)), signature=bytes.fromhex(signature)
        )
    except Exception:  # eth-account raises assorted errors for malformed signatures
        return None
    return str(signer) if signer.lower() == claimed.lower() else None


def sign_request(
    account: LocalAccount,
    target: str,
    method: str,
    path: str,
    body: bytes = b"",
    body_sha256: bytes | None = None,
) -> str:
    """The header value proving ``account`` sends this request to node ``target``; give
    ``body_sha256`` instead of ``body`` for a body streamed from a file."""
    stamp = int(time.time())
    digest = hashlib.sha256(body).digest() if body_sha256 is None else body_sha256
    return _sign(account, PREFIX, stamp, _request_message(target, method, path, stamp, digest))


def request_signer(
    header: str | None,
    target: str,
    method: str,
    path: str,
    body_sha256: bytes = EMPTY_BODY_SHA256,
    now: float | None = None,
) -> str | None:
    """The account that signed this exact request to ``target``, or None if the header is
    missing, malformed, stale, from the future, or signed over anything else. The body is
    given by its hash, so a large upload can be hashed while it streams to disk."""
    clock = time.time() if now is None else now
    return _signer(
        header,
        PREFIX,
        lambda stamp: _request_message(target, method, path, stamp, body_sha256),
        lambda stamp: abs(clock - stamp) <= WINDOW_S,
    )


def node_token(account: LocalAccount, target: str, lifetime_s: int = 300) -> str:
    """A short-lived MME token proving to node ``target`` that this node's account asks."""
    expiry = int(time.time()) + lifetime_s
    return _sign(account, NODE_TOKEN_PREFIX, expiry, _token_message(target, expiry))


def node_token_signer(token: str | None, me: str, now: float | None = None) -> str | None:
    """The account that signed a valid node token addressed to ``me``, else None."""
    clock = time.time() if now is None else now
    return _signer(
        token,
        NODE_TOKEN_PREFIX,
        lambda expiry: _token_message(me, expiry),
        lambda expiry: clock <= expiry <= clock + NODE_TOKEN_LIFETIME_S,
    )
