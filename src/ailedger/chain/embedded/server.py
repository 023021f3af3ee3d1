"""``ailedger chain serve``: the embedded chain as standard Ethereum JSON-RPC, over HTTP
POST and WebSocket on the same port (``http://HOST:PORT`` and ``ws://HOST:PORT``).

Binds to 127.0.0.1 unless told otherwise. Requests above ``MAX_REQUEST_BYTES`` are
refused with HTTP 413 before they are read into memory, like geth's 5 MiB limit; a
WebSocket message above it gets a JSON-RPC error, and one above ``MAX_WS_FRAME_BYTES``
closes the connection (1009) before it is buffered. Web pages may call only from the
origins allowed (:mod:`._cors`; by default this machine's).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from ailedger.chain.embedded._cors import DEFAULT_ORIGINS, OriginGate, OriginPolicy
from ailedger.chain.embedded._params import INVALID_REQUEST
from ailedger.chain.embedded._websocket import MAX_QUEUED_MESSAGES, ChainWatcher, serve_connection
from ailedger.chain.embedded.node import EmbeddedChain
from ailedger.chain.embedded.rpc import RpcDispatcher

MAX_REQUEST_BYTES = 5 * 1024 * 1024
MAX_WS_FRAME_BYTES = 2 * MAX_REQUEST_BYTES


def make_app(
    chain: EmbeddedChain,
    *,
    cors_origins: Iterable[str] = DEFAULT_ORIGINS,
    max_queued_messages: int = MAX_QUEUED_MESSAGES,
) -> Starlette:
    """The JSON-RPC app: POST and WebSocket at ``/``, one dispatcher (so HTTP filters see
    transactions sent over the socket and the other way round)."""
    dispatcher = RpcDispatcher(chain)
    watcher = ChainWatcher(dispatcher)

    async def rpc(request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_REQUEST_BYTES):
            return _too_large()
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > MAX_REQUEST_BYTES:
                return _too_large()
        answer = await run_in_threadpool(dispatcher.handle_bytes, bytes(body))
        return Response(answer, media_type="application/json")

    async def websocket(socket: WebSocket) -> None:
        await serve_connection(
            socket,
            dispatcher,
            watcher,
            max_message_bytes=MAX_REQUEST_BYTES,
            max_queued=max_queued_messages,
        )

    return Starlette(
        routes=[Route("/", rpc, methods=["POST"]), WebSocketRoute("/", websocket)],
        middleware=[Middleware(OriginGate, policy=OriginPolicy(cors_origins))],
    )


def _too_large() -> Response:
    error: dict[str, Any] = {
        "jsonrpc": "2.0",
        "id": None,
        "error": {
            "code": INVALID_REQUEST,
            "message": f"request too large (limit {MAX_REQUEST_BYTES} bytes)",
        },
    }
    return JSONResponse(error, status_code=413)


def uvicorn_config(app: Starlette, host: str, port: int) -> Any:
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
