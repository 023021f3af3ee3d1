"""The embedded chain's JSON-RPC server in a thread on 127.0.0.1, for the RPC test modules."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.types import ASGIApp

from ailedger.chain.connection import open_embedded
from ailedger.chain.deploy import Deployment
from ailedger.chain.embedded.node import EmbeddedChain
from ailedger.chain.embedded.server import make_app, uvicorn_config


@contextmanager
def running(app: ASGIApp) -> Iterator[str]:
    """Serve ``app`` on a free loopback port; yields its ``http://`` URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
    assert not thread.is_alive()


@dataclass
class Served:
    url: str
    node: EmbeddedChain
    deployment: Deployment
    chain_dir: Path
    cache_dir: Path
    http: httpx.Client

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http")

    def post(self, body: Any) -> Any:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        response = self.http.post(
            self.url, content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == 200, response.text
        return response.json()

    def call(self, method: str, *params: Any) -> dict[str, Any]:
        answer = self.post({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
        assert isinstance(answer, dict) and answer["id"] == 1
        return answer

    def result(self, method: str, *params: Any) -> Any:
        answer = self.call(method, *params)
        assert "error" not in answer, answer
        return answer["result"]

    def error(self, method: str, *params: Any) -> dict[str, Any]:
        answer = self.call(method, *params)
        assert "result" not in answer, answer
        return dict(answer["error"])

    def assert_alive(self) -> None:
        assert int(self.result("eth_blockNumber"), 16) == self.node.head().block_number


@contextmanager
def served_chain(chain_dir: Path, contract_cache: Path) -> Iterator[Served]:
    """A chain with ailedger's contracts, served over HTTP and WebSocket."""
    connection = open_embedded(chain_dir, contract_cache)
    node = connection.embedded
    assert node is not None
    try:
        with running(make_app(node)) as url, httpx.Client(timeout=30) as http:
            node.announce_url(url)
            deployment = Deployment.from_json(node.get_meta("deployment") or "", "the chain's meta")
            yield Served(url, node, deployment, chain_dir, contract_cache, http)
    finally:
        connection.close()
