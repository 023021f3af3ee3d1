"""ailedger's chain over JSON-RPC next to Hardhat's and Anvil's development nodes, one run.

The same web3.py client sends signed ERC-20 transfers (the project's ``Token``) over HTTP
to each node, each on a fresh chain:

* **one sender**: sends a transfer, waits for its receipt (web3's
  ``wait_for_transaction_receipt``, default polling), sends the next.
* **20 senders**: twenty threads, each its own account and HTTP session, each doing the
  same as the one sender; the total is split evenly between them.

Throughput is transfers / wall time of the workload. Every receipt must have status 1 and
every sender's token balance must drop by what it sent, or the run fails.

Nodes: ailedger (``ailedger chain serve`` on a fresh temporary home, a subprocess; durable:
SQLite WAL, synchronous=FULL), Hardhat's node (installed by ``scripts/install_hardhat.sh``,
automine, in memory) and Anvil (``scripts/install_ethnode.sh``, automine, in memory).
Both installers are idempotent and quiet when already installed.

The machine may be shared: ``--rounds R`` repeats every workload R times, interleaving the
nodes, and reports each figure and the median. The last line is
``ratio_vs_hardhat_min: x``, the smaller of ailedger/Hardhat (median tx/s) over the two
workloads; the goal is >= 1.0. ``--quick`` runs fewer transfers.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3 import Web3

REPO = Path(__file__).resolve().parent.parent
TRANSFERS = 2000
QUICK_TRANSFERS = 200
SENDERS = 20
TX_GAS = 100_000  # an ERC-20 transfer to a fresh holder uses about 51,000
MAX_FEE = 100 * 10**9  # far above any base fee these runs reach
TIP = 10**9
SENDER_WEI = 10**18  # 2,000 transfers at MAX_FEE * TX_GAS cost 20 ether at most: enough
SENDER_TOKENS = 10**6
RECEIPT_TIMEOUT_S = 120
START_TIMEOUT_S = 90
PASSPHRASE = "chain-peers benchmark"  # a throwaway home's keystore

WORKLOADS = ("one sender", f"{SENDERS} senders")


class BenchmarkError(RuntimeError):
    """A node did not start, or a workload did not run as specified."""


@dataclass
class Node:
    name: str
    url: str
    figures: dict[str, list[float]] = field(default_factory=dict)  # workload -> tx/s per round


# ----------------------------------------------------------------------------- nodes


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_ready(url: str, process: subprocess.Popen[bytes], name: str, log: Path) -> None:
    import httpx

    deadline = time.monotonic() + START_TIMEOUT_S
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    while True:
        if process.poll() is not None:
            raise BenchmarkError(f"{name} exited with {process.returncode}:\n{_tail(log)}")
        with contextlib.suppress(httpx.HTTPError):
            if "result" in httpx.post(url, json=body, timeout=5).json():
                return
        if time.monotonic() > deadline:
            raise BenchmarkError(f"{name} did not answer within {START_TIMEOUT_S} s")
        time.sleep(0.1)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:] if log.exists() else ""


@contextlib.contextmanager
def _process(name: str, command: list[str], root: Path, port: int, **popen: Any) -> Iterator[Node]:
    log = root / f"{name.split()[0].lower()}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, **popen
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, name, log)
        yield Node(name, url)
    finally:
        process.terminate()  # ailedger's serve seals what is pending, then exits
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def ailedger(root: Path) -> Iterator[Node]:
    home = root / "ailedger-home"
    env = {
        **os.environ,
        "AILEDGER_HOME": str(home),
        "AILEDGER_PASSPHRASE": PASSPHRASE,
        "AILEDGER_CACHE_DIR": str(root / "cache"),
    }
    init = subprocess.run(
        [sys.executable, "-m", "ailedger.cli", "init"], env=env, capture_output=True, check=False
    )
    if init.returncode:
        raise BenchmarkError(f"ailedger init failed:\n{init.stderr.decode(errors='replace')}")
    port = _free_port()
    command = [sys.executable, "-m", "ailedger.cli", "chain", "serve", "--port", str(port)]
    with _process("ailedger (chain serve)", command, root, port, env=env) as node:
        yield node


def _install(script: str) -> None:
    done = subprocess.run(["bash", str(REPO / "scripts" / script)], check=False)
    if done.returncode:
        raise BenchmarkError(f"scripts/{script} failed (output above)")


@contextlib.contextmanager
def hardhat(root: Path) -> Iterator[Node]:
    _install("install_hardhat.sh")
    project = REPO / "tools" / "hardhat"
    port = _free_port()
    command = [
        str(project / "node_modules" / ".bin" / "hardhat"),
        "node",
        "--hostname",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    env = {**os.environ, "HARDHAT_DISABLE_TELEMETRY_PROMPT": "true"}
    with _process("Hardhat node", command, root, port, cwd=project, env=env) as node:
        yield node


@contextlib.contextmanager
def anvil(root: Path) -> Iterator[Node]:
    _install("install_ethnode.sh")
    from ailedger.testing.ethnode import AnvilNode

    with AnvilNode() as process:
        yield Node("Anvil", process.url)


NODES: dict[str, Callable[[Path], contextlib.AbstractContextManager[Node]]] = {
    "ailedger": ailedger,
    "hardhat": hardhat,
    "anvil": anvil,
}


# -------------------------------------------------------------------------- workload


@dataclass(frozen=True)
class Token:
    address: str
    abi: list[dict[str, Any]]
    chain_id: int


def _web3(url: str) -> Web3:
    from web3 import Web3

    return Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": RECEIPT_TIMEOUT_S}))


def deploy_token(url: str, cache_dir: Path) -> tuple[Token, LocalAccount]:
    """A fresh Token owned by a new account paid for by the node's dev account."""
    from eth_account import Account

    from ailedger.chain.compiler import compile_contract
    from ailedger.chain.transactions import fund_from_dev_account

    web3 = _web3(url)
    owner: LocalAccount = Account.create()
    fund_from_dev_account(web3, owner.address, 1000 * 10**18)
    compiled = compile_contract("Token", cache_dir)
    contract = web3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
    deploy = contract.constructor(10**30).build_transaction(
        {"from": owner.address, "nonce": 0, "gas": 3_000_000, **_fees()}
    )
    receipt = _send_and_wait(web3, owner, deploy)
    token = Token(str(receipt["contractAddress"]), compiled.abi, int(web3.eth.chain_id))
    return token, owner


def _fees() -> dict[str, int]:
    return {"maxFeePerGas": MAX_FEE, "maxPriorityFeePerGas": TIP}


def _send_and_wait(web3: Web3, account: LocalAccount, fields: dict[str, Any]) -> Any:
    raw = account.sign_transaction(fields).raw_transaction
    receipt = web3.eth.wait_for_transaction_receipt(
        web3.eth.send_raw_transaction(raw), timeout=RECEIPT_TIMEOUT_S
    )
    if int(receipt["status"]) != 1:
        raise BenchmarkError(f"setup transaction failed: {dict(receipt)}")
    return receipt


def fund_senders(url: str, token: Token, owner: LocalAccount, count: int) -> list[LocalAccount]:
    """``count`` new accounts with ether for gas and SENDER_TOKENS each."""
    from eth_account import Account

    web3 = _web3(url)
    contract = web3.eth.contract(address=web3.to_checksum_address(token.address), abi=token.abi)
    senders: list[LocalAccount] = [Account.create() for _ in range(count)]
    nonce = int(web3.eth.get_transaction_count(owner.address, "pending"))
    hashes = []
    for sender in senders:
        for fields in (
            {"to": sender.address, "value": SENDER_WEI, "gas": 21_000},
            {
                "to": contract.address,
                "value": 0,
                "gas": TX_GAS,
                "data": contract.encode_abi("transfer", args=[sender.address, SENDER_TOKENS]),
            },
        ):
            full: dict[str, Any] = {**fields, "nonce": nonce, "chainId": token.chain_id}
            signed = owner.sign_transaction({**full, **_fees()})
            hashes.append(web3.eth.send_raw_transaction(signed.raw_transaction))
            nonce += 1
    for tx_hash in hashes:
        receipt = web3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT_S)
        if int(receipt["status"]) != 1:
            raise BenchmarkError(f"funding a sender failed: {dict(receipt)}")
    return senders


def presign(token: Token, sender: LocalAccount, n: int) -> list[bytes]:
    from eth_abi.abi import encode
    from eth_utils.crypto import keccak

    selector = keccak(text="transfer(address,uint256)")[:4]
    recipient = "0x" + keccak(sender.key)[:20].hex()
    data = selector + encode(["address", "uint256"], [recipient, 1])
    fields: dict[str, Any] = {
        "chainId": token.chain_id,
        "to": token.address,
        "value": 0,
        "gas": TX_GAS,
        "data": data,
        "type": 2,
        **_fees(),
    }
    return [
        bytes(sender.sign_transaction({**fields, "nonce": nonce}).raw_transaction)
        for nonce in range(n)
    ]


def _send_each_and_wait(url: str, raws: list[bytes], failures: list[str]) -> None:
    web3 = _web3(url)
    try:
        for raw in raws:
            tx_hash = web3.eth.send_raw_transaction(raw)
            receipt = web3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT_S)
            if int(receipt["status"]) != 1:
                failures.append(f"transfer {tx_hash.hex()} failed")
                return
    except Exception as exc:  # reported by the caller: one thread must not hide it
        failures.append(f"{type(exc).__name__}: {exc}")


def run_workload(node: Node, token: Token, owner: LocalAccount, senders: int, n: int) -> float:
    """Transfers per second with ``senders`` accounts sending ``n`` in all."""
    accounts = fund_senders(node.url, token, owner, senders)
    per_sender = n // senders
    raws = [presign(token, account, per_sender) for account in accounts]
    failures: list[str] = []
    threads = [
        threading.Thread(target=_send_each_and_wait, args=(node.url, batch, failures))
        for batch in raws
    ]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    if failures:
        raise BenchmarkError(f"{node.name}: {failures[0]} ({len(failures)} failures)")
    _check_balances(node, token, accounts, per_sender)
    return per_sender * senders / seconds


def _check_balances(node: Node, token: Token, accounts: list[LocalAccount], sent: int) -> None:
    web3 = _web3(node.url)
    contract = web3.eth.contract(address=web3.to_checksum_address(token.address), abi=token.abi)
    for account in accounts:
        balance = int(contract.functions.balanceOf(account.address).call())
        if balance != SENDER_TOKENS - sent:
            raise BenchmarkError(
                f"{node.name}: {account.address} holds {balance} tokens after sending {sent}, "
                f"want {SENDER_TOKENS - sent}"
            )


# ------------------------------------------------------------------------------ main


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Signed ERC-20 transfers over HTTP with web3.py: ailedger's `chain serve` next to "
            "Hardhat's node and Anvil, one sender waiting for each receipt and 20 senders "
            "concurrently. Last line: 'ratio_vs_hardhat_min: x' (goal >= 1.0)."
        )
    )
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_TRANSFERS} transfers")
    parser.add_argument(
        "-n", type=int, metavar="N", help=f"transfers per workload (default {TRANSFERS})"
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="repeat each workload, nodes interleaved"
    )
    parser.add_argument(
        "--nodes",
        default="ailedger,hardhat,anvil",
        help="comma-separated subset of ailedger,hardhat,anvil (default: all three)",
    )
    args = parser.parse_args(argv)
    args.n = args.n or (QUICK_TRANSFERS if args.quick else TRANSFERS)
    if args.n < SENDERS:
        parser.error(f"-n must be at least {SENDERS}")
    args.nodes = [name.strip() for name in args.nodes.split(",") if name.strip()]
    unknown = set(args.nodes) - set(NODES)
    if unknown:
        parser.error(f"unknown nodes: {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    root = Path(tempfile.mkdtemp(prefix="ailedger-peers-"))
    try:
        with contextlib.ExitStack() as stack:
            nodes = [stack.enter_context(NODES[name](root)) for name in args.nodes]
            for node in nodes:
                node.figures = {w: [] for w in WORKLOADS}
            tokens = {node.name: deploy_token(node.url, root / "cache") for node in nodes}
            for round_ in range(args.rounds):
                for workload, senders in zip(WORKLOADS, (1, SENDERS), strict=True):
                    for node in nodes:
                        token, owner = tokens[node.name]
                        rate = run_workload(node, token, owner, senders, args.n)
                        node.figures[workload].append(rate)
                        print(
                            f"round {round_ + 1} {workload:<11} {node.name:<24} {rate:8.1f} tx/s",
                            flush=True,
                        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return _report(nodes, args.n)


def _report(nodes: list[Node], n: int) -> int:
    print()
    print(f"{'workload':<12} {'node':<24} {'median tx/s':>12}  all rounds ({n} transfers each)")
    for workload in WORKLOADS:
        for node in nodes:
            rates = node.figures[workload]
            shown = ", ".join(f"{r:.1f}" for r in rates)
            print(f"{workload:<12} {node.name:<24} {statistics.median(rates):>12.1f}  {shown}")
    by_key = {node.name.split()[0].lower(): node for node in nodes}
    if "ailedger" not in by_key or "hardhat" not in by_key:
        print("note: ratio_vs_hardhat_min needs both ailedger and hardhat in --nodes")
        return 0
    ratios = []
    for workload in WORKLOADS:
        ours = statistics.median(by_key["ailedger"].figures[workload])
        theirs = statistics.median(by_key["hardhat"].figures[workload])
        ratios.append(ours / theirs)
        print(f"ratio vs Hardhat, {workload}: {ours / theirs:.2f}")
    print(f"ratio_vs_hardhat_min: {min(ratios):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
