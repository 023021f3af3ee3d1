"""Using a node's web API from a program: sign in with an account, then call
``/api/v1`` like the pages do.

::

    from ailedger.web.client import sign_in

    with sign_in("http://127.0.0.1:8700", account) as api:
        datasets = api.get("/api/v1/owner/datasets").json()

The account signs an EIP-4361 (Sign-In with Ethereum) message over a nonce the node
issued; the client then carries the session cookie, and the CSRF token on every request.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import httpx

from ailedger.errors import UnauthenticatedError
from ailedger.web.siwe import SiweMessage, timestamp

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

SIGN_IN_VALID_FOR = timedelta(minutes=5)


@contextmanager
def sign_in(url: str, account: LocalAccount, *, timeout: float = 30.0) -> Iterator[httpx.Client]:
    """An HTTP client of the node at ``url``, signed in as ``account`` (the home's own
    account for an operator, or an auditor the node named), closed on leaving. Raises
    :class:`UnauthenticatedError` with the node's reason when it refuses."""
    with httpx.Client(base_url=url.rstrip("/"), timeout=timeout) as http:
        http.headers["X-CSRF-Token"] = _signed_in(http, account)
        yield http


def _signed_in(http: httpx.Client, account: LocalAccount) -> str:
    """Sign ``http`` in; returns the session's CSRF token."""
    from eth_account.messages import encode_defunct

    issued = _json(http.get("/api/v1/auth/nonce", params={"address": account.address}))
    # The message names the server this client connects to, never what that server says
    # it is: a server that passed on another node's nonce and domain would otherwise get
    # a message it could replay there, signed in as this account.
    domain = http.base_url.netloc.decode("ascii")
    uri = f"{http.base_url.scheme}://{domain}"
    if issued.get("domain") != domain or issued.get("uri") != uri:
        raise UnauthenticatedError(
            f"the server at {uri} asks for a sign-in message for another site "
            f"({str(issued.get('domain'))[:80]!r}): refused, nothing was signed"
        )
    now = datetime.now(UTC)
    text = SiweMessage(
        domain=domain,
        address=account.address,
        statement=str(issued["statement"]),
        uri=uri,
        chain_id=int(str(issued["chain_id"])),
        nonce=str(issued["nonce"]),
        issued_at=timestamp(now),
        expiration_time=timestamp(now + SIGN_IN_VALID_FOR),
    ).text()
    signature = bytes(account.sign_message(encode_defunct(text=text)).signature).hex()
    answer = _json(
        http.post("/api/v1/auth/siwe", json={"message": text, "signature": "0x" + signature})
    )
    return str(answer["csrf_token"])


def _json(response: httpx.Response) -> dict[str, object]:
    if response.status_code != 200:
        try:
            reason = response.json().get("error", response.text)
        except ValueError:
            reason = response.text
        raise UnauthenticatedError(f"the node refused to sign in: {reason}")
    body: dict[str, object] = response.json()
    return body
