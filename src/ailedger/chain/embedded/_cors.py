"""Which web pages may call the node: an origin allow-list, applied to HTTP and WebSocket.

By default only pages served from this machine (``http://localhost:*``, ``http://127.0.0.1:*``)
may call. A page from anywhere else is refused outright, not merely denied the answer as
plain CORS would: the node signs ``eth_sendTransaction`` with its own account, and a
foreign page could otherwise send one as a "simple" POST that needs no preflight, or over
a WebSocket, which browsers never preflight. Clients that are not browsers send no
``Origin`` and are not affected.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ailedger.errors import ConfigError

DEFAULT_ORIGINS = (
    "http://localhost:*",
    "http://127.0.0.1:*",
    "http://[::1]:*",
    "https://localhost:*",
    "https://127.0.0.1:*",
    "https://[::1]:*",
)
PREFLIGHT_MAX_AGE_S = 600
_ALLOWED_METHODS = "POST, GET, OPTIONS"
_ORIGIN_SHAPE = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s]+/?", re.IGNORECASE)


class OriginPolicy:
    """Origins as written on the command line: exact (``https://app.example``), with any
    port (``http://localhost:*``), or ``*`` for every origin."""

    def __init__(self, patterns: Iterable[str] = DEFAULT_ORIGINS) -> None:
        self.patterns = tuple(patterns)
        for pattern in self.patterns:
            if pattern != "*" and not _ORIGIN_SHAPE.fullmatch(pattern):
                raise ConfigError(
                    f"{pattern!r} is not a web origin: write scheme://host[:port] "
                    "(e.g. https://app.example or http://localhost:*), or * for any"
                )
        self._any = "*" in self.patterns
        self._matchers = [_compile(p) for p in self.patterns if p != "*"]

    def allows(self, origin: str) -> bool:
        if self._any:
            return True
        return any(m.fullmatch(origin) for m in self._matchers)


def _compile(pattern: str) -> re.Pattern[str]:
    pattern = pattern.rstrip("/")
    if pattern.endswith(":*"):
        return re.compile(re.escape(pattern[:-2]) + r"(?::\d{1,5})?", re.IGNORECASE)
    return re.compile(re.escape(pattern), re.IGNORECASE)


class OriginGate:
    """ASGI middleware: answers preflights, adds the CORS headers for allowed origins,
    refuses requests and WebSocket handshakes from other origins."""

    def __init__(self, app: ASGIApp, policy: OriginPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        origin = _header(scope, b"origin") if scope["type"] in ("http", "websocket") else None
        if origin is None:
            await self.app(scope, receive, send)
            return
        allowed = self.policy.allows(origin)
        if scope["type"] == "websocket":
            if allowed:
                await self.app(scope, receive, send)
            else:  # closing before accepting makes the server answer the handshake with 403
                await receive()
                await send({"type": "websocket.close", "code": 1008})
            return
        preflight = scope["method"] == "OPTIONS" and _header(
            scope, b"access-control-request-method"
        )
        if not allowed:
            await _refuse(send, origin, preflight=bool(preflight))
        elif preflight:
            await _answer_preflight(scope, send, origin)
        else:
            await self.app(scope, receive, _with_cors_headers(send, origin))


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


async def _refuse(send: Send, origin: str, *, preflight: bool) -> None:
    message = f"origin {origin[:200]} is not allowed; start the node with --cors-origin to allow it"
    if preflight:
        body, kind = message.encode(), b"text/plain; charset=utf-8"
    else:
        error: dict[str, Any] = {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": -32600, "message": message},
        }
        body, kind = json.dumps(error).encode(), b"application/json"
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _answer_preflight(scope: Scope, send: Send, origin: str) -> None:
    headers = [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-allow-methods", _ALLOWED_METHODS.encode()),
        (b"access-control-max-age", str(PREFLIGHT_MAX_AGE_S).encode()),
        (b"vary", b"Origin"),
        (b"content-length", b"0"),
    ]
    requested = _header(scope, b"access-control-request-headers")
    if requested:
        headers.append((b"access-control-allow-headers", requested.encode("latin-1")))
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def _with_cors_headers(send: Send, origin: str) -> Send:
    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            headers.append((b"access-control-allow-origin", origin.encode("latin-1")))
            headers.append((b"vary", b"Origin"))
            message = {**message, "headers": headers}
        await send(message)

    return send_with_headers
