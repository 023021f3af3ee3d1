"""The JSON-RPC surface under bad input and misbehaving clients: every malformed request
gets a JSON-RPC error (never an internal error, a 500 or a crash), filters expire and are
bounded, and a WebSocket client that never reads is disconnected instead of growing the
node's memory (issue 17)."""

from __future__ import annotations

import asyncio
import gc
import json
from collections import deque
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ailedger.chain.embedded import _websocket, rpc
from ailedger.chain.embedded._filters import (
    FILTER_TIMEOUT_S,
    MAX_PENDING_HASHES,
    FilterNotFoundError,
    FilterRegistry,
    LogCriteria,
    TooManyFiltersError,
)
from ailedger.chain.embedded.node import EmbeddedChain
from ailedger.chain.embedded.rpc import RpcDispatcher
from ailedger.chain.embedded.server import make_app

KNOWN_CODES = {-32700, -32600, -32601, -32602, -32000, -32003, -32005, 3}


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedChain]:
    with EmbeddedChain.open(tmp_path_factory.mktemp("limits") / "chain") as chain:
        yield chain


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------------------------------ filters


def test_unpolled_filters_expire_and_polled_ones_stay() -> None:
    clock = Clock()
    registry = FilterRegistry(clock=clock)
    polled = registry.install("block", head=5)
    forgotten = registry.install("logs", head=5, criteria=LogCriteria(None, None))
    clock.now += FILTER_TIMEOUT_S - 1
    kind, taken = registry.take_blocks(polled, head=7)
    assert kind == "block" and (taken.start, taken.end) == (6, 7)
    clock.now += 2  # forgotten: unpolled for longer than the timeout
    with pytest.raises(FilterNotFoundError):
        registry.take_blocks(forgotten, head=7)
    assert registry.take_blocks(polled, head=7)[1].empty
    assert len(registry) == 1
    clock.now += FILTER_TIMEOUT_S + 1
    assert len(registry) == 0


def test_the_number_of_filters_is_bounded() -> None:
    clock = Clock()
    registry = FilterRegistry(limit=3, clock=clock)
    ids = [registry.install("block", head=0) for _ in range(3)]
    with pytest.raises(TooManyFiltersError, match="at most 3"):
        registry.install("pending", head=0)
    assert registry.uninstall(ids[0])
    registry.install("pending", head=0)  # room again
    clock.now += FILTER_TIMEOUT_S + 1  # and expired ones make room too
    registry.install("pending", head=0)


def test_a_pending_filter_keeps_a_bounded_backlog() -> None:
    registry = FilterRegistry()
    fid = registry.install("pending", head=0)
    for i in range(MAX_PENDING_HASHES + 5):
        registry.add_pending(f"0x{i:064x}")
    hashes = registry.take_pending(fid)[0]
    assert len(hashes) == MAX_PENDING_HASHES and hashes[0] == f"0x{5:064x}"  # oldest dropped
    assert registry.take_pending(fid)[0] == []


def test_admitted_hashes_are_kept_only_while_a_pending_filter_exists() -> None:
    clock = [0.0]
    registry = FilterRegistry(timeout_s=60, clock=lambda: clock[0])
    registry.install("block", head=0)
    for i in range(100):
        registry.add_pending(f"0x{i:064x}")
    assert registry.pending_hashes_kept == 0  # nobody can ever ask for them
    first = registry.install("pending", head=0)
    second = registry.install("pending", head=0, full_transactions=True)
    registry.add_pending("0x" + "aa" * 32)
    assert registry.take_pending(second) == (["0x" + "aa" * 32], True)
    assert registry.uninstall(first)
    registry.add_pending("0x" + "bb" * 32)
    assert registry.take_pending(second) == (["0x" + "bb" * 32], True)
    clock[0] = 61.0  # the last pending filter expires unpolled: admissions notice it
    registry.add_pending("0x" + "cc" * 32)
    assert registry.pending_hashes_kept == 0
    assert len(registry) == 0


def hash_references(root: object) -> int:
    """How many references to transaction hashes (66-character strings) the objects
    reachable from ``root`` hold, whatever containers they sit in: memory that grows with
    them, counted without looking at how the registry stores them."""
    seen: set[int] = set()
    stack: list[object] = [root]
    count = 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        for ref in gc.get_referents(obj):
            if isinstance(ref, str):
                count += len(ref) == 66
            elif isinstance(ref, dict | list | tuple | deque) or (
                type(ref).__module__.startswith("ailedger.")
            ):
                stack.append(ref)
    return count


def test_pending_filters_share_one_bounded_backlog() -> None:
    """Many pending filters, many admitted transactions: what the registry holds stays
    within one backlog's worth of hashes however many filters there are, and each filter
    still reports every hash admitted since it was installed or last polled."""
    registry = FilterRegistry()
    early = [registry.install("pending", head=0) for _ in range(200)]
    registry.add_pending(f"0x{0:064x}")
    late = [registry.install("pending", head=0) for _ in range(200)]
    for i in range(1, MAX_PENDING_HASHES):
        registry.add_pending(f"0x{i:064x}")
    assert hash_references(registry) <= MAX_PENDING_HASHES
    every = [f"0x{i:064x}" for i in range(MAX_PENDING_HASHES)]
    assert all(registry.take_pending(fid)[0] == every for fid in early)
    assert all(registry.take_pending(fid)[0] == every[1:] for fid in late)
    for i in range(MAX_PENDING_HASHES, 3 * MAX_PENDING_HASHES):
        registry.add_pending(f"0x{i:064x}")
    assert hash_references(registry) <= MAX_PENDING_HASHES
    # a filter that fell more than the backlog behind gets what is still there
    latest = registry.take_pending(early[0])[0]
    assert latest == [f"0x{i:064x}" for i in range(2 * MAX_PENDING_HASHES, 3 * MAX_PENDING_HASHES)]
    registry.add_pending("0x" + "ab" * 32)
    assert registry.take_pending(early[0])[0] == ["0x" + "ab" * 32]
    assert registry.take_pending(late[0])[0][-2:] == [latest[-1], "0x" + "ab" * 32]


def test_the_filter_limit_is_a_json_rpc_error(chain: EmbeddedChain) -> None:
    dispatcher = RpcDispatcher(chain, FilterRegistry(limit=1))
    first = call(dispatcher, "eth_newBlockFilter")
    assert "result" in first
    assert call(dispatcher, "eth_newBlockFilter")["error"]["code"] == -32005
    assert call(dispatcher, "eth_uninstallFilter", first["result"])["result"] is True


# -------------------------------------------------------------------- bad input


def call(dispatcher: RpcDispatcher, method: str, *params: Any) -> dict[str, Any]:
    return dispatcher.handle({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})


def assert_json_rpc_answer(answer: Any) -> None:
    assert isinstance(answer, dict) and answer["jsonrpc"] == "2.0"
    assert ("result" in answer) != ("error" in answer), answer
    if "error" in answer:
        assert answer["error"]["code"] in KNOWN_CODES, answer
        assert answer["error"]["message"] != "internal error", answer


_HEXISH = st.one_of(
    st.sampled_from(
        [
            "0x",
            "0x0",
            "0X1",
            "0xzz",
            "0x" + "f" * 80,
            "0x" + "f" * 16,
            "latest",
            "pending",
            "earliest",
            "safe",
            "-0x1",
            "0x-1",
            " 0x1",
            "0x1 ",
            "0x" + "ab" * 20,
            "0x" + "00" * 32,
        ]
    ),
    st.binary(max_size=40).map(lambda b: "0x" + b.hex()),
)
_KEYS = st.one_of(
    st.sampled_from(
        [
            "from",
            "to",
            "data",
            "input",
            "value",
            "gas",
            "gasPrice",
            "maxFeePerGas",
            "nonce",
            "address",
            "topics",
            "fromBlock",
            "toBlock",
            "blockHash",
            "blockNumber",
            "chainId",
            "accessList",
            "storageKeys",
        ]
    ),
    st.text(max_size=8),
)
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**300), max_value=2**300)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | _HEXISH,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=5),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=st.data(), params=st.lists(_JSON, max_size=4))
def test_any_params_to_any_method_get_an_answer(
    chain: EmbeddedChain, drawn: st.DataObject, params: list[Any]
) -> None:
    dispatcher = RpcDispatcher(chain)
    method = drawn.draw(st.sampled_from(sorted(dispatcher.method_names)))
    assert_json_rpc_answer(call(dispatcher, method, *params))


@settings(max_examples=200, deadline=None)
@given(body=st.one_of(st.binary(max_size=200), _JSON.map(lambda v: json.dumps(v).encode())))
def test_any_body_gets_a_json_rpc_answer(chain: EmbeddedChain, body: bytes) -> None:
    answer = json.loads(RpcDispatcher(chain).handle_bytes(body))
    for entry in answer if isinstance(answer, list) else [answer]:
        assert_json_rpc_answer(entry)


@pytest.mark.parametrize("request_id", [{"a": 1}, [1], True], ids=["object", "array", "boolean"])
def test_ids_that_are_not_scalars_are_invalid_requests(
    chain: EmbeddedChain, request_id: Any
) -> None:
    answer = RpcDispatcher(chain).handle(
        {"jsonrpc": "2.0", "id": request_id, "method": "eth_chainId"}
    )
    assert answer == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32600, "message": "invalid request id"},
    }


def test_out_of_range_numbers_are_invalid_params(chain: EmbeddedChain) -> None:
    dispatcher = RpcDispatcher(chain)
    for method, params in (
        ("eth_getBlockByNumber", ["0x" + "f" * 17, False]),
        ("eth_getBlockByNumber", [-1, False]),
        ("eth_getBalance", ["0x" + "11" * 20, "0x" + "f" * 70]),
        ("eth_getStorageAt", ["0x" + "11" * 20, "0x" + "1" * 65, "latest"]),
        ("eth_feeHistory", ["0x" + "f" * 65, "latest", []]),
        ("eth_getBlockByNumber", ["latest", "yes"]),
    ):
        assert call(dispatcher, method, *params)["error"]["code"] == -32602, (method, params)


def test_a_call_the_sender_cannot_pay_for_is_refused_in_geths_words(
    chain: EmbeddedChain,
) -> None:
    dispatcher = RpcDispatcher(chain)
    pauper = "0x" + "12" * 20
    tx = {"from": pauper, "to": "0x" + "11" * 20, "value": "0x10"}
    message = (
        "insufficient funds for gas * price + value: address "
        "0x1212121212121212121212121212121212121212 have 0 want 16"
    )
    for method in ("eth_call", "eth_estimateGas"):
        assert call(dispatcher, method, tx)["error"] == {"code": -32000, "message": message}


# ---------------------------------------------------------- WebSocket back-pressure


@pytest.mark.parametrize(
    ("max_messages", "max_bytes", "max_connections", "reason"),
    [
        (4, 64 * 2**20, 64, "more than 4 messages unread"),
        (1000, 200, 64, "more than 200 bytes unread"),
        (4, 64 * 2**20, 0, "at most 0 WebSocket connections"),
    ],
    ids=["messages", "bytes", "connections"],
)
def test_a_websocket_client_that_never_reads_is_disconnected(
    chain: EmbeddedChain,
    monkeypatch: pytest.MonkeyPatch,
    max_messages: int,
    max_bytes: int,
    max_connections: int,
    reason: str,
) -> None:
    """Requests keep coming but no answer is read: past the outbox bound (in messages or
    in bytes) the server closes the connection (1008, saying why) instead of queueing
    answers without end; and past the bound on connections, which bounds what all of
    them hold together, a new one is refused at the handshake (1013)."""
    monkeypatch.setattr(_websocket, "MAX_QUEUED_BYTES", max_bytes)
    monkeypatch.setattr(_websocket, "MAX_CONNECTIONS", max_connections)
    app = make_app(chain, max_queued_messages=max_messages)
    sent: list[dict[str, Any]] = []

    async def scenario() -> None:
        stuck = asyncio.Event()  # never set: the client never takes a message
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        inbox.put_nowait({"type": "websocket.connect"})
        for i in range(50):
            body = json.dumps({"jsonrpc": "2.0", "id": i, "method": "eth_chainId"})
            inbox.put_nowait({"type": "websocket.receive", "text": body})

        async def receive() -> dict[str, Any]:
            if inbox.empty():
                await stuck.wait()
            return await inbox.get()

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            if message["type"] == "websocket.send":
                await stuck.wait()

        scope = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "path": "/",
            "root_path": "",
            "scheme": "ws",
            "query_string": b"",
            "headers": [],
            "server": ("127.0.0.1", 8545),
            "client": ("127.0.0.1", 50000),
            "subprotocols": [],
        }
        await asyncio.wait_for(app(scope, receive, send), timeout=60)

    asyncio.run(scenario())
    kinds = [m["type"] for m in sent]
    if max_connections == 0:  # no room: refused at the handshake, nothing queued
        assert sent == [{"type": "websocket.close", "code": 1013, "reason": reason}]
        return
    assert kinds[0] == "websocket.accept"
    assert kinds.count("websocket.send") == 1  # the writer is stuck on the first answer
    assert sent[-1]["type"] == "websocket.close" and sent[-1]["code"] == 1008
    assert reason in sent[-1]["reason"]


def test_a_batch_answer_stops_growing_at_its_limit(
    chain: EmbeddedChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past geth's batch response limit (25 MiB; 200 bytes here) the remaining entries
    are refused unexecuted with geth's -32003."""
    monkeypatch.setattr(rpc, "MAX_BATCH_RESPONSE_BYTES", 200)
    batch = [{"jsonrpc": "2.0", "id": i, "method": "eth_chainId"} for i in range(20)]
    answers = json.loads(RpcDispatcher(chain).handle_bytes(json.dumps(batch).encode()))
    assert [a["id"] for a in answers] == list(range(20))
    served = [a for a in answers if "result" in a]
    refused = [a for a in answers if "error" in a]
    assert 0 < len(served) < 20 and answers[: len(served)] == served
    assert all(a["error"] == {"code": -32003, "message": "response too large"} for a in refused)


def test_answers_with_integers_past_64_bits_are_still_encoded() -> None:
    from ailedger.chain.embedded.rpc import _dumps

    assert json.loads(_dumps({"id": 1, "result": 2**70})) == {"id": 1, "result": 2**70}
    assert _dumps({"id": 1, "result": "0x1"}) == b'{"id":1,"result":"0x1"}'
