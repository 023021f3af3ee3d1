"""``ailedger chain serve``: the embedded chain as standard Ethereum JSON-RPC, over HTTP
POST and WebSocket on the same port (``http://HOST:PORT`` and ``ws://HOST:PORT``).

Binds to 127.0.0.1 unless told otherwise. Requests above ``MAX_REQUEST_BYTES`` are
refused with HTTP 413 before they are read into memory, like geth's 5 MiB limit; a
WebSocket message above it gets a JSON-RPC error, and one above ``MAX_WS_FRAME_BYTES``
closes the connection (1009) before it is buffered. Web pages may call only from the
origins allowed (:mod:`._cors`; by default this machine's).
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from ailedger.chain.embedded._cors import DEFAULT_ORIGINS, OriginGate, OriginPolicy
from ailedger.chain.embedded._params import INVALID_REQUEST
from ailedger.chain.embedded._websocket import MAX_QUEUED_MESSAGES, ChainWatcher, serve_connection
from ailedger.chain.embedded.node import EmbeddedChain
from ailedger.chain.embedded.rpc import RpcDispatcher

MAX_REQUEST_BYTES = 5 * 1024 * 1024
MAX_WS_FRAME_BYTES = 2 * MAX_REQUEST_BYTES
RPC_THREADS = 64  # requests dispatched at once: a receipt query may wait for its block


def make_app(
    chain: EmbeddedChain,
    *,
    cors_origins: Iterable[str] = DEFAULT_ORIGINS,
    max_queued_messages: int = MAX_QUEUED_MESSAGES,
) -> ASGIApp:
    """The JSON-RPC app: POST and WebSocket at ``/``, one dispatcher (so HTTP filters see
    transactions sent over the socket and the other way round)."""
    dispatcher = RpcDispatcher(chain)
    watcher = ChainWatcher(dispatcher)

    async def websocket(socket: WebSocket) -> None:
        await serve_connection(
            socket,
            dispatcher,
            watcher,
            max_message_bytes=MAX_REQUEST_BYTES,
            max_queued=max_queued_messages,
        )

    # POST /, nearly every request, goes straight to the dispatcher (JsonRpcOverHttp);
    # Starlette serves the WebSocket and answers other paths with 404.
    sockets = Starlette(routes=[WebSocketRoute("/", websocket)])
    return OriginGate(JsonRpcOverHttp(dispatcher, sockets), policy=OriginPolicy(cors_origins))


class JsonRpcOverHttp:
    """ASGI app answering ``POST /`` with the dispatcher; anything else goes to ``other``.

    Written against ASGI directly rather than as a Starlette route: the framework's layers
    (request object, middleware stack, anyio's thread hand-off) cost about as much per
    request as answering ``eth_chainId`` itself. The body is bounded before it is read
    (413 past ``MAX_REQUEST_BYTES``), and the dispatcher runs on a thread of its own pool,
    since a call may wait for a block being sealed.
    """

    def __init__(self, dispatcher: RpcDispatcher, other: ASGIApp) -> None:
        self._dispatcher = dispatcher
        self._other = other
        self._threads = ThreadPoolExecutor(RPC_THREADS, thread_name_prefix="ailedger-rpc")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/":
            await self._other(scope, receive, send)
            return
        if scope["method"] != "POST":
            await _send(send, 405, b"method not allowed: send JSON-RPC as POST", _ALLOW_POST)
            return
        body = await _read_body(scope, receive)
        if isinstance(body, bytes):
            loop = asyncio.get_running_loop()
            answer = await loop.run_in_executor(self._threads, self._dispatcher.handle_bytes, body)
            await _send(send, 200, answer)
        elif body is _TOO_LARGE:
            await _send(send, 413, _too_large())
        # _GONE: nobody to answer, and a partial body must not be executed


_GONE = object()  # the client disconnected before its body was complete
_TOO_LARGE = object()  # the body is, or is declared, over MAX_REQUEST_BYTES


async def _read_body(scope: Scope, receive: Receive) -> bytes | object:
    """The request body, or _TOO_LARGE, or _GONE."""
    for name, value in scope["headers"]:
        if name == b"content-length" and (not value.isdigit() or int(value) > MAX_REQUEST_BYTES):
            return _TOO_LARGE
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return _GONE
        body.extend(message.get("body", b""))
        if len(body) > MAX_REQUEST_BYTES:
            return _TOO_LARGE
        if not message.get("more_body", False):
            return bytes(body)


_JSON = [(b"content-type", b"application/json")]
_ALLOW_POST = [(b"content-type", b"text/plain; charset=utf-8"), (b"allow", b"POST")]


async def _send(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] = _JSON
) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _too_large() -> bytes:
    error = {
        "code": INVALID_REQUEST,
        "message": f"request too large (limit {MAX_REQUEST_BYTES} bytes)",
    }
    return json.dumps({"jsonrpc": "2.0", "id": None, "error": error}).encode()


def uvicorn_config(app: ASGIApp, host: str, port: int) -> Any:
    """uvicorn's settings for the node: WebSocket frames bounded, quiet logs."""
    import uvicorn

    # httptools and uvloop (C) instead of uvicorn's pure-Python fallbacks: a fifth of the
    # node's time under load went to h11 parsing requests.
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        ws_max_size=MAX_WS_FRAME_BYTES,
        loop="uvloop",
        http="httptools",
    )


def serve(
    chain: EmbeddedChain,
    host: str,
    port: int,
    cors_origins: Iterable[str] = DEFAULT_ORIGINS,
) -> None:
    """Serve until SIGINT/SIGTERM, then seal what is pending and close the chain."""
    import uvicorn

    try:
        app = make_app(chain, cors_origins=cors_origins)
        server = uvicorn.Server(uvicorn_config(app, host, port))
        chain.announce_url(f"http://{host}:{port}")
        # uvicorn re-raises the signal that stopped it once it has shut down; at its
        # default action SIGTERM would end the process there, before the chain is closed.
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _exit_on_signal)
        server.run()
    finally:
        chain.close()


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # the shell's convention, as the CLI's 130 for Ctrl-C
