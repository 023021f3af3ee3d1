"""``ailedger chain serve``: the embedded chain as standard Ethereum JSON-RPC over HTTP.

Binds to 127.0.0.1 unless told otherwise. Requests above ``MAX_REQUEST_BYTES`` are
refused with HTTP 413 before they are read into memory, like geth's 5 MiB limit.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ailedger.chain.embedded.node import EmbeddedChain
from ailedger.chain.embedded.rpc import INVALID_REQUEST, RpcDispatcher

MAX_REQUEST_BYTES = 5 * 1024 * 1024


def make_app(chain: EmbeddedChain) -> Starlette:
    dispatcher = RpcDispatcher(chain)

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

    return Starlette(routes=[Route("/", rpc, methods=["POST"])])


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


def serve(chain: EmbeddedChain, host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM, then seal what is pending and close the chain."""
    import uvicorn

    config = uvicorn.Config(make_app(chain), host=host, port=port, log_level="warning")
    server = uvicorn.Server(config)
    chain.announce_url(f"http://{host}:{port}")
    # uvicorn re-raises the signal that stopped it once it has shut down; at its default
    # action SIGTERM would end the process there, before the chain is closed below.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        server.run()
    finally:
        chain.close()


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # the shell's convention, as the CLI's 130 for Ctrl-C
