"""Signed HTTP requests between a provider agent and a requester's node.

A provider fetches a job's spec and bundle from the requester's node and pushes logs and
the encrypted output back. Neither side shares a secret with the other: each request
carries an EIP-191 signature by the provider's account over

    ailedger-job|<target node address>|<METHOD>|<path>|<unix time>|<sha256 of the body>

in the header ``X-Ailedger-Signature: ailedger-req1.<signer>.<unix time>.<signature hex>``.
The node recovers the signer, then decides on chain whether that account may do this
(registered provider, assigned to the job). Binding the target, method, path and body
hash means a captured header cannot be replayed against another node, job, route or body;
the time window bounds replays of the *same* request, which the routes make harmless
(fetches are reads, uploads are idempotent per provider and sequence number).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ailedger.errors import AiledgerError

if TYPE_CHECKING:
    import httpx
    from eth_account.signers.local import LocalAccount

SIGNATURE_HEADER = "X-Ailedger-Signature"
PREFIX = "ailedger-req1"
WINDOW_S = 120


def _message(target: str, method: str, path: str, stamp: int, body_sha256: bytes) -> str:
    digest = body_sha256.hex()
    return f"ailedger-job|{target.lower()}|{method.upper()}|{path}|{stamp}|{digest}"


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
    from eth_account.messages import encode_defunct

    stamp = int(time.time())
    digest = hashlib.sha256(body).digest() if body_sha256 is None else body_sha256
    signed = account.sign_message(
        encode_defunct(text=_message(target, method, path, stamp, digest))
    )
    return f"{PREFIX}.{account.address}.{stamp}.{bytes(signed.signature).hex()}"


class SignedRequestError(AiledgerError):
    """The node did not answer a signed request with 200; the message says what it said."""


def send_signed(
    account: LocalAccount,
    base_url: str,
    target: str,
    method: str,
    path: str,
    body: bytes | Path = b"",
    timeout: float = 60,
) -> httpx.Response:
    """Send a signed request to node ``target`` at ``base_url``. A :class:`Path` body is
    hashed, then streamed from the file, so a large output is never held in memory."""
    import httpx

    from ailedger._http import shared_client

    if isinstance(body, Path):
        digest = hashlib.sha256()
        with body.open("rb") as data:
            while chunk := data.read(1 << 20):
                digest.update(chunk)
        header = sign_request(account, target, method, path, body_sha256=digest.digest())
    else:
        header = sign_request(account, target, method, path, body)
    try:
        with contextlib.ExitStack() as files:
            content = files.enter_context(body.open("rb")) if isinstance(body, Path) else body
            response = shared_client().request(
                method,
                base_url + path,
                content=content or None,
                headers={SIGNATURE_HEADER: header},
                timeout=timeout,
            )
    except httpx.HTTPError as exc:
        raise SignedRequestError(f"node {base_url} unreachable: {exc}") from exc
    if response.status_code != 200:
        raise SignedRequestError(
            f"{method} {path}: HTTP {response.status_code} {response.text[:200]}"
        )
    return response


def request_signer(
    header: str | None,
    target: str,
    method: str,
    path: str,
    body_sha256: bytes = hashlib.sha256(b"").digest(),
    now: float | None = None,
) -> str | None:
    """The account that signed this exact request to ``target``, or None if the header is
    missing, malformed, stale, from the future, or signed over anything else. The body is
    given by its hash, so a large upload can be hashed while it streams to disk."""
    from eth_account import Account
    from eth_account.messages import encode_defunct

    parts = (header or "").split(".")
    # ASCII digits only, and few: str.isdigit() also accepts "²" and int() refuses it or
    # a 5,000-digit stamp with ValueError, which would turn a bad header into a 500.
    if len(parts) != 4 or parts[0] != PREFIX or not re.fullmatch(r"[0-9]{1,12}", parts[2]):
        return None
    _, claimed, stamp_text, signature = parts
    stamp, now = int(stamp_text), time.time() if now is None else now
    if abs(now - stamp) > WINDOW_S:
        return None
    try:
        signer = Account.recover_message(
            encode_defunct(text=_message(target, method, path, stamp, body_sha256)),
            signature=bytes.fromhex(signature),
        )
    except Exception:  # eth-account raises assorted errors for malformed signatures
        return None
    return str(signer) if signer.lower() == claimed.lower() else None
