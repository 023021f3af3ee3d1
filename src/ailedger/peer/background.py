"""An ASGI app served by uvicorn on a free loopback port, in a thread of this process.

What the demo, the tests and a federated job's loopback desks use; `ailedger node start`
runs its app in the foreground instead.
"""

from __future__ import annotations

import threading
import time


class BackgroundServer:
    """An ASGI app served by uvicorn on a free loopback port, in a thread of this
    process (the demo and tests; `ailedger node start` runs in the foreground)."""

    def __init__(self, app: object) -> None:
        import uvicorn

        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")  # type: ignore[arg-type]
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> str:
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the background server failed to start")
            time.sleep(0.02)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
