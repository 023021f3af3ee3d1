"""A web3.py provider that answers from the embedded chain in this process.

Requests go through the same :class:`RpcDispatcher` as the HTTP server, so code written
against web3 behaves the same in-process and over the network, without a socket.
"""

from __future__ import annotations

import itertools
from typing import Any

from web3.providers.base import BaseProvider
from web3.types import RPCEndpoint, RPCResponse

from ailedger.chain.embedded.rpc import RpcDispatcher


class EmbeddedProvider(BaseProvider):
    def __init__(self, dispatcher: RpcDispatcher) -> None:
        super().__init__()
        self._dispatcher = dispatcher
        self._ids = itertools.count()

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        request = {
            "jsonrpc": "2.0",
            "id": next(self._ids),
            "method": method,
            "params": list(params),
        }
        return self._dispatcher.handle(_jsonable(request))  # type: ignore[return-value]

    def is_connected(self, show_traceback: bool = False) -> bool:
        return True


def _jsonable(value: Any) -> Any:
    """web3 may hand us bytes or ints where JSON would carry hex strings."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
