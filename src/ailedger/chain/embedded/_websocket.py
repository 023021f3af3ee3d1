"""JSON-RPC over WebSocket, with ``eth_subscribe`` (``newHeads``, ``logs``,
``newPendingTransactions``) and ``eth_unsubscribe``, as geth serves them.

Each connection owns a bounded outbox that one writer task drains to the socket. Answers
and notifications both go through it, so a client that sends or subscribes but never
reads fills it, and is then disconnected (close code 1008, the reason says why) instead
of growing the node's memory. A single watcher per server polls the chain head while
any connection is open and hands each subscription the blocks (and their logs) it has
not seen; pending transactions arrive from the dispatcher as they are admitted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect

from ailedger.chain.embedded import _format
from ailedger.chain.embedded._logs import LogFilter, TooManyLogsError
from ailedger.chain.embedded._params import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    LIMIT_EXCEEDED,
    METHOD_NOT_FOUND,
    RpcError,
)
from ailedger.chain.embedded.rpc import RpcDispatcher, SessionMethods

log = logging.getLogger(__name__)

MAX_QUEUED_MESSAGES = 1024
"""Answers and notifications waiting for a slow reader before it is disconnected."""
MAX_QUEUED_BYTES = 64 * 2**20
"""...and their size: a few large answers (logs, batches) fill a connection's share sooner.
One message larger than this still goes out alone: its size is bounded where it is made."""
MAX_SUBSCRIPTIONS = 128  # per connection
POLL_INTERVAL_S = 0.05  # how often the watcher looks for new blocks while anyone listens
MAX_BLOCKS_PER_ROUND = 1000  # a subscription far behind catches up over several rounds
TOO_SLOW = 1008  # WebSocket close code "policy violation"
# Each connection may hold MAX_QUEUED_BYTES unread: the number of them bounds the total.
MAX_CONNECTIONS = 64
TRY_AGAIN_LATER = 1013
_HEADER_ONLY = ("transactions", "uncles", "withdrawals", "size", "totalDifficulty")

SubscriptionKind = Literal["newHeads", "logs", "newPendingTransactions"]


@dataclass
class Subscription:
    kind: SubscriptionKind
    next_block: int
    addresses: tuple[bytes, ...] = ()
    topics: tuple[tuple[bytes, ...] | None, ...] = ()
    full_transactions: bool = False
    active: bool = False  # notifications start once the client has its id


@dataclass
class _Outbox:
    limit: int
    queue: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    queued_bytes: int = 0


class Connection:
    """One WebSocket client: its subscriptions and its bounded outbox."""

    def __init__(self, websocket: WebSocket, dispatcher: RpcDispatcher, max_queued: int) -> None:
        self.websocket = websocket
        self.dispatcher = dispatcher
        self._outbox = _Outbox(max_queued)
        self._lock = threading.Lock()  # subscribe runs on a worker thread, delivery on the loop
        self._subscriptions: dict[str, Subscription] = {}
        self.closed = asyncio.Event()
        self.close_reason: str | None = None

    @property
    def session_methods(self) -> SessionMethods:
        return {"eth_subscribe": self._subscribe, "eth_unsubscribe": self._unsubscribe}

    def subscriptions(self) -> list[tuple[str, Subscription]]:
        with self._lock:
            return [(sid, s) for sid, s in self._subscriptions.items() if s.active]

    def activate_subscriptions(self) -> None:
        with self._lock:
            for subscription in self._subscriptions.values():
                subscription.active = True

    def push(self, message: str) -> None:
        """Queue a message for the writer; past the bound, drop the connection."""
        if self.closed.is_set():
            return
        outbox = self._outbox
        if outbox.queue.qsize() >= outbox.limit:
            self._drop(f"more than {outbox.limit} messages unread")
        elif outbox.queued_bytes + len(message) > MAX_QUEUED_BYTES and outbox.queued_bytes:
            self._drop(f"more than {MAX_QUEUED_BYTES} bytes unread")
        else:
            outbox.queued_bytes += len(message)
            outbox.queue.put_nowait(message)

    def _drop(self, why: str) -> None:
        self.close_reason = f"client too slow: {why}; disconnected"
        self.closed.set()

    def notify(self, subscription_id: str, result: Any) -> None:
        self.push(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "method": "eth_subscription",
                    "params": {"subscription": subscription_id, "result": result},
                },
                separators=(",", ":"),
            )
        )

    async def write_loop(self) -> None:
        while True:
            message = await self._outbox.queue.get()
            self._outbox.queued_bytes -= len(message)
            await self.websocket.send_text(message)

    # ----------------------------------------------------- eth_subscribe (worker thread)

    def _subscribe(self, kind: Any = None, options: Any = None) -> str:
        head = self.dispatcher.chain.head_number
        if kind == "newHeads":
            subscription = Subscription("newHeads", head + 1)
        elif kind == "logs":
            criteria = self.dispatcher.log_criteria(options if options is not None else {})
            subscription = Subscription("logs", head + 1, criteria.addresses, criteria.topics)
        elif kind == "newPendingTransactions":
            if options is not None and not isinstance(options, bool):
                raise RpcError(INVALID_PARAMS, "invalid argument 1: expected true or false")
            subscription = Subscription(
                "newPendingTransactions", head + 1, full_transactions=bool(options)
            )
        else:
            shown = kind if isinstance(kind, str) else type(kind).__name__
            raise RpcError(METHOD_NOT_FOUND, f'no "{shown[:100]}" subscription in eth namespace')
        with self._lock:
            if len(self._subscriptions) >= MAX_SUBSCRIPTIONS:
                raise RpcError(
                    LIMIT_EXCEEDED,
                    f"too many subscriptions on this connection (at most {MAX_SUBSCRIPTIONS})",
                )
            subscription_id = "0x" + secrets.token_hex(16)
            self._subscriptions[subscription_id] = subscription
        return subscription_id

    def _unsubscribe(self, subscription_id: Any = None) -> bool:
        if not isinstance(subscription_id, str):
            raise RpcError(INVALID_PARAMS, "invalid argument 0: a subscription id is a string")
        with self._lock:
            return self._subscriptions.pop(subscription_id.lower(), None) is not None


class ChainWatcher:
    """Polls the head while connections are open and notifies their subscriptions."""

    def __init__(self, dispatcher: RpcDispatcher, poll_interval_s: float = POLL_INTERVAL_S) -> None:
        self._dispatcher = dispatcher
        self._chain = dispatcher.chain
        self._poll_interval_s = poll_interval_s
        self._connections: set[Connection] = set()
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()  # referenced until they finish
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def full(self) -> bool:
        return len(self._connections) >= MAX_CONNECTIONS

    def attach(self, connection: Connection) -> None:
        self._connections.add(connection)
        if self._task is None or self._task.done():
            self._loop = asyncio.get_running_loop()
            self._dispatcher.add_pending_listener(self._on_pending)
            self._task = asyncio.create_task(self._run(), name="ailedger-ws-watcher")

    def detach(self, connection: Connection) -> None:
        self._connections.discard(connection)

    async def _run(self) -> None:
        try:
            while self._connections:
                await asyncio.sleep(self._poll_interval_s)
                watching = [
                    (connection, sid, s)
                    for connection in list(self._connections)
                    for sid, s in connection.subscriptions()
                    if s.kind != "newPendingTransactions"
                ]
                if not watching:
                    continue  # connections without block subscriptions need no head
                # Read without the chain lock or a worker thread: most polls find nothing
                # new, and must not wait behind a block being sealed to learn that.
                head = self._chain.head_number
                due = [entry for entry in watching if entry[2].next_block <= head]
                if due:
                    messages = await run_in_threadpool(self._collect, due, head)
                    for connection, sid, result in messages:
                        connection.notify(sid, result)
        except Exception:  # a watcher bug must not pass silently, nor kill the server
            log.exception("the WebSocket subscription watcher failed")
        finally:
            self._dispatcher.remove_pending_listener(self._on_pending)

    def _collect(
        self, due: list[tuple[Connection, str, Subscription]], head: int
    ) -> list[tuple[Connection, str, Any]]:
        """The notifications for blocks up to ``head`` (worker thread: reads the chain)."""
        heads: dict[int, dict[str, Any]] = {}
        out: list[tuple[Connection, str, Any]] = []
        for connection, sid, subscription in due:
            start = subscription.next_block
            end = min(head, start + MAX_BLOCKS_PER_ROUND - 1)
            subscription.next_block = end + 1
            if subscription.kind == "newHeads":
                for number in range(start, end + 1):
                    if number not in heads:
                        header = self._chain.header(number)
                        if header is None:
                            continue
                        block = _format.format_block(header, [])
                        heads[number] = {k: v for k, v in block.items() if k not in _HEADER_ONLY}
                    out.append((connection, sid, heads[number]))
            else:
                query = LogFilter(start, end, subscription.addresses, subscription.topics)
                try:
                    logs = self._chain.logs(query)
                except TooManyLogsError:
                    log.warning(
                        "a logs subscription skipped blocks %d-%d: too many logs", start, end
                    )
                    continue
                out.extend((connection, sid, entry) for entry in logs)
        return out

    def _on_pending(self, tx_hash: str) -> None:
        """Called on the dispatcher's worker thread as a transaction is admitted: hand
        it to the event loop, which owns the connections."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(self._deliver_pending, tx_hash)

    def _deliver_pending(self, tx_hash: str) -> None:
        wanting_full = []
        for connection in list(self._connections):
            for sid, subscription in connection.subscriptions():
                if subscription.kind != "newPendingTransactions":
                    continue
                if subscription.full_transactions:
                    wanting_full.append((connection, sid))
                else:
                    connection.notify(sid, tx_hash)
        if wanting_full:
            task = asyncio.create_task(self._deliver_full(tx_hash, wanting_full))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _deliver_full(self, tx_hash: str, wanting: list[tuple[Connection, str]]) -> None:
        found = await run_in_threadpool(self._chain.transaction, bytes.fromhex(tx_hash[2:]))
        if found is None:
            return
        tx, header, index = found
        formatted = _format.format_transaction(tx, header, index)
        for connection, sid in wanting:
            connection.notify(sid, formatted)


async def serve_connection(
    websocket: WebSocket,
    dispatcher: RpcDispatcher,
    watcher: ChainWatcher,
    *,
    max_message_bytes: int,
    max_queued: int = MAX_QUEUED_MESSAGES,
) -> None:
    """Answer one WebSocket client until it leaves or falls too far behind."""
    if watcher.full:
        await websocket.close(
            code=TRY_AGAIN_LATER, reason=f"at most {MAX_CONNECTIONS} WebSocket connections"
        )
        return
    await websocket.accept()
    connection = Connection(websocket, dispatcher, max_queued)
    watcher.attach(connection)
    writer = asyncio.create_task(connection.write_loop())
    reader = asyncio.create_task(_read_loop(connection, max_message_bytes))
    closed = asyncio.create_task(connection.closed.wait())
    try:
        await asyncio.wait({writer, reader, closed}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.detach(connection)
        for task in (writer, reader, closed):
            task.cancel()
        for task in (writer, reader):
            # A send to a client that left fails; that is how the writer learns it.
            with contextlib.suppress(BaseException):
                await task
        if connection.close_reason is not None:
            # The writer may be stuck on a client that does not read: do not wait long.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    websocket.close(code=TOO_SLOW, reason=connection.close_reason[:120]), 1.0
                )


async def _read_loop(connection: Connection, max_message_bytes: int) -> None:
    websocket = connection.websocket
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            body = message.get("bytes")
            if body is None:
                body = (message.get("text") or "").encode("utf-8", "surrogatepass")
            if len(body) > max_message_bytes:
                error = RpcError(
                    INVALID_REQUEST, f"request too large (limit {max_message_bytes} bytes)"
                )
                connection.push(
                    json.dumps({"jsonrpc": "2.0", "id": None, "error": error.as_dict()})
                )
                continue
            answer = await run_in_threadpool(
                connection.dispatcher.handle_bytes, body, connection.session_methods
            )
            connection.push(answer.decode())
            connection.activate_subscriptions()
    except WebSocketDisconnect:
        return
