"""kill -9 durability of the embedded chain, served over JSON-RPC by a child process.

Signed transactions stream in while the node is killed with SIGKILL at random moments;
after each restart on the same directory the store must open cleanly, every receipt the
node ever returned must come back identical, the block chain must link up from genesis
to head, exactly the transactions below each sender's nonce must be in it (a queued but
unsealed transaction is lost, never half-applied), and the node must go on accepting
transactions at the nonces it reports.

The random seed is printed (``-s`` shows it) and can be fixed with
``AILEDGER_DURABILITY_SEED`` to replay a failing sequence of choices.

A second test does the same under the pending pool: nonces arrive shuffled (later ones
held until the gap fills) and some are replaced by a higher fee at once; after each
restart every acknowledged receipt is back, each nonce below the sender's holds exactly
one of the transactions sent for it, and a replaced transaction never has a receipt next
to its replacement's.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from ailedger.chain.embedded.node import DEFAULT_CHAIN_ID, SERVING_FILE, EmbeddedChain
from ailedger.chain.embedded.rpc import MAX_BATCH

pytestmark = [pytest.mark.slow, pytest.mark.integration]

# Each run kills at 12 moments drawn from a fresh seed (printed on failure), so the
# moments tried add up across runs; 20 per run cost the suite 15 s more.
KILLS = 12
SENDERS = 4
MAX_FEE = 10 * 10**9  # the base fee starts at 1 gwei and falls on these near-empty blocks
TX_GAS = 40_000
SEED = int(os.environ.get("AILEDGER_DURABILITY_SEED", "0") or 0) or random.SystemRandom().randrange(
    1, 2**31
)

CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from ailedger.chain.embedded.node import EmbeddedChain
    from ailedger.chain.embedded.server import serve
    serve(EmbeddedChain.open(Path(sys.argv[1])), "127.0.0.1", int(sys.argv[2]))
    """
)

# A contract that logs its calldata (LOG0) and accepts ether: runtime
# CALLDATASIZE PUSH0 PUSH0 CALLDATACOPY CALLDATASIZE PUSH0 LOG0 STOP, returned by the
# init code PUSH8 <runtime> PUSH0 MSTORE PUSH1 8 PUSH1 24 RETURN.
LOGGER_RUNTIME = bytes.fromhex("365f5f37365fa000")
LOGGER_INIT = bytes.fromhex("67") + LOGGER_RUNTIME + bytes.fromhex("5f5260086018f3")


class NodeDied(Exception):
    pass


class ServedNode:
    """``EmbeddedChain.open`` + ``server.serve`` in a child process."""

    def __init__(self, directory: Path, logs: Path) -> None:
        self.directory = directory
        self.logs = logs
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.starts = 0
        self.http = httpx.Client(timeout=30)

    def start(self) -> float:
        began = time.monotonic()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.starts += 1
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", CHILD, str(self.directory), str(port)],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"the node exited at start:\n{self.stderr()}")
            try:
                self.call("eth_blockNumber")
                return time.monotonic() - began
            except httpx.TransportError:
                assert time.monotonic() < deadline, f"the node did not answer:\n{self.stderr()}"
                time.sleep(0.02)

    @property
    def log_path(self) -> Path:
        return self.logs / f"node-{self.starts}.log"

    def stderr(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
        """Answers in call order; raises httpx.TransportError once the node is gone."""
        answers: list[dict[str, Any]] = []
        for first in range(0, len(calls), MAX_BATCH):
            body = [
                {"jsonrpc": "2.0", "id": i, "method": method, "params": params}
                for i, (method, params) in enumerate(calls[first : first + MAX_BATCH])
            ]
            answer = self.http.post(self.url, json=body)
            assert answer.status_code == 200, answer.text
            entries = answer.json()
            assert isinstance(entries, list), entries
            by_id = {entry["id"]: entry for entry in entries}
            answers.extend(by_id[i] for i in range(len(body)))
        return answers

    def call(self, method: str, *params: Any) -> Any:
        (answer,) = self.batch([(method, list(params))])
        assert "error" not in answer, answer
        return answer["result"]

    def results(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        answers = self.batch(calls)
        for (method, params), answer in zip(calls, answers, strict=True):
            assert "error" not in answer, (method, params, answer)
        return [answer["result"] for answer in answers]


@dataclass
class Ledger:
    """What the test knows: every transaction it signed and every receipt it was given."""

    senders: list[LocalAccount]
    logger: str
    other_txs: set[str]  # funding and deployment, sent before any kill
    next_nonce: dict[str, int]
    signed: dict[str, dict[int, str]] = field(default_factory=dict)  # sender -> nonce -> hash
    lost: set[str] = field(default_factory=set)
    receipts: dict[str, dict[str, Any]] = field(default_factory=dict)
    epoch: int = 0  # node starts so far


@pytest.fixture
def node(tmp_path: Path) -> Iterator[ServedNode]:
    served = ServedNode(tmp_path / "chain", tmp_path)
    try:
        yield served
    finally:
        if served.proc is not None and served.proc.poll() is None:
            served.kill()
            served.proc.wait(timeout=30)
        served.http.close()


def wait_receipts(node: ServedNode, hashes: list[str]) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while True:
        receipts = node.results([("eth_getTransactionReceipt", [h]) for h in hashes])
        if all(receipts):
            return receipts
        assert time.monotonic() < deadline, "transactions were not mined"
        time.sleep(0.01)


def setup_ledger(node: ServedNode) -> Ledger:
    (operator,) = node.call("eth_accounts")
    senders = [Account.create() for _ in range(SENDERS)]
    calls: list[tuple[str, list[Any]]] = [
        ("eth_sendTransaction", [{"from": operator, "data": "0x" + LOGGER_INIT.hex()}])
    ] + [
        ("eth_sendTransaction", [{"from": operator, "to": s.address, "value": hex(10**20)}])
        for s in senders
    ]
    hashes = node.results(calls)
    receipts = wait_receipts(node, hashes)
    assert all(r["status"] == "0x1" for r in receipts)
    logger = receipts[0]["contractAddress"]
    assert node.call("eth_getCode", logger, "latest") == "0x" + LOGGER_RUNTIME.hex()
    ledger = Ledger(senders, logger, set(hashes), {s.address: 0 for s in senders})
    ledger.signed = {s.address: {} for s in senders}
    ledger.receipts.update(zip(hashes, receipts, strict=True))
    return ledger


def sign_next(ledger: Ledger, sender: LocalAccount) -> str:
    nonce = ledger.next_nonce[sender.address]
    ledger.next_nonce[sender.address] = nonce + 1
    signed = sender.sign_transaction(
        {
            "chainId": DEFAULT_CHAIN_ID,
            "nonce": nonce,
            "to": ledger.logger,  # type: ignore[dict-item]
            "value": 1,
            "gas": TX_GAS,
            "maxFeePerGas": MAX_FEE,
            "maxPriorityFeePerGas": 0,
            # the epoch makes a re-sent nonce a new transaction, never the lost one
            "data": bytes.fromhex(sender.address[2:])
            + ledger.epoch.to_bytes(4, "big")
            + nonce.to_bytes(8, "big"),
        }
    )
    tx_hash = "0x" + bytes(signed.hash).hex()
    ledger.signed[sender.address][nonce] = tx_hash
    return "0x" + bytes(signed.raw_transaction).hex()


def load(node: ServedNode, ledger: Ledger, rng: random.Random) -> int:
    """Send bursts and poll their receipts until the node dies; returns receipts seen."""
    seen = 0
    try:
        while True:
            raws = [
                sign_next(ledger, sender)
                for sender in ledger.senders
                for _ in range(rng.randint(1, 4))
            ]
            answers = node.batch([("eth_sendRawTransaction", [raw]) for raw in raws])
            hashes = []
            for answer in answers:
                assert "error" not in answer, answer  # nonces are ours alone: all must pass
                hashes.append(answer["result"])
            while hashes:
                receipts = node.results([("eth_getTransactionReceipt", [h]) for h in hashes])
                for tx_hash, receipt in zip(hashes, receipts, strict=True):
                    if receipt is not None:
                        assert receipt["status"] == "0x1", receipt
                        ledger.receipts[tx_hash] = receipt
                        seen += 1
                hashes = [h for h, r in zip(hashes, receipts, strict=True) if r is None]
                if hashes:
                    time.sleep(0.005)
    except httpx.TransportError:
        return seen


def verify(node: ServedNode, ledger: Ledger) -> int:
    """Check the restarted node against everything the test knows; returns the head."""
    head = int(node.call("eth_blockNumber"), 16)
    blocks = node.results([("eth_getBlockByNumber", [hex(n), False]) for n in range(head + 1)])
    assert blocks[-1]["hash"] == node.call("eth_getBlockByNumber", "latest", False)["hash"]
    in_chain: dict[str, tuple[int, int]] = {}
    for number, block in enumerate(blocks):
        assert block is not None and int(block["number"], 16) == number
        if number:
            assert block["parentHash"] == blocks[number - 1]["hash"], f"broken link at {number}"
            assert int(block["timestamp"], 16) >= int(blocks[number - 1]["timestamp"], 16)
            assert block["transactions"], f"empty block {number}"
        for index, tx_hash in enumerate(block["transactions"]):
            assert tx_hash not in in_chain, f"{tx_hash} included twice"
            in_chain[tx_hash] = (number, index)

    # Per sender: exactly the transactions below its nonce are in the chain; the rest
    # were queued but never sealed, and are gone for good.
    expected = set(ledger.other_txs)
    for sender in ledger.senders:
        address = sender.address
        nonce = int(node.call("eth_getTransactionCount", address, "pending"), 16)
        assert nonce == int(node.call("eth_getTransactionCount", address, "latest"), 16)
        signed = ledger.signed[address]
        assert nonce <= len(signed), f"{address}: nonce {nonce} above the {len(signed)} signed"
        for k in sorted(signed):
            if k < nonce:
                expected.add(signed[k])
            else:
                ledger.lost.add(signed.pop(k))
        ledger.next_nonce[address] = nonce
    ledger.epoch += 1
    assert set(in_chain) == expected, "the chain's transactions are not the sealed ones"
    assert not ledger.lost & set(in_chain)

    # Every receipt handed out before is handed out again, byte for byte.
    hashes = sorted(in_chain) + sorted(ledger.lost)
    receipts = dict(
        zip(hashes, node.results([("eth_getTransactionReceipt", [h]) for h in hashes]), strict=True)
    )
    for tx_hash in ledger.lost:
        assert receipts[tx_hash] is None, f"lost transaction {tx_hash} has a receipt"
    for tx_hash, before in ledger.receipts.items():
        assert receipts.get(tx_hash) == before, f"the receipt of {tx_hash} changed"
    for tx_hash, (number, index) in in_chain.items():
        receipt = receipts[tx_hash]
        assert receipt is not None and receipt["status"] == "0x1"
        assert receipt["blockHash"] == blocks[number]["hash"]
        assert (receipt["blockNumber"], receipt["transactionIndex"]) == (hex(number), hex(index))
        ledger.receipts[tx_hash] = receipt

    # The log index and the state agree with the receipts.
    logged = sorted(
        (entry for r in receipts.values() if r for entry in r["logs"]),
        key=lambda e: (int(e["blockNumber"], 16), int(e["logIndex"], 16)),
    )
    flt = {"fromBlock": "0x0", "toBlock": "latest", "address": ledger.logger}
    assert node.call("eth_getLogs", flt) == logged
    mined = sum(len(ledger.signed[s.address]) for s in ledger.senders)
    assert len(logged) == mined
    assert int(node.call("eth_getBalance", ledger.logger, "latest"), 16) == mined
    return head


def integrity(directory: Path) -> str:
    conn = sqlite3.connect(f"file:{directory / 'chain.sqlite'}?mode=ro", uri=True, timeout=10)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def test_receipts_survive_kill_9(node: ServedNode, capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        print(f"\ndurability seed: {SEED} (set AILEDGER_DURABILITY_SEED={SEED} to replay)")
    rng = random.Random(SEED)
    started = time.monotonic()
    start_times = [node.start()]
    ledger = setup_ledger(node)
    lost_at_kill: list[int] = []
    seen_during_load = 0
    for kill in range(KILLS):
        delay = rng.uniform(0.02, 0.6)
        timer = threading.Timer(delay, node.kill)
        timer.start()
        seen = load(node, ledger, rng)
        timer.join()
        assert node.proc is not None
        assert node.proc.wait(timeout=30) == -signal.SIGKILL
        log = node.stderr()
        assert "Traceback" not in log and "dropped" not in log, log
        seen_during_load += seen

        start_times.append(node.start())
        lost_before = len(ledger.lost)
        try:
            verify(node, ledger)
        except AssertionError as exc:
            raise AssertionError(
                f"after kill {kill} at {delay:.3f} s (seed {SEED}): {exc}"
            ) from exc
        assert integrity(node.directory) == "ok"
        lost_at_kill.append(len(ledger.lost) - lost_before)

    # A clean stop seals what is queued: nothing accepted before SIGTERM is lost.
    head = int(node.call("eth_blockNumber"), 16)
    hashes = node.results(
        [
            ("eth_sendRawTransaction", [sign_next(ledger, s)])
            for s in ledger.senders
            for _ in range(5)
        ]
    )
    # serve() closes the chain, then exits as the shell reports SIGTERM (143)
    assert node.stop() == 128 + signal.SIGTERM, node.stderr()
    assert not (node.directory / SERVING_FILE).exists()
    with EmbeddedChain.open(node.directory) as chain:
        assert chain.head().block_number > head
        for tx_hash in hashes:
            receipt = chain.receipt(bytes.fromhex(tx_hash[2:]))
            assert receipt is not None and receipt["status"] == "0x1"
        for tx_hash, before in ledger.receipts.items():
            assert chain.receipt(bytes.fromhex(tx_hash[2:])) == before

    assert seen_during_load >= KILLS, "the load hardly got any transaction mined"
    elapsed = time.monotonic() - started
    with capsys.disabled():
        print(
            f"durability: {KILLS} kills, {seen_during_load} receipts under load, "
            f"{len(ledger.receipts)} checked after restarts, "
            f"{sum(lost_at_kill)} queued transactions lost at kills, "
            f"start {min(start_times):.2f}-{max(start_times):.2f} s, total {elapsed:.1f} s"
        )


# ------------------------------------------------- the pending pool: futures, replacements

POOL_KILLS = 6


@dataclass
class PoolBook:
    """Per sender and nonce, every transaction accepted for that slot: the original and,
    when one was accepted, its replacement (a higher fee and another value)."""

    senders: list[LocalAccount]
    logger: str
    next_nonce: dict[str, int]
    slots: dict[tuple[str, int], dict[str, int]] = field(default_factory=dict)  # hash -> value
    receipts: dict[str, dict[str, Any]] = field(default_factory=dict)
    sealed: dict[tuple[str, int], str] = field(default_factory=dict)  # slot -> the mined hash
    epoch: int = 0
    replaced: int = 0


def sign_slot(book: PoolBook, sender: LocalAccount, nonce: int, *, replacement: bool) -> str:
    bump = 2 if replacement else 1  # +100% fee cap and tip: far above geth's 10%
    value = 2 if replacement else 1
    signed = sender.sign_transaction(
        {
            "chainId": DEFAULT_CHAIN_ID,
            "nonce": nonce,
            "to": book.logger,  # type: ignore[dict-item]
            "value": value,
            "gas": TX_GAS,
            "maxFeePerGas": MAX_FEE * bump,
            "maxPriorityFeePerGas": 10**9 * bump,
            "data": bytes.fromhex(sender.address[2:])
            + book.epoch.to_bytes(4, "big")
            + nonce.to_bytes(8, "big")
            + bytes([value]),
        }
    )
    book.slots.setdefault((sender.address, nonce), {})["0x" + bytes(signed.hash).hex()] = value
    return "0x" + bytes(signed.raw_transaction).hex()


def pool_load(node: ServedNode, book: PoolBook, rng: random.Random) -> int:
    """Bursts whose nonces arrive shuffled (later ones held until the gap fills), some
    replaced right after they were sent; polls receipts until the node dies."""
    seen = 0
    try:
        while True:
            calls: list[tuple[str, list[Any]]] = []
            sent: list[tuple[tuple[str, int], bool]] = []
            for sender in book.senders:
                first = book.next_nonce[sender.address]
                count = rng.randint(1, 4)
                book.next_nonce[sender.address] = first + count
                nonces = list(range(first, first + count))
                rng.shuffle(nonces)
                for nonce in nonces:
                    slot: tuple[str, int] = (sender.address, nonce)
                    calls.append(
                        (
                            "eth_sendRawTransaction",
                            [sign_slot(book, sender, nonce, replacement=False)],
                        )
                    )
                    sent.append((slot, False))
                    if rng.random() < 0.3:
                        calls.append(
                            (
                                "eth_sendRawTransaction",
                                [sign_slot(book, sender, nonce, replacement=True)],
                            )
                        )
                        sent.append((slot, True))
            answers = node.batch(calls)
            for (slot, replacement), answer in zip(sent, answers, strict=True):
                if "error" not in answer:
                    book.replaced += replacement
                    continue
                # only a replacement may fail, when the sealer already took the original
                assert replacement and answer["error"]["message"].startswith("nonce too low"), (
                    answer
                )
                replacement_hash = next(h for h, v in book.slots[slot].items() if v == 2)
                del book.slots[slot][replacement_hash]
            waiting = {slot for slot, _ in sent}
            while waiting:
                hashes = [(slot, h) for slot in sorted(waiting) for h in book.slots[slot]]
                receipts = node.results([("eth_getTransactionReceipt", [h]) for _, h in hashes])
                for (slot, tx_hash), receipt in zip(hashes, receipts, strict=True):
                    if receipt is None:
                        continue
                    assert receipt["status"] == "0x1", receipt
                    assert book.sealed.setdefault(slot, tx_hash) == tx_hash, (
                        f"{slot}: a replaced transaction and its replacement both have receipts"
                    )
                    book.receipts[tx_hash] = receipt
                    waiting.discard(slot)
                    seen += 1
                if waiting:
                    time.sleep(0.005)
    except httpx.TransportError:
        return seen


def pool_verify(node: ServedNode, book: PoolBook) -> int:
    """After a restart: every receipt seen before is there, byte for byte; each nonce
    below the sender's holds exactly one of its slot's transactions; nothing above it
    (held or queued at the kill) was sealed. Returns the slots lost at the kill."""
    lost = 0
    mined_value = 0
    for sender in book.senders:
        address = sender.address
        nonce = int(node.call("eth_getTransactionCount", address, "latest"), 16)
        assert nonce == int(node.call("eth_getTransactionCount", address, "pending"), 16)
        slots = sorted(k for k in book.slots if k[0] == address)
        hashes = [(slot, h) for slot in slots for h in book.slots[slot]]
        receipts = node.results([("eth_getTransactionReceipt", [h]) for _, h in hashes])
        by_slot: dict[tuple[str, int], list[str]] = {}
        for (slot, tx_hash), receipt in zip(hashes, receipts, strict=True):
            if receipt is not None:
                assert receipt["status"] == "0x1", receipt
                by_slot.setdefault(slot, []).append(tx_hash)
                before = book.receipts.setdefault(tx_hash, receipt)
                assert before == receipt, f"the receipt of {tx_hash} changed"
        for slot in slots:
            mined = by_slot.get(slot, [])
            if slot[1] < nonce:
                assert len(mined) == 1, f"{slot}: {len(mined)} of its transactions are in the chain"
                assert book.sealed.setdefault(slot, mined[0]) == mined[0]
                mined_value += book.slots[slot][mined[0]]
            else:
                assert not mined, f"{slot} is above the sender's nonce {nonce} but was sealed"
                assert slot not in book.sealed, f"{slot}'s acknowledged receipt was lost"
                del book.slots[slot]
                lost += 1
        book.next_nonce[address] = nonce
    book.epoch += 1
    # the state agrees with the receipts: the logger got exactly the mined values
    assert int(node.call("eth_getBalance", book.logger, "latest"), 16) == mined_value
    return lost


def test_receipts_survive_kill_9_under_the_pending_pool(
    node: ServedNode, capsys: pytest.CaptureFixture[str]
) -> None:
    with capsys.disabled():
        print(f"\npool durability seed: {SEED} (set AILEDGER_DURABILITY_SEED={SEED} to replay)")
    rng = random.Random(SEED)
    node.start()
    ledger = setup_ledger(node)
    book = PoolBook(ledger.senders, ledger.logger, {s.address: 0 for s in ledger.senders})
    seen = lost = 0
    for kill in range(POOL_KILLS):
        delay = rng.uniform(0.05, 0.6)
        timer = threading.Timer(delay, node.kill)
        timer.start()
        seen += pool_load(node, book, rng)
        timer.join()
        assert node.proc is not None
        assert node.proc.wait(timeout=30) == -signal.SIGKILL
        assert "Traceback" not in node.stderr(), node.stderr()
        node.start()
        try:
            lost += pool_verify(node, book)
        except AssertionError as exc:
            raise AssertionError(
                f"after kill {kill} at {delay:.3f} s (seed {SEED}): {exc}"
            ) from exc
        assert integrity(node.directory) == "ok"
    assert seen >= POOL_KILLS, "the load hardly got any transaction mined"
    assert book.replaced, "no replacement was accepted: the test did not test replacing"
    with capsys.disabled():
        print(
            f"pool durability: {POOL_KILLS} kills, {seen} receipts under load, "
            f"{len(book.receipts)} checked, {book.replaced} replacements accepted, "
            f"{lost} unacknowledged slots lost at kills"
        )
