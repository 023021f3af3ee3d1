"""The embedded chain's HTTP JSON-RPC server refuses bad input the way geth does.

One server (uvicorn in a thread, bound to 127.0.0.1) serves a chain with ailedger's
contracts for the whole module. Every refusal is followed by a request that must still
be answered, so a bad request can never take the node down.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import rlp  # type: ignore[import-untyped]
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.abi import function_signature_to_4byte_selector
from tests.chain.rpc_server import Served, served_chain

from ailedger.chain.compiler import compile_contract
from ailedger.chain.connection import connect, connect_rpc
from ailedger.chain.contracts import TokenClient
from ailedger.chain.deploy import TOKEN_INITIAL_SUPPLY, find_deployment
from ailedger.chain.embedded.node import DEFAULT_CHAIN_ID
from ailedger.chain.embedded.server import MAX_REQUEST_BYTES
from ailedger.chain.transactions import fund_from_dev_account
from ailedger.errors import TransactionRevertedError

pytestmark = pytest.mark.integration

AIL = 10**18
ETHER = 10**18
MAX_FEE = 10 * 10**9


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, contract_cache: Path) -> Iterator[Served]:
    with served_chain(tmp_path_factory.mktemp("rpc") / "chain", contract_cache) as served:
        yield served


@pytest.fixture
def funded(served: Served) -> LocalAccount:
    account: LocalAccount = Account.create()
    raw = served.node.sign_as_operator({"to": account.address, "value": 10 * ETHER})
    tx_hash = served.node.send_raw_transaction(raw)
    assert served.node.wait_idle()
    assert served.node.receipt(tx_hash) is not None
    return account


def signed(account: LocalAccount, **overrides: Any) -> str:
    fields: dict[str, Any] = {
        "chainId": DEFAULT_CHAIN_ID,
        "nonce": 0,
        "to": "0x" + "11" * 20,
        "value": 1,
        "gas": 21_000,
        "maxFeePerGas": MAX_FEE,
        "maxPriorityFeePerGas": 0,
    }
    fields.update(overrides)
    fields = {k: v for k, v in fields.items() if v is not None}
    return "0x" + bytes(account.sign_transaction(fields).raw_transaction).hex()


def send_raw_error(served: Served, raw: str) -> dict[str, Any]:
    error = served.error("eth_sendRawTransaction", raw)
    served.assert_alive()
    return error


# --------------------------------------------------------------- raw transactions


def test_a_valid_transaction_is_accepted_and_mined(served: Served, funded: LocalAccount) -> None:
    raw = signed(funded)
    tx_hash = served.result("eth_sendRawTransaction", raw)
    assert (
        tx_hash
        == "0x"
        + bytes(
            Account.sign_transaction(
                {
                    "chainId": DEFAULT_CHAIN_ID,
                    "nonce": 0,
                    "to": "0x" + "11" * 20,
                    "value": 1,
                    "gas": 21_000,
                    "maxFeePerGas": MAX_FEE,
                    "maxPriorityFeePerGas": 0,
                },
                funded.key,
            ).hash
        ).hex()
    )
    assert served.node.wait_idle()
    receipt = served.result("eth_getTransactionReceipt", tx_hash)
    assert receipt["status"] == "0x1" and receipt["transactionHash"] == tx_hash
    # the same bytes again: geth's "already known"
    assert send_raw_error(served, raw) == {"code": -32000, "message": "already known"}


def test_malformed_raw_transactions(served: Served, funded: LocalAccount) -> None:
    garbage = send_raw_error(served, "0xzz12")
    assert garbage["code"] == -32602 and "invalid argument" in garbage["message"]
    not_hex = send_raw_error(served, "f86b")
    assert not_hex["code"] == -32602
    truncated = send_raw_error(served, signed(funded)[:-10])
    assert truncated["code"] == -32000
    assert truncated["message"].startswith("rlp: invalid transaction encoding")
    nonsense = send_raw_error(served, "0x" + "ff" * 40)
    assert nonsense["code"] == -32000 and nonsense["message"].startswith("rlp:")
    empty = send_raw_error(served, "0x")
    assert empty["code"] == -32000 and empty["message"].startswith("rlp:")
    # well-formed envelopes whose signature values no key can make
    fields = rlp.decode(bytes.fromhex(signed(funded)[4:]))  # after the type byte 0x02
    for position, value in ((-2, b"\xff" * 32), (-2, b""), (-3, b"\x05")):  # r, r, y_parity
        forged = list(fields)
        forged[position] = value
        raw = "0x02" + rlp.encode(forged).hex()
        assert send_raw_error(served, raw) == {"code": -32000, "message": "invalid sender"}
    too_many = served.error("eth_sendRawTransaction", signed(funded), "0x00")
    assert too_many["code"] == -32602
    served.assert_alive()


def test_wrong_chain_id(served: Served, funded: LocalAccount) -> None:
    error = send_raw_error(served, signed(funded, chainId=1))
    assert error == {
        "code": -32000,
        "message": f"invalid chain id for signer: have 1 want {DEFAULT_CHAIN_ID}",
    }


def test_legacy_transaction_without_eip155_chain_id(served: Served, funded: LocalAccount) -> None:
    raw = signed(
        funded, chainId=None, maxFeePerGas=None, maxPriorityFeePerGas=None, gasPrice=MAX_FEE
    )
    assert raw[2:4] != "02"  # a legacy envelope, v = 27/28
    error = send_raw_error(served, raw)
    assert error == {
        "code": -32000,
        "message": "only replay-protected (EIP-155) transactions allowed over RPC",
    }
    # the same, replay-protected, is fine
    legacy = signed(funded, maxFeePerGas=None, maxPriorityFeePerGas=None, gasPrice=MAX_FEE)
    assert served.result("eth_sendRawTransaction", legacy).startswith("0x")
    assert served.node.wait_idle()


def test_nonce_too_low_and_too_high(served: Served, funded: LocalAccount) -> None:
    served.result("eth_sendRawTransaction", signed(funded, nonce=0))
    assert served.node.wait_idle()
    who = funded.address
    low = send_raw_error(served, signed(funded, nonce=0, value=2))
    assert low == {"code": -32000, "message": f"nonce too low: address {who}, tx: 0 state: 1"}
    # a nonce above the next is held until the gap fills (tests/chain/test_txpool.py),
    # as geth does; the pending nonce counts only transactions that can be sealed
    assert served.result("eth_sendRawTransaction", signed(funded, nonce=5)).startswith("0x")
    assert served.result("eth_getTransactionCount", who, "pending") == "0x1"


def test_insufficient_funds(served: Served) -> None:
    pauper = Account.create()
    error = send_raw_error(served, signed(pauper, value=5))
    want = 21_000 * MAX_FEE + 5
    assert error == {
        "code": -32000,
        "message": "insufficient funds for gas * price + value: "
        f"address {pauper.address} have 0 want {want}",
    }


def test_gas_limit_above_the_block_limit(served: Served, funded: LocalAccount) -> None:
    limit = int(served.result("eth_getBlockByNumber", "latest", False)["gasLimit"], 16)
    error = send_raw_error(served, signed(funded, gas=limit + 1))
    assert error == {"code": -32000, "message": "exceeds block gas limit"}


def test_intrinsic_gas_too_low(served: Served, funded: LocalAccount) -> None:
    error = send_raw_error(served, signed(funded, gas=20_000))
    assert error == {"code": -32000, "message": "intrinsic gas too low: have 20000, want 21000"}
    with_data = send_raw_error(served, signed(funded, gas=21_000, data=b"\x01\x00"))
    assert with_data == {
        "code": -32000,
        "message": "intrinsic gas too low: have 21000, want 21020",  # 16 + 4 per EIP-2028
    }
    legacy = signed(
        funded, maxFeePerGas=None, maxPriorityFeePerGas=None, gasPrice=MAX_FEE, gas=20_000
    )
    assert send_raw_error(served, legacy) == error


def test_fee_below_the_base_fee(served: Served, funded: LocalAccount) -> None:
    error = send_raw_error(served, signed(funded, maxFeePerGas=1))
    assert error["code"] == -32000
    assert error["message"].startswith(
        f"max fee per gas less than block base fee: address {funded.address}, maxFeePerGas: 1,"
    )


# ------------------------------------------------------------- protocol errors


def test_unknown_method(served: Served) -> None:
    assert served.error("eth_mine") == {
        "code": -32601,
        "message": "the method eth_mine does not exist/is not available",
    }
    served.assert_alive()


def test_invalid_json(served: Served) -> None:
    for body in (b'{"jsonrpc": "2.0", "method": ', b"\xff\xfe", b""):
        answer = served.post(body)
        assert answer["error"]["code"] == -32700 and answer["id"] is None
        served.assert_alive()


def test_deep_nesting_and_huge_numbers_are_parse_errors(served: Served) -> None:
    for body in (
        b"[" * 100_000 + b"]" * 100_000,
        b'{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":' + b"[" * 5000 + b"]}",
        b'{"jsonrpc":"2.0","id":' + b"9" * 5000 + b',"method":"eth_chainId"}',
    ):
        answer = served.post(body)
        assert answer["error"]["code"] == -32700 and answer["id"] is None
    served.assert_alive()


def test_invalid_requests(served: Served) -> None:
    for body in ({"jsonrpc": "2.0", "id": 3}, 42, "eth_blockNumber", {"method": 5}):
        assert served.post(body)["error"]["code"] == -32600
    answer = served.post({"jsonrpc": "2.0", "id": 9, "method": "eth_blockNumber", "params": {}})
    assert answer == {
        "jsonrpc": "2.0",
        "id": 9,
        "error": {"code": -32602, "message": "params must be an array"},
    }
    bad_param = served.error("eth_getBalance", "0x1234")
    assert bad_param["code"] == -32602
    assert served.error("eth_getBalance", "0x" + "11" * 20, "0x" + "f" * 10) == {
        "code": -32000,
        "message": "header not found",
    }
    served.assert_alive()


def test_oversized_requests_get_413(served: Served) -> None:
    small = b'{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}'
    at_limit = small + b" " * (MAX_REQUEST_BYTES - len(small))
    assert "result" in served.post(at_limit)
    over = at_limit + b" "
    response = served.http.post(served.url, content=over)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == -32600
    # without a Content-Length (chunked), the limit applies while reading
    response = served.http.post(
        served.url, content=iter([over[i : i + 65536] for i in range(0, len(over), 65536)])
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    served.assert_alive()


def test_only_post_is_json_rpc(served: Served) -> None:
    response = served.http.get(served.url)
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert served.http.post(served.url + "/other", content=b"{}").status_code == 404
    host, port = served.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(b"POST / HTTP/1.1\r\nHost: node\r\nContent-Length: x\r\n\r\n{}")
        status_line = raw.recv(100).split(b"\r\n")[0]
    assert status_line.split()[1] in (b"400", b"413")  # the HTTP parser or the node refuses
    served.assert_alive()


def test_batches_answer_each_entry(served: Served) -> None:
    answer = served.post(
        [
            {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
            {"jsonrpc": "2.0", "id": 2, "method": "no_such_method", "params": []},
            7,
            {
                "jsonrpc": "2.0",
                "id": "four",
                "method": "eth_sendRawTransaction",
                "params": ["0x00"],
            },
            {"jsonrpc": "2.0", "id": 5, "method": "eth_getBalance", "params": ["0xnothex"]},
            {"jsonrpc": "2.0", "id": 6, "method": "eth_blockNumber"},
        ]
    )
    assert [entry["id"] for entry in answer] == [1, 2, None, "four", 5, 6]
    assert answer[0]["result"] == hex(DEFAULT_CHAIN_ID)
    assert [entry.get("error", {}).get("code") for entry in answer] == [
        None,
        -32601,
        -32600,
        -32000,
        -32602,
        None,
    ]
    assert int(answer[5]["result"], 16) == served.node.head().block_number
    assert served.post([])["error"] == {"code": -32600, "message": "empty batch"}
    too_big = [{"jsonrpc": "2.0", "id": i, "method": "eth_chainId"} for i in range(1001)]
    assert served.post(too_big)["error"]["code"] == -32600
    served.assert_alive()


# ---------------------------------------------------------------------- reverts


def test_eth_call_revert_carries_reason_and_data(served: Served) -> None:
    token = served.deployment.address("Token")
    data = function_signature_to_4byte_selector("transfer(address,uint256)") + abi_encode(
        ["address", "uint256"], ["0x" + "22" * 20, 1]
    )
    call = {"from": Account.create().address, "to": token, "data": "0x" + data.hex()}
    error = served.error("eth_call", call, "latest")
    assert error["code"] == 3
    assert error["message"] == "execution reverted: transfer: amount exceeds balance"
    raw = bytes.fromhex(error["data"][2:])
    assert raw[:4] == bytes.fromhex("08c379a0")
    assert abi_decode(["string"], raw[4:]) == ("transfer: amount exceeds balance",)
    assert served.error("eth_estimateGas", call) == error
    served.assert_alive()
    # and from the deployer, which holds the supply, the same call succeeds
    call["from"] = served.deployment.deployer
    assert int(served.result("eth_call", call, "latest"), 16) == 1  # returns true


# ------------------------------------------------------------- web3.py over HTTP


def test_token_client_over_http(served: Served, tmp_path: Path) -> None:
    connection = connect_rpc(served.url)
    assert not connection.is_embedded and connection.chain_id == DEFAULT_CHAIN_ID
    web3 = connection.web3
    # the manifest comes from the node itself (ailedger_deployment), not from a file
    deployment = find_deployment(web3, tmp_path / "home")
    assert deployment == served.deployment
    abi = compile_contract("Token", served.cache_dir).abi
    alice, bob = Account.create(), Account.create()
    fund_from_dev_account(web3, alice.address, ETHER)
    token = TokenClient(web3, deployment.address("Token"), abi, alice)
    assert token.symbol() == "AIL" and token.total_supply() >= TOKEN_INITIAL_SUPPLY
    supply = token.total_supply()
    minted = token.faucet(100 * AIL)
    assert minted.block_number == served.node.head().block_number
    result = token.transfer(bob.address, 40 * AIL)
    assert result.gas_used > 21_000
    assert (token.balance_of(alice.address), token.balance_of(bob.address)) == (60 * AIL, 40 * AIL)
    assert token.total_supply() == supply + 100 * AIL
    with pytest.raises(TransactionRevertedError, match="transfer: amount exceeds balance"):
        token.transfer(bob.address, 61 * AIL)
    assert token.balance_of(alice.address) == 60 * AIL
    served.assert_alive()


def test_connect_embedded_while_served_goes_through_http(served: Served) -> None:
    # the chain directory is locked by the serving node, which announced its URL
    with connect("embedded", served.chain_dir, served.cache_dir) as connection:
        assert not connection.is_embedded
        assert served.url in connection.description
        assert int(connection.web3.eth.block_number) == served.node.head().block_number


def test_a_body_cut_off_by_a_disconnect_is_never_executed() -> None:
    import asyncio

    from ailedger.chain.embedded.server import JsonRpcOverHttp

    executed: list[bytes] = []

    class Dispatcher:
        def handle_bytes(self, body: bytes) -> bytes:
            executed.append(body)
            return b"{}"

    async def other(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("POST / is not routed further")

    app = JsonRpcOverHttp(Dispatcher(), other)  # type: ignore[arg-type]
    scope = {"type": "http", "method": "POST", "path": "/", "headers": []}
    whole = b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}'

    async def request(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        pending, sent = list(messages), []

        async def receive() -> dict[str, Any]:
            return pending.pop(0)

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(scope, receive, send)
        return sent

    cut = [
        {"type": "http.request", "body": whole[:20], "more_body": True},
        {"type": "http.disconnect"},
    ]
    assert asyncio.run(request(cut)) == [] and executed == []
    chunks = [
        {"type": "http.request", "body": whole[:20], "more_body": True},
        {"type": "http.request", "body": whole[20:], "more_body": False},
    ]
    answer = asyncio.run(request(chunks))
    assert executed == [whole] and answer[0]["status"] == 200
