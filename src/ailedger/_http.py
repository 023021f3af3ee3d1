"""One HTTP client per process for calls between ailedger nodes.

Building an ``httpx`` client costs about 20 ms (it loads the TLS trust store even for
plain HTTP), which dominated a job's start-up when every request built its own; a shared
client also keeps connections alive between requests. httpx clients are thread-safe.
"""

from __future__ import annotations

import atexit
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

_client: httpx.Client | None = None
_lock = threading.Lock()


def shared_client() -> httpx.Client:
    global _client
    with _lock:
        if _client is None:
            import httpx

            _client = httpx.Client(timeout=60)
            atexit.register(_client.close)  # close kept-alive sockets before exit
        return _client
