"""One HTTP client per process for every call between ailedger nodes.

Building an ``httpx`` client costs about 20 ms (it loads the TLS trust store even for
plain HTTP), which dominated a job's start-up when every request built its own; a shared
client also keeps connections alive between requests. httpx clients are thread-safe.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ailedger.errors import PeerError
from ailedger.peer import wire
from ailedger.peer.signing import sign_request

if TYPE_CHECKING:
    import httpx
    from eth_account.signers.local import LocalAccount

DEFAULT_TIMEOUT_S = 60

_client: httpx.Client | None = None
_lock = threading.Lock()


def shared_client() -> httpx.Client:
    global _client
    with _lock:
        if _client is None:
            import httpx

            _client = httpx.Client(timeout=DEFAULT_TIMEOUT_S)
            atexit.register(_client.close)  # close kept-alive sockets before exit
        return _client


class AnswerTooLargeError(PeerError):
    """Another node answered with more bytes than the caller reads from a peer."""


def bounded_request(method: str, url: str, limit: int, **kwargs: Any) -> tuple[int, bytes]:
    """(status, body) of a request to another node, reading at most ``limit`` bytes of
    its answer: a node that sends more is cut off with :class:`AnswerTooLargeError`
    rather than filling this node's memory. ``kwargs`` go to httpx (json, headers,
    timeout); its errors are the caller's to catch, as with ``shared_client()``."""
    with shared_client().stream(method, url, **kwargs) as response:
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > limit:
                raise AnswerTooLargeError(f"{url} answered with more than {limit} bytes")
        return response.status_code, bytes(body)


class SignedRequestError(PeerError):
    """A node did not answer a signed request with 200; the message says what it said,
    ``status`` its HTTP status (None: it did not answer at all)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def send_signed(
    account: LocalAccount,
    base_url: str,
    target: str,
    method: str,
    path: str,
    body: bytes | Path = b"",
    timeout: float = DEFAULT_TIMEOUT_S,
) -> httpx.Response:
    """Send a request signed by ``account`` to node ``target`` at ``base_url``. A
    :class:`Path` body is hashed, then streamed from the file, so a large output is never
    held in memory."""
    import httpx

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
                headers={wire.SIGNATURE_HEADER: header},
                timeout=timeout,
            )
    except httpx.HTTPError as exc:
        raise SignedRequestError(f"node {base_url} unreachable: {exc}") from exc
    if response.status_code != 200:
        raise SignedRequestError(
            f"{method} {path}: HTTP {response.status_code} {response.text[:200]}",
            status=response.status_code,
        )
    return response


def log_via_own_node(account: LocalAccount, url: str, entry: dict[str, Any]) -> int:
    """Append ``entry`` to this home's audit log through its running node at ``url``,
    which owns the log and takes entries only signed by its own account; returns the
    entry's index."""
    body = json.dumps(entry).encode()
    try:
        response = send_signed(account, url, account.address, "POST", wire.OWN_ENTRIES, body)
    except SignedRequestError as exc:
        raise SignedRequestError(
            f"the running node at {url} did not log the entry: {exc}", status=exc.status
        ) from exc
    return int(response.json()["index"])
