"""The embedded chain node in-process: locking, persistence, batching, logs, and tries.

Everything here talks to :class:`EmbeddedChain` (and its :class:`RpcDispatcher`) directly,
without HTTP; the JSON-RPC server has its own tests in ``test_rpc_errors.py``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth.db.trie import _make_trie_root_and_nodes
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import Address
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.crypto import keccak
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ailedger.chain.compiler import compile_contract
from ailedger.chain.embedded import _vm
from ailedger.chain.embedded._ordered_trie import ordered_trie_root
from ailedger.chain.embedded.node import DEFAULT_CHAIN_ID, SERVING_FILE, EmbeddedChain
from ailedger.chain.embedded.rpc import RpcDispatcher
from ailedger.errors import ChainError, ChainLockedError, ConfigError, TransactionRejectedError

MAX_FEE = 10 * 10**9  # 10 gwei: above the base fee, which starts at 1 gwei and only falls here
ETHER = 10**18
TRANSFER_TOPIC = keccak(text="Transfer(address,address,uint256)")
APPROVAL_TOPIC = keccak(text="Approval(address,address,uint256)")


# ------------------------------------------------------------------------ helpers


def sign(
    account: LocalAccount,
    nonce: int,
    *,
    to: str | None,
    value: int = 0,
    gas: int = 21_000,
    data: bytes = b"",
    chain_id: int = DEFAULT_CHAIN_ID,
) -> bytes:
    fields: dict[str, Any] = {
        "chainId": chain_id,
        "nonce": nonce,
        "value": value,
        "gas": gas,
        "data": data,
        "maxFeePerGas": MAX_FEE,
        "maxPriorityFeePerGas": 0,
    }
    if to is not None:
        fields["to"] = to
    return bytes(account.sign_transaction(fields).raw_transaction)


def fund(chain: EmbeddedChain, count: int, wei: int = 10 * ETHER) -> list[LocalAccount]:
    """``count`` new accounts, each given ``wei`` by the operator in one block."""
    accounts = [Account.create() for _ in range(count)]
    operator = chain.operator_account
    first = chain.nonce(operator.address, pending=True)
    for i, account in enumerate(accounts):
        chain.send_raw_transaction(sign(operator, first + i, to=account.address, value=wei))
    assert chain.wait_idle()
    return accounts


def mined(chain: EmbeddedChain, tx_hash: bytes) -> dict[str, Any]:
    assert chain.wait_idle()
    receipt = chain.receipt(tx_hash)
    assert receipt is not None, f"no receipt for 0x{tx_hash.hex()}"
    return receipt


def deploy_token(chain: EmbeddedChain, token: Any, *, nonce: int, supply: int) -> tuple[bytes, str]:
    """Deploy the Token from the operator at ``nonce``: (transaction hash, address)."""
    deploy = chain.send_raw_transaction(
        sign(
            chain.operator_account,
            nonce,
            to=None,
            gas=3_000_000,
            data=token.bytecode + abi_encode(["uint256"], [supply]),
        )
    )
    return deploy, str(mined(chain, deploy)["contractAddress"])


def call_data(signature: str, types_: list[str], args: list[Any]) -> bytes:
    return function_signature_to_4byte_selector(signature) + abi_encode(types_, args)


def addr(account: LocalAccount) -> Address:
    return Address(bytes.fromhex(account.address[2:]))


def topic(address: str) -> str:
    return "0x" + "00" * 12 + address[2:].lower()


def rpc(dispatcher: RpcDispatcher, method: str, *params: Any) -> Any:
    answer = dispatcher.handle(
        {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    )
    assert "error" not in answer, answer
    return answer["result"]


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[EmbeddedChain]:
    # Not eager: these tests rely on transactions sent back to back sharing a block.
    with EmbeddedChain.open(tmp_path / "chain", eager=False) as node:
        yield node


# ------------------------------------------------------------------------ locking


def test_second_open_in_the_same_process_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "chain"
    with EmbeddedChain.open(directory):
        with pytest.raises(ChainLockedError) as info:
            EmbeddedChain.open(directory)
        message = str(info.value)
        assert f"the embedded chain in {directory} is open in another process" in message
        assert "ailedger chain serve" in message and "AILEDGER_CHAIN" in message


def test_locked_message_names_the_serving_url(tmp_path: Path) -> None:
    directory = tmp_path / "chain"
    with EmbeddedChain.open(directory) as node:
        node.announce_url("http://127.0.0.1:18545")
        with pytest.raises(ChainLockedError, match=r"served at http://127\.0\.0\.1:18545"):
            EmbeddedChain.open(directory)
    # close() withdraws the announcement, so a stale URL never outlives the owner
    assert not (directory / SERVING_FILE).exists()
    EmbeddedChain.open(directory).close()


@pytest.mark.integration
def test_second_open_from_another_process_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "chain"
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from ailedger.chain.embedded.node import EmbeddedChain
        from ailedger.errors import ChainLockedError
        try:
            EmbeddedChain.open(Path(sys.argv[1])).close()
        except ChainLockedError as exc:
            print(exc)
            sys.exit(3)
        """
    )
    with EmbeddedChain.open(directory):
        child = subprocess.run(
            [sys.executable, "-c", script, str(directory)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert child.returncode == 3, child.stderr
    assert f"the embedded chain in {directory} is open in another process" in child.stdout
    # released with the owner: the same child now opens it
    again = subprocess.run(
        [sys.executable, "-c", script, str(directory)], capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 0, again.stdout + again.stderr


def test_wrong_chain_id_is_refused_and_releases_the_lock(tmp_path: Path) -> None:
    directory = tmp_path / "chain"
    EmbeddedChain.open(directory).close()
    with pytest.raises(ConfigError, match=f"has chain id {DEFAULT_CHAIN_ID}, not 1"):
        EmbeddedChain.open(directory, chain_id=1)
    with EmbeddedChain.open(directory) as node:
        assert node.chain_id == DEFAULT_CHAIN_ID


def test_send_after_close_is_refused(tmp_path: Path) -> None:
    node = EmbeddedChain.open(tmp_path / "chain")
    operator = node.operator_account
    node.close()
    with pytest.raises(ChainError, match="shutting down"):
        node.send_raw_transaction(sign(operator, 0, to=operator.address))


# -------------------------------------------------------------------- persistence


def test_state_blocks_receipts_and_logs_survive_reopening(
    tmp_path: Path, contract_cache: Path
) -> None:
    directory = tmp_path / "chain"
    token = compile_contract("Token", contract_cache)
    with EmbeddedChain.open(directory) as node:
        operator = node.operator_account
        alice, bob = fund(node, 2)
        deploy, address = deploy_token(node, token, nonce=2, supply=1000)
        hashes = [
            node.send_raw_transaction(
                sign(
                    operator,
                    3,
                    to=address,
                    gas=200_000,
                    data=call_data(
                        "transfer(address,uint256)", ["address", "uint256"], [alice.address, 300]
                    ),
                )
            ),
            node.send_raw_transaction(sign(alice, 0, to=bob.address, value=5 * ETHER)),
        ]
        for tx_hash in hashes:
            assert mined(node, tx_hash)["status"] == "0x1"
        # the last one is still pending when close() starts: close seals it first
        last = node.send_raw_transaction(sign(bob, 0, to=alice.address, value=ETHER))
        dispatcher = RpcDispatcher(node)
        before_logs = rpc(dispatcher, "eth_getLogs", {"fromBlock": "0x0", "toBlock": "latest"})

    with EmbeddedChain.open(directory) as node:
        dispatcher = RpcDispatcher(node)
        head = node.head()
        last_receipt = mined(node, last)
        assert last_receipt["status"] == "0x1"
        assert head.block_number == int(last_receipt["blockNumber"], 16)
        receipts = {h: mined(node, h) for h in [deploy, *hashes]}
        assert all(r["status"] == "0x1" for r in receipts.values())
        assert receipts[deploy]["contractAddress"] == address
        logs = rpc(dispatcher, "eth_getLogs", {"fromBlock": "0x0", "toBlock": "latest"})
        assert logs == before_logs
        assert [entry["topics"][0] for entry in logs] == ["0x" + TRANSFER_TOPIC.hex()] * 2
        balance_call = call_data("balanceOf(address)", ["address"], [alice.address])
        answer = rpc(dispatcher, "eth_call", {"to": address, "data": "0x" + balance_call.hex()})
        assert int(answer, 16) == 300
        state = node.state_at(head)
        assert 14 * ETHER - ETHER // 100 < state.get_balance(addr(bob)) < 14 * ETHER
        assert node.nonce(operator.address) == 4
        assert node.nonce(alice.address) == 1 and node.nonce(bob.address) == 1
        # blocks and their transactions are found by number and by hash
        for h, receipt in receipts.items():
            found = node.transaction(h)
            assert found is not None
            tx, header, index = found
            assert header is not None and header.hash.hex() == receipt["blockHash"][2:]
            assert index == int(receipt["transactionIndex"], 16) and tx.hash == h
            assert node.header_by_hash(header.hash) == header
        # and the reopened chain keeps going from the right nonces
        tx_hash = node.send_raw_transaction(sign(alice, 1, to=bob.address, value=1))
        assert mined(node, tx_hash)["blockNumber"] == hex(head.block_number + 1)


def test_duplicate_transactions_are_already_known(chain: EmbeddedChain) -> None:
    (alice,) = fund(chain, 1)
    raw = sign(alice, 0, to=alice.address, value=1)
    chain.send_raw_transaction(raw)
    with pytest.raises(TransactionRejectedError, match=r"^already known$"):
        chain.send_raw_transaction(raw)  # pending
    assert chain.wait_idle()
    with pytest.raises(TransactionRejectedError, match=r"^already known$"):
        chain.send_raw_transaction(raw)  # mined


# ----------------------------------------------------------------------- batching


def test_transactions_sent_together_are_sealed_together(chain: EmbeddedChain) -> None:
    alice, bob = fund(chain, 2)
    start = chain.head().block_number
    raws = [sign(alice, n, to=bob.address, value=n + 1) for n in range(50)]
    hashes = [chain.send_raw_transaction(raw) for raw in raws]  # no waiting in between
    assert chain.nonce(alice.address, pending=True) == 50
    assert chain.wait_idle()
    receipts = [mined(chain, h) for h in hashes]
    assert all(r["status"] == "0x1" for r in receipts)
    blocks = sorted({int(r["blockNumber"], 16) for r in receipts})
    assert len(blocks) <= 5, f"50 transactions took {len(blocks)} blocks"
    assert blocks == list(range(start + 1, start + 1 + len(blocks)))  # no empty blocks
    # the chain holds them in nonce order: by block, then by index
    order = sorted(
        receipts, key=lambda r: (int(r["blockNumber"], 16), int(r["transactionIndex"], 16))
    )
    nonces = []
    for r in order:
        found = chain.transaction(bytes.fromhex(r["transactionHash"][2:]))
        assert found is not None
        nonces.append(found[0].nonce)
    assert nonces == list(range(50))
    for number in blocks:
        header = chain.header(number)
        assert header is not None
        assert header.gas_used == 21_000 * len(chain.transactions(header))
    assert chain.nonce(alice.address) == 50
    assert chain.state_at(chain.head()).get_balance(addr(bob)) == (10 * ETHER + sum(range(1, 51)))


def test_a_full_batch_is_split_across_blocks_in_order(tmp_path: Path) -> None:
    with EmbeddedChain.open(
        tmp_path / "chain", max_block_txs=8, batch_wait_s=0.2, eager=False
    ) as node:
        alice, bob = fund(node, 2)
        start = node.head().block_number
        hashes = [node.send_raw_transaction(sign(alice, n, to=bob.address)) for n in range(50)]
        assert node.wait_idle()
        receipts = [node.receipt(h) for h in hashes]
        assert all(r is not None and r["status"] == "0x1" for r in receipts)
        numbers = [int(r["blockNumber"], 16) for r in receipts if r]
        assert numbers == sorted(numbers)  # nonce order is block order
        assert numbers[0] == start + 1
        per_block = {n: numbers.count(n) for n in set(numbers)}
        assert max(per_block.values()) == 8 and len(per_block) == 7, per_block


def test_a_lone_transaction_is_sealed_without_waiting_for_company(tmp_path: Path) -> None:
    """One party waiting on each receipt must not pay the batch window (set long here,
    so waiting it out would show); a burst still shares blocks."""
    window = 5.0
    with EmbeddedChain.open(tmp_path / "chain", batch_wait_s=window) as node:
        alice, bob = fund(node, 2)
        # after a block of k the sealer waits for k: let a lone transaction set k = 1
        warm_up = node.send_raw_transaction(sign(alice, 0, to=bob.address))
        assert node.receipt(warm_up, wait_s=4 * window) is not None
        started = time.monotonic()
        for n in range(1, 4):
            sent = node.send_raw_transaction(sign(alice, n, to=bob.address))
            assert node.receipt(sent) is not None  # waits for the seal, not for the window
        assert time.monotonic() - started < window / 2
        with node._lock:  # as while a block seals: the sealer cannot start another
            burst = [node.send_raw_transaction(sign(bob, n, to=alice.address)) for n in range(20)]
        assert node.wait_idle(timeout=4 * window)
        blocks = {node.receipt(h)["blockNumber"] for h in burst}  # type: ignore[index]
        # what queued while a block sealed goes into the next one (the sealer may have
        # taken the first transaction before the lock stopped it)
        assert len(blocks) <= 2


def test_a_receipt_query_waits_for_the_block_being_sealed(tmp_path: Path) -> None:
    with EmbeddedChain.open(tmp_path / "chain", batch_wait_s=0.3, eager=False) as node:
        alice, bob = fund(node, 2)
        sent = node.send_raw_transaction(sign(alice, 0, to=bob.address))
        assert node.receipt(sent, wait_s=0) is None  # the sealer waits for company
        receipt = node.receipt(sent, wait_s=30)  # returns once sealed, long before 30 s
        assert receipt is not None and receipt["status"] == "0x1"
        # an unknown hash is not waited for (nothing would ever answer it)
        started = time.monotonic()
        assert node.receipt(b"\x01" * 32, wait_s=30) is None
        assert time.monotonic() - started < 15


def test_a_transaction_that_does_not_fit_waits_for_the_next_block(tmp_path: Path) -> None:
    with EmbeddedChain.open(tmp_path / "chain", batch_wait_s=0.5, eager=False) as node:
        alice, bob, carol = fund(node, 3)
        limit = node.head().gas_limit
        small = node.send_raw_transaction(sign(alice, 0, to=bob.address))
        # fits the block limit alone, but not after `small`'s 21000 gas
        big = node.send_raw_transaction(sign(bob, 0, to=carol.address, gas=limit - 10_000))
        after = node.send_raw_transaction(sign(carol, 0, to=alice.address))
        deadline = time.monotonic() + 10
        while node.receipt(small) is None:
            assert time.monotonic() < deadline
            time.sleep(0.002)
        # the sealer waits batch_wait_s before the next block: `big` is visibly pending
        assert node.receipt(big, wait_s=0) is None
        found = node.transaction(big)
        assert found is not None and found[1] is None and found[2] is None
        assert node.pending_count == 2
        assert node.wait_idle()
        first = node.receipt(small)
        second, third = node.receipt(big), node.receipt(after)
        assert first is not None and second is not None and third is not None
        n = int(first["blockNumber"], 16)
        assert (second["blockNumber"], second["transactionIndex"]) == (hex(n + 1), "0x0")
        assert (third["blockNumber"], third["transactionIndex"]) == (hex(n + 1), "0x1")
        assert [r["status"] for r in (first, second, third)] == ["0x1"] * 3
        assert node.dropped_reason(big) is None


def test_a_transaction_that_fails_at_sealing_is_dropped(chain: EmbeddedChain) -> None:
    alice, bob = fund(chain, 2, wei=ETHER)
    # admitted against the head state, where alice can pay for each alone ...
    spend_all = sign(alice, 0, to=bob.address, value=ETHER - 21_000 * MAX_FEE)
    first = chain.send_raw_transaction(spend_all)
    second = chain.send_raw_transaction(sign(alice, 1, to=bob.address, value=ETHER // 2))
    other = chain.send_raw_transaction(sign(bob, 0, to=alice.address, value=1))
    assert chain.wait_idle()
    # ... but not for both: the second is dropped with a reason, the others mine
    assert mined(chain, first)["status"] == "0x1"
    assert mined(chain, other)["status"] == "0x1"
    assert chain.receipt(second) is None and chain.transaction(second) is None
    reason = chain.dropped_reason(second)
    assert reason is not None and "enough balance" in reason
    assert chain.dropped_reason(first) is None and chain.dropped_reason(other) is None
    assert chain.nonce(alice.address, pending=True) == 1
    state = chain.state_at(chain.head())
    assert state.get_balance(addr(bob)) > 2 * ETHER - 10**16
    # the sealer kept going: the next block builds on that state
    again = chain.send_raw_transaction(sign(bob, 1, to=alice.address, value=ETHER // 2))
    assert mined(chain, again)["status"] == "0x1"


def test_a_block_whose_transactions_all_fail_wakes_waiters(tmp_path: Path) -> None:
    with EmbeddedChain.open(tmp_path / "chain", batch_wait_s=0.5, eager=False) as node:
        alice, bob = fund(node, 2, wei=ETHER)
        limit = node.head().gas_limit
        sink = Account.create().address
        # block n: both spend everything; the rest does not fit after them ...
        spends = [
            node.send_raw_transaction(sign(a, 0, to=sink, value=ETHER - 21_000 * MAX_FEE))
            for a in (alice, bob)
        ]
        late = [
            node.send_raw_transaction(sign(bob, 1, to=alice.address, gas=limit - 30_000)),
            node.send_raw_transaction(sign(alice, 1, to=sink, value=ETHER // 2)),
        ]
        # ... so block n+1 would hold only transactions whose senders are now broke
        started = time.monotonic()
        assert node.wait_idle(timeout=5)
        assert time.monotonic() - started < 2.5, "wait_idle slept until its timeout"
        assert [node.receipt(h) is not None for h in spends] == [True, True]
        assert [node.receipt(h) for h in late] == [None, None]
        assert "cannot afford txn gas" in (node.dropped_reason(late[0]) or "")
        assert "not have enough balance" in (node.dropped_reason(late[1]) or "")
        assert node.head().block_number == int(node.receipt(spends[0])["blockNumber"], 16)  # type: ignore[index]
        assert node.nonce(alice.address, pending=True) == node.nonce(bob.address, pending=True) == 1


# --------------------------------------------------------------------- timestamps


def test_timestamps_never_go_backwards(
    chain: EmbeddedChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    (alice,) = fund(chain, 1)
    nonce = iter(range(100))

    def seal_one() -> int:
        tx_hash = chain.send_raw_transaction(sign(alice, next(nonce), to=alice.address))
        number = int(mined(chain, tx_hash)["blockNumber"], 16)
        header = chain.header(number)
        assert header is not None
        return int(header.timestamp)

    now = seal_one()
    # the wall clock steps back an hour (NTP, a VM restore): blocks keep the parent's time
    monkeypatch.setattr(_vm, "time", types.SimpleNamespace(time=lambda: now - 3600.0))
    assert seal_one() == now
    assert seal_one() == now
    monkeypatch.setattr(_vm, "time", types.SimpleNamespace(time=lambda: now + 100.0))
    assert seal_one() == now + 100
    monkeypatch.undo()
    for _ in range(5):
        seal_one()
    stamps = []
    for number in range(chain.head().block_number + 1):
        header = chain.header(number)
        assert header is not None
        stamps.append(header.timestamp)
    assert stamps == sorted(stamps)
    assert stamps[-1] == now + 100  # the real clock has not caught up with the jump


# ---------------------------------------------------------------------- eth_getLogs


def test_get_logs_filters(chain: EmbeddedChain, contract_cache: Path) -> None:
    token = compile_contract("Token", contract_cache)
    operator = chain.operator_account
    alice, bob = fund(chain, 2)
    dispatcher = RpcDispatcher(chain)
    op_nonce = chain.nonce(operator.address, pending=True)
    deploy_data = token.bytecode + abi_encode(["uint256"], [10**6])
    deploys = [
        chain.send_raw_transaction(
            sign(operator, op_nonce + i, to=None, gas=3_000_000, data=deploy_data)
        )
        for i in range(2)
    ]
    token_a, token_b = (mined(chain, h)["contractAddress"] for h in deploys)
    deploy_block = int(mined(chain, deploys[0])["blockNumber"], 16)  # both, unless split
    transfer = ("transfer(address,uint256)", ["address", "uint256"])
    approve = ("approve(address,uint256)", ["address", "uint256"])
    steps = [  # one block each
        (token_a, call_data(*transfer, [alice.address, 10])),
        (token_a, call_data(*approve, [bob.address, 5])),
        (token_b, call_data(*transfer, [bob.address, 7])),
    ]
    receipts = []
    for i, (to, data) in enumerate(steps):
        tx = sign(operator, op_nonce + 2 + i, to=to, gas=200_000, data=data)
        receipts.append(mined(chain, chain.send_raw_transaction(tx)))
    blocks = [int(r["blockNumber"], 16) for r in receipts]
    assert blocks == [blocks[0], blocks[0] + 1, blocks[0] + 2] and blocks[0] > deploy_block
    mints = rpc(
        dispatcher, "eth_getLogs", {"fromBlock": hex(deploy_block), "toBlock": hex(blocks[0] - 1)}
    )
    every = mints + [entry for r in receipts for entry in r["logs"]]
    assert len(every) == 5

    def logs(**flt: Any) -> list[dict[str, Any]]:
        flt.setdefault("fromBlock", "earliest")
        flt.setdefault("toBlock", "latest")
        return list(rpc(dispatcher, "eth_getLogs", flt))

    mint_a, mint_b, to_alice, approval, to_bob = every
    assert logs() == every
    assert logs(address=token_a) == [mint_a, to_alice, approval]
    assert logs(address=token_a.lower()) == [mint_a, to_alice, approval]
    assert logs(address=[token_b, token_a]) == every
    assert logs(topics=["0x" + TRANSFER_TOPIC.hex()]) == [mint_a, mint_b, to_alice, to_bob]
    assert logs(topics=[["0x" + APPROVAL_TOPIC.hex()]]) == [approval]
    both = [["0x" + TRANSFER_TOPIC.hex(), "0x" + APPROVAL_TOPIC.hex()]]
    assert logs(address=token_a, topics=both) == [mint_a, to_alice, approval]
    # null positions match anything
    assert logs(topics=[None, topic(operator.address)]) == [to_alice, approval, to_bob]
    assert logs(topics=[None, None, topic(bob.address)]) == [approval, to_bob]
    assert logs(topics=[None, None, [topic(bob.address), topic(alice.address)]]) == [
        to_alice,
        approval,
        to_bob,
    ]
    assert logs(topics=[[], None, topic(alice.address)]) == [to_alice]
    assert logs(topics=["0x" + APPROVAL_TOPIC.hex(), None, topic(alice.address)]) == []
    assert logs(topics=[None, None, None, "0x" + "11" * 32]) == []  # Transfer has 3 topics
    # block ranges, inclusive at both ends; "latest" by default
    assert logs(fromBlock=hex(blocks[1]), toBlock=hex(blocks[2])) == [approval, to_bob]
    assert logs(fromBlock=hex(blocks[0]), toBlock=hex(blocks[0])) == [to_alice]
    assert logs(fromBlock=hex(blocks[2])) == [to_bob]
    future = dispatcher.handle(
        {
            "jsonrpc": "2.0",
            "id": 6,
            "method": "eth_getLogs",
            "params": [{"fromBlock": hex(blocks[2] + 1)}],
        }
    )
    assert future["error"] == {"code": -32000, "message": "header not found"}
    assert rpc(dispatcher, "eth_getLogs", {}) == [to_bob]
    # a block by hash; a range beside it is refused, as geth refuses it (null is no range)
    by_hash = {"blockHash": receipts[1]["blockHash"]}
    assert rpc(dispatcher, "eth_getLogs", by_hash) == [approval]
    assert rpc(dispatcher, "eth_getLogs", {**by_hash, "fromBlock": None}) == [approval]
    for bounds in (
        {"fromBlock": "earliest"},
        {"toBlock": hex(blocks[1])},
        {"fromBlock": "0x0", "toBlock": "latest"},
    ):
        both = dispatcher.handle(
            {"jsonrpc": "2.0", "id": 5, "method": "eth_getLogs", "params": [{**by_hash, **bounds}]}
        )
        assert both["error"] == {
            "code": -32602,
            "message": "invalid argument 0: cannot specify both BlockHash and FromBlock/ToBlock, "
            "choose one or the other",
        }
    unknown = dispatcher.handle(
        {
            "jsonrpc": "2.0",
            "id": 7,
            "method": "eth_getLogs",
            "params": [{"blockHash": "0x" + "ab" * 32}],
        }
    )
    assert unknown["error"] == {"code": -32000, "message": "unknown block"}
    bad = dispatcher.handle(
        {"jsonrpc": "2.0", "id": 8, "method": "eth_getLogs", "params": [{"address": "0x1234"}]}
    )
    assert bad["error"]["code"] == -32602
    # every log carries its position, consistent with the receipts
    same_block = mint_a["blockNumber"] == mint_b["blockNumber"]
    assert [int(entry["logIndex"], 16) for entry in every] == [0, int(same_block), 0, 0, 0]
    assert [entry["transactionHash"] for entry in every[2:]] == [
        r["transactionHash"] for r in receipts
    ]
    assert to_alice["data"] == "0x" + (10).to_bytes(32, "big").hex()


# --------------------------------------------------------------------- trie roots


# The index keys rlp(i) change shape at 1 (0x80 is rlp(0)), 128 and 256, and nodes
# shorter than 32 bytes are embedded in their parent; the examples pin those edges.
@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(st.binary(min_size=1, max_size=8), st.binary(min_size=1, max_size=120)),
        max_size=300,
    )
)
@example([])
@example([b"\x01"])
@example([b"a" * 40])
@example([b"x"] * 17)
@example([bytes([i % 251 + 1]) * (i % 50 + 1) for i in range(129)])
@example([b"y" * 33] * 257)
@example([b"z"] * 300)
def test_ordered_trie_root_matches_py_evm(values: list[bytes]) -> None:
    # b"" is left out: HexaryTrie treats an empty value as a deletion, and an encoded
    # transaction or receipt (the only values sealed blocks hash) is never empty.
    root, nodes = ordered_trie_root(values)
    expected_root, expected_nodes = _make_trie_root_and_nodes(tuple(values))
    assert root == expected_root
    assert nodes == expected_nodes


def test_head_number_follows_committed_blocks(tmp_path: Path) -> None:
    with EmbeddedChain.open(tmp_path / "chain") as node:
        assert node.head_number == node.head().block_number
        alice, bob = fund(node, 2)
        sent = node.send_raw_transaction(sign(alice, 0, to=bob.address))
        receipt = node.receipt(sent)
        assert receipt is not None
        assert node.head_number == int(receipt["blockNumber"], 16) == node.head().block_number


def test_next_base_fee_is_the_next_headers(tmp_path: Path) -> None:
    with EmbeddedChain.open(tmp_path / "chain") as node:
        alice, bob = fund(node, 2)
        for n in range(3):
            assert node.receipt(node.send_raw_transaction(sign(alice, n, to=bob.address)))
            head = node.head()
            expected = node._chain.create_header_from_parent(head).base_fee_per_gas
            assert node.next_base_fee() == expected


def test_recent_receipts_come_from_memory_and_older_ones_from_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ailedger.chain.embedded import node as node_module

    monkeypatch.setattr(node_module, "_RECENT_RECEIPTS", 2)
    with EmbeddedChain.open(tmp_path / "chain") as node:
        alice, bob = fund(node, 2)
        sent = [node.send_raw_transaction(sign(alice, n, to=bob.address)) for n in range(3)]
        served = [node.receipt(h) for h in sent]
        assert len(node._recent_receipts) == 2 and sent[0] not in node._recent_receipts
        assert all(r is not None and r["status"] == "0x1" for r in served)
        assert node.receipt(sent[0]) == served[0]  # read back from the database
    with EmbeddedChain.open(tmp_path / "chain") as reopened:
        assert [reopened.receipt(h) for h in sent] == served


def test_sealed_blocks_pass_py_evms_own_import_validation(
    tmp_path: Path, contract_cache: Path
) -> None:
    """Every block the sealer built, re-executed by py-evm's import path from its parent,
    comes out identical: state, transaction and receipt roots, bloom, gas used, hash.
    Blocks with one and with several transactions, a deployment, logs, a revert."""
    import sqlite3

    from eth.db.atomic import AtomicDB

    from ailedger.chain.embedded._kvstore import StagedSqliteDB

    directory = tmp_path / "chain"
    token = compile_contract("Token", contract_cache)
    with EmbeddedChain.open(directory) as node:
        operator = node.operator_account
        alice, bob = fund(node, 2)  # one block, two transfers
        _, address = deploy_token(node, token, nonce=2, supply=1000)
        transfer = ("transfer(address,uint256)", ["address", "uint256"])
        together = [
            sign(
                operator, 3, to=address, gas=200_000, data=call_data(*transfer, [alice.address, 30])
            ),
            sign(alice, 0, to=bob.address, value=ETHER),
            # more than the sender holds: the token reverts, the transaction is included
            sign(
                bob, 0, to=address, gas=200_000, data=call_data(*transfer, [alice.address, 10**9])
            ),
        ]
        hashes = [node.send_raw_transaction(raw) for raw in together]
        statuses = [mined(node, h)["status"] for h in hashes]
        assert statuses == ["0x1", "0x1", "0x0"]
        head = node.head().block_number

    conn = sqlite3.connect(directory / "chain.sqlite")
    try:
        replay = _replay_chain(AtomicDB(StagedSqliteDB(conn)))  # staged writes, never committed
        assert head >= 3
        for number in range(1, head + 1):
            block = replay.get_canonical_block_by_number(number)
            result = replay.import_block(block, perform_validation=True)
            assert result.imported_block.hash == block.hash
            assert result.imported_block.header.state_root == block.header.state_root
    finally:
        conn.close()


def _replay_chain(db: Any) -> Any:
    """py-evm's own chain over ``db``, accepting what the embedded chain documents as
    its one departure: blocks sealed within one second share their parent's timestamp."""
    from eth.vm.forks.shanghai import ShanghaiVM

    class SameSecondShanghaiVM(ShanghaiVM):  # type: ignore[misc]
        @classmethod
        def validate_header(cls, header: Any, parent_header: Any) -> None:
            if header.timestamp == parent_header.timestamp:
                parent_header = parent_header.copy(timestamp=header.timestamp - 1)
            super().validate_header(header, parent_header)

    chain_class = type(
        "ReplayChain",
        (_vm.chain_class(DEFAULT_CHAIN_ID),),
        {"vm_configuration": ((0, SameSecondShanghaiVM),)},
    )
    return chain_class(db)


def test_a_receipt_never_names_a_block_beyond_the_head(tmp_path: Path) -> None:
    """The reader sees a block's receipts the moment its commit returns, a moment before
    the head moves: a receipt read from the store in that moment is held back."""
    with EmbeddedChain.open(tmp_path / "chain") as node:
        (alice,) = fund(node, 1)
        tx_hash = node.send_raw_transaction(sign(alice, 0, to=alice.address, value=1))
        block = int(mined(node, tx_hash)["blockNumber"], 16)
        node._recent_receipts.clear()  # answered from the store, as an older receipt is
        head = node._head
        node._head = node.header(block - 1)  # as in the moment after the commit
        try:
            assert node.receipt(tx_hash, wait_s=0) is None
        finally:
            node._head = head
        assert int(node.receipt(tx_hash, wait_s=0)["blockNumber"], 16) == block  # type: ignore[index]
