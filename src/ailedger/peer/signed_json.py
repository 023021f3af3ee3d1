"""A signed JSON request between nodes, both ends: the caller signs and posts a body and
reads a bounded answer; the route checks the size, the signature and the JSON.

What a desk that answers another node's account (the privacy desk, the prediction desk)
shares, so each reads its requests, and each caller its answers, the same way.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from ailedger.errors import (
    MalformedRequestError,
    PayloadTooLargeError,
    PeerUnreachableError,
    UnauthenticatedError,
)
from ailedger.peer import wire
from ailedger.untrusted_json import parse_untrusted

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from starlette.requests import Request


async def read_signed_json(request: Request, me: str, max_body: int) -> tuple[str, Any]:
    """(signer, parsed body) of a request signed for node ``me``; refuses a body over
    ``max_body`` bytes, an unsigned or wrongly signed request, and a body that is not JSON."""
    from ailedger.peer.signing import request_signer

    raw = await request.body()
    if len(raw) > max_body:
        raise PayloadTooLargeError(f"request body too large (over {max_body} bytes)")
    signer = request_signer(
        request.headers.get(wire.SIGNATURE_HEADER),
        me,
        request.method,
        request.url.path,
        body_sha256=hashlib.sha256(raw).digest(),
    )
    if signer is None:
        raise UnauthenticatedError("sign the request with your account (ailedger-req1)")
    try:
        return signer, parse_untrusted(raw)
    except ValueError:
        raise MalformedRequestError("the body is not JSON") from None


def post_signed_json(
    account: LocalAccount,
    target: str,
    base_url: str,
    path: str,
    body: Any,
    *,
    limit: int,
    timeout: float,
) -> tuple[int, Any, bytes]:
    """POST ``body`` signed for node ``target``; (status, parsed answer or None, raw
    answer), reading at most ``limit`` bytes. An unreachable node is
    :class:`PeerUnreachableError`."""
    import httpx

    from ailedger.peer.client import bounded_request
    from ailedger.peer.signing import sign_request

    content = json.dumps(body).encode()
    header = sign_request(account, target, "POST", path, content)
    try:
        status, raw = bounded_request(
            "POST",
            base_url + path,
            limit,
            content=content,
            headers={wire.SIGNATURE_HEADER: header, "Content-Type": "application/json"},
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        raise PeerUnreachableError(f"the node at {base_url} did not answer: {exc}") from exc
    try:
        answer = parse_untrusted(raw)
    except ValueError:
        answer = None
    return status, answer, raw


def refusal_text(status: int, answer: Any, raw: bytes) -> str:
    """What a node's non-200 answer says, for the caller's error message."""
    reason = answer.get("error") if isinstance(answer, dict) else None
    return f"the owner's node refused (HTTP {status}): {reason or raw[:200]!r}"
