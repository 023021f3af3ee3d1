"""Contract-call throughput of ailedger's embedded chain against eth-tester, side by side.

Workload: one client sends N pre-signed EIP-1559 contract calls without waiting between
them, alternating an ERC-20 ``Token.transfer`` and a storage-writing
``KeyRegistry.register(bytes32)``, then awaits every receipt. Throughput is
N / (time from the first send to the last receipt). Every transaction must succeed
(receipt status 1) and the contracts' state must show all of them, or the run fails.

Backends, each on a fresh chain with the project's contracts deployed:

* ailedger embedded chain, in-process web3 provider, durable (SQLite WAL, synchronous=FULL)
* eth-tester ``PyEVMBackend`` with auto-mining (one block per transaction): the reference
* ailedger embedded chain served over HTTP JSON-RPC (``serve``: uvicorn on 127.0.0.1, in a
  process of its own)
* Anvil over HTTP JSON-RPC, when installed (``scripts/install_ethnode.sh``)

The last line is ``ratio_vs_eth_tester: x``, embedded in-process tx/s over eth-tester tx/s.
Run ``python benchmarks/chain_throughput.py --quick`` in CI; ``--help`` lists the options.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import hashlib
import io
import math
import pstats
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3 import Web3

    from ailedger.chain.embedded.node import EmbeddedChain

GAS_MARGIN = 1.25  # on top of the worst-case estimate (fresh storage slots)
SENDER_ETHER_WEI = 10_000 * 10**18
SENDER_TOKENS = 10**9  # smallest units; each transfer moves 1
RECIPIENTS = 256  # transfers rotate over this many addresses
RECEIPT_TIMEOUT_S = 600.0
RECEIPT_POLL_S = 0.005

DEFAULT_N = 2000
DEFAULT_REFERENCE_N = 300
DEFAULT_RPC_NODE_N = 1000
QUICK_N = 200
QUICK_REFERENCE_N = 100
QUICK_RPC_NODE_N = 100


class BenchmarkError(RuntimeError):
    """The workload did not run as specified (a failed transaction, missing state)."""


@dataclass(frozen=True)
class Target:
    """A chain ready for the workload: contracts deployed, sender funded."""

    web3: Web3
    token: str
    registry: str
    sender: LocalAccount


@dataclass(frozen=True)
class Result:
    name: str
    n: int
    seconds: float
    send_seconds: float
    blocks: int

    @property
    def tx_per_s(self) -> float:
        return self.n / self.seconds


# ------------------------------------------------------------------------- workload


def presign(target: Target, n: int) -> list[bytes]:
    """N signed calls alternating transfer and register, with explicit nonce/gas/fees."""
    from eth_account import Account

    web3 = target.web3
    sender = target.sender
    token = web3.eth.contract(address=web3.to_checksum_address(target.token), abi=_abi("Token"))
    registry = web3.eth.contract(
        address=web3.to_checksum_address(target.registry), abi=_abi("KeyRegistry")
    )
    recipients = [
        Account.from_key(hashlib.sha256(b"recipient %d" % i).digest()).address
        for i in range(RECIPIENTS)
    ]

    def transfer_data(i: int) -> str:
        return str(token.encode_abi("transfer", args=[recipients[i % RECIPIENTS], 1]))

    def register_data(i: int) -> str:
        return str(registry.encode_abi("register", args=[hashlib.sha256(b"key %d" % i).digest()]))

    chain_id = int(web3.eth.chain_id)
    nonce = int(web3.eth.get_transaction_count(sender.address, "pending"))
    # Estimated on the untouched state, i.e. with fresh storage slots: the worst case.
    transfer_gas = _estimate(web3, sender.address, target.token, transfer_data(0))
    register_gas = _estimate(web3, sender.address, target.registry, register_data(0))
    base_fee = int(web3.eth.get_block("latest")["baseFeePerGas"])
    tip = 10**9
    # Full blocks raise the base fee by 1/8 each (EIP-1559); allow for every block of
    # the run being full, so no transaction is priced out however the node batches.
    worst_blocks = math.ceil(n * max(transfer_gas, register_gas) / 15_000_000) + 2
    max_fee = int(2 * base_fee * 1.125**worst_blocks) + tip

    raws: list[bytes] = []
    for i in range(n):
        is_transfer = i % 2 == 0
        fields: dict[str, Any] = {
            "chainId": chain_id,
            "nonce": nonce + i,
            "to": web3.to_checksum_address(target.token if is_transfer else target.registry),
            "value": 0,
            "data": transfer_data(i // 2) if is_transfer else register_data(i // 2),
            "gas": transfer_gas if is_transfer else register_gas,
            "maxFeePerGas": max_fee,
            "maxPriorityFeePerGas": tip,
            "type": 2,
        }
        raws.append(bytes(sender.sign_transaction(fields).raw_transaction))
    return raws


def run_workload(
    name: str, target: Target, n: int, profile: cProfile.Profile | None = None
) -> Result:
    """Send everything, then await every receipt; time first send to last receipt.

    ``profile``, if given, runs over the timed part only (not the pre-signing).
    """
    from web3.exceptions import TransactionNotFound

    raws = presign(target, n)
    web3 = target.web3
    hashes: list[bytes] = []
    if profile is not None:
        profile.enable()
    start = time.perf_counter()
    for raw in raws:
        hashes.append(bytes(web3.eth.send_raw_transaction(raw)))
    sent = time.perf_counter()
    receipts: list[Any] = []
    deadline = sent + RECEIPT_TIMEOUT_S
    for tx_hash in hashes:
        while True:
            try:
                receipts.append(web3.eth.get_transaction_receipt(tx_hash))  # type: ignore[arg-type]
                break
            except TransactionNotFound:
                if time.perf_counter() > deadline:
                    raise BenchmarkError(
                        f"{name}: transaction 0x{tx_hash.hex()} not mined within "
                        f"{RECEIPT_TIMEOUT_S:.0f} s"
                    ) from None
                time.sleep(RECEIPT_POLL_S)
    end = time.perf_counter()
    if profile is not None:
        profile.disable()

    failed = [r for r in receipts if int(r["status"]) != 1]
    if failed:
        first = failed[0]
        raise BenchmarkError(
            f"{name}: {len(failed)} of {n} transactions failed, the first "
            f"0x{bytes(first['transactionHash']).hex()} in block {first['blockNumber']}"
        )
    _check_state(name, target, n)
    blocks = len({int(r["blockNumber"]) for r in receipts})
    return Result(name, n, end - start, sent - start, blocks)


def _check_state(name: str, target: Target, n: int) -> None:
    """The contracts saw every call: register count and transferred tokens add up."""
    web3 = target.web3
    registry = web3.eth.contract(
        address=web3.to_checksum_address(target.registry), abi=_abi("KeyRegistry")
    )
    token = web3.eth.contract(address=web3.to_checksum_address(target.token), abi=_abi("Token"))
    registers = int(registry.functions.versions(target.sender.address).call())
    balance = int(token.functions.balanceOf(target.sender.address).call())
    if registers != n // 2 or balance != SENDER_TOKENS - (n + 1) // 2:
        raise BenchmarkError(
            f"{name}: state after the run does not match {n} calls: {registers} registrations "
            f"(want {n // 2}), sender token balance {balance} "
            f"(want {SENDER_TOKENS - (n + 1) // 2})"
        )


def _estimate(web3: Web3, sender: str, to: str, data: str) -> int:
    tx = {"from": sender, "to": web3.to_checksum_address(to), "data": data, "value": 0}
    return int(int(web3.eth.estimate_gas(tx)) * GAS_MARGIN)  # type: ignore[arg-type]


_ABIS: dict[str, list[dict[str, Any]]] = {}
_CACHE_DIR: list[Path] = []


def _abi(name: str) -> list[dict[str, Any]]:
    from ailedger.chain.compiler import compile_contract

    if name not in _ABIS:
        _ABIS[name] = compile_contract(name, _CACHE_DIR[0]).abi
    return _ABIS[name]


# -------------------------------------------------------------------------- backends


def _new_sender() -> LocalAccount:
    from eth_account import Account

    account: LocalAccount = Account.create()
    return account


def _deploy_from(web3: Web3, sender: LocalAccount, cache_dir: Path) -> Target:
    """Deploy both contracts from ``sender`` and leave it all tokens but SENDER_TOKENS."""
    from ailedger.chain.deploy import deploy_contracts
    from ailedger.chain.transactions import send

    deployment = deploy_contracts(web3, sender, cache_dir)
    # Keep the balance check exact: the sender keeps SENDER_TOKENS, the rest goes away.
    token = web3.eth.contract(
        address=web3.to_checksum_address(deployment.address("Token")), abi=_abi("Token")
    )
    surplus = int(token.functions.balanceOf(sender.address).call()) - SENDER_TOKENS
    sink = "0x" + "11" * 20
    data = token.encode_abi("transfer", args=[web3.to_checksum_address(sink), surplus])
    send(web3, sender, {"to": token.address, "data": data, "value": 0})
    return Target(web3, deployment.address("Token"), deployment.address("KeyRegistry"), sender)


def _embedded_target(web3: Web3, home: Path) -> Target:
    """Fund a fresh sender from the node's unlocked dev operator (ether, then tokens)."""
    from ailedger.chain.deploy import find_deployment
    from ailedger.chain.transactions import fund_from_dev_account, wait_for

    deployment = find_deployment(web3, home)  # home has no manifest: the node's own
    sender = _new_sender()
    fund_from_dev_account(web3, sender.address, SENDER_ETHER_WEI)
    token = web3.eth.contract(
        address=web3.to_checksum_address(deployment.address("Token")), abi=_abi("Token")
    )
    operator = web3.eth.accounts[0]
    data = token.encode_abi("transfer", args=[sender.address, SENDER_TOKENS])
    tx_hash = web3.eth.send_transaction({"from": operator, "to": token.address, "data": data})
    wait_for(web3, "0x" + bytes(tx_hash).hex())
    return Target(web3, deployment.address("Token"), deployment.address("KeyRegistry"), sender)


@contextlib.contextmanager
def embedded_in_process(root: Path, cache_dir: Path) -> Iterator[tuple[Target, EmbeddedChain]]:
    from ailedger.chain.connection import open_embedded

    with open_embedded(root / "chain-in-process", cache_dir) as connection:
        assert connection.embedded is not None
        yield _embedded_target(connection.web3, root), connection.embedded


# The server runs in a process of its own, as `ailedger chain serve` does: in a thread of
# this one it would share the GIL with the client and measure their contention instead.
_SERVE = """
import sys
from pathlib import Path
from ailedger.chain.connection import open_embedded
from ailedger.chain.embedded.server import serve
connection = open_embedded(Path(sys.argv[1]), Path(sys.argv[2]))
serve(connection.embedded, "127.0.0.1", int(sys.argv[3]))
"""


@contextlib.contextmanager
def embedded_over_http(root: Path, cache_dir: Path) -> Iterator[Target]:
    from web3 import Web3

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    chain_dir = root / "chain-http"
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVE, str(chain_dir), str(cache_dir), str(port)],
        stdin=subprocess.DEVNULL,
    )
    try:
        web3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}"))
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise BenchmarkError(
                    f"the embedded chain's JSON-RPC server exited with {process.returncode}"
                )
            with contextlib.suppress(Exception):
                if web3.provider.make_request("ailedger_deployment", []).get("result"):  # type: ignore[arg-type]
                    break
            if time.monotonic() > deadline:
                raise BenchmarkError("the embedded chain's JSON-RPC server did not start")
            time.sleep(0.1)
        yield _embedded_target(web3, root)
    finally:
        process.terminate()  # serve() seals what is pending and closes the chain
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def eth_tester_reference(cache_dir: Path) -> Iterator[Target]:
    from eth_tester import EthereumTester, PyEVMBackend  # type: ignore[import-untyped]
    from web3 import EthereumTesterProvider, Web3

    from ailedger.chain.transactions import fund_from_dev_account

    tester = EthereumTester(PyEVMBackend(), auto_mine_transactions=True)
    web3 = Web3(EthereumTesterProvider(tester))
    sender = _new_sender()
    fund_from_dev_account(web3, sender.address, SENDER_ETHER_WEI)
    yield _deploy_from(web3, sender, cache_dir)


@contextlib.contextmanager
def anvil(cache_dir: Path) -> Iterator[Target]:
    from web3 import Web3

    from ailedger.testing.ethnode import AnvilNode

    sender = _new_sender()
    with AnvilNode([(sender.address, SENDER_ETHER_WEI)]) as node:
        web3 = Web3(Web3.HTTPProvider(node.url))
        yield _deploy_from(web3, sender, cache_dir)


# ------------------------------------------------------------------------- profiling


class SplitProfile:
    """cProfile of the client thread (sends and receipt polls) and of the sealer, apart.

    cProfile sees one thread only, so the sealer's ``_seal`` is wrapped on the instance
    (the class and the source are untouched) with a profiler of its own.
    """

    def __init__(self, chain: EmbeddedChain) -> None:
        self.submit = cProfile.Profile()
        self.seal = cProfile.Profile()
        original: Callable[[Any], None] = chain._seal
        profiler = self.seal

        def profiled_seal(batch: Any) -> None:
            profiler.enable()
            try:
                original(batch)
            finally:
                profiler.disable()

        chain._seal = profiled_seal  # type: ignore[method-assign]

    def report(self, lines: int) -> str:
        out = io.StringIO()
        for title, profile in (
            ("client thread (send + receipts)", self.submit),
            ("sealer thread (_seal)", self.seal),
        ):
            out.write(f"\n=== {title}: top {lines} by cumulative time ===\n")
            stats = pstats.Stats(profile, stream=out)
            stats.sort_stats("cumulative").print_stats(lines)
            out.write(f"\n=== {title}: top {lines} by own time ===\n")
            stats.sort_stats("tottime").print_stats(lines)
        return out.getvalue()


def run_embedded_profiled(root: Path, cache_dir: Path, n: int, lines: int) -> tuple[Result, str]:
    with embedded_in_process(root, cache_dir) as (target, chain):
        split = SplitProfile(chain)
        result = run_workload("ailedger embedded, profiled", target, n, split.submit)
        return result, split.report(lines)


# ------------------------------------------------------------------------------ main


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Contract-call throughput (tx/s) of ailedger's embedded chain next to eth-tester's "
            "PyEVMBackend (auto-mine), its own JSON-RPC server, and Anvil when installed. "
            "One client sends N pre-signed calls (Token.transfer alternating with "
            "KeyRegistry.register) without waiting, then awaits all receipts. The last line "
            "is 'ratio_vs_eth_tester: x' (embedded tx/s / eth-tester tx/s)."
        ),
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small run for CI (well under a minute): the --quick sizes below",
    )
    parser.add_argument(
        "-n",
        "--n",
        type=int,
        metavar="N",
        help=f"transactions per ailedger run (default {DEFAULT_N}, --quick {QUICK_N})",
    )
    parser.add_argument(
        "--reference-n",
        type=int,
        metavar="N",
        help=f"transactions for eth-tester, which is slow (default {DEFAULT_REFERENCE_N}, "
        f"--quick {QUICK_REFERENCE_N})",
    )
    parser.add_argument(
        "--rpc-node-n",
        type=int,
        metavar="N",
        help=f"transactions for Anvil (default {DEFAULT_RPC_NODE_N}, --quick {QUICK_RPC_NODE_N})",
    )
    parser.add_argument(
        "--no-http", action="store_true", help="skip the embedded chain served over HTTP JSON-RPC"
    )
    parser.add_argument("--no-rpc-node", action="store_true", help="skip Anvil")
    parser.add_argument(
        "--profile",
        type=int,
        metavar="LINES",
        default=0,
        help="also run the embedded workload once more under cProfile and print the top "
        "LINES functions of the client thread and of the sealer thread (default 0: none)",
    )
    args = parser.parse_args(argv)
    args.n = args.n or (QUICK_N if args.quick else DEFAULT_N)
    args.reference_n = args.reference_n or (
        QUICK_REFERENCE_N if args.quick else DEFAULT_REFERENCE_N
    )
    args.rpc_node_n = args.rpc_node_n or (QUICK_RPC_NODE_N if args.quick else DEFAULT_RPC_NODE_N)
    for name in ("n", "reference_n", "rpc_node_n"):
        if getattr(args, name) < 2:
            parser.error(f"--{name.replace('_', '-')} must be at least 2")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    results: list[Result] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="ailedger-bench-") as tmp:
        root = Path(tmp)
        cache_dir = root / "cache"
        _CACHE_DIR.append(cache_dir)

        print(f"ailedger embedded chain (in-process, durable), N={args.n} ...", flush=True)
        with embedded_in_process(root, cache_dir) as (target, _):
            embedded = run_workload("ailedger embedded (in-process)", target, args.n)
        results.append(embedded)

        print(f"eth-tester PyEVMBackend (auto-mine), N={args.reference_n} ...", flush=True)
        with eth_tester_reference(cache_dir) as target:
            reference = run_workload("eth-tester PyEVMBackend", target, args.reference_n)
        results.append(reference)

        if not args.no_http:
            print(f"ailedger embedded chain over HTTP JSON-RPC, N={args.n} ...", flush=True)
            with embedded_over_http(root, cache_dir) as target:
                results.append(run_workload("ailedger embedded (HTTP)", target, args.n))

        if not args.no_rpc_node:
            rpc_node = _run_anvil(cache_dir, args.rpc_node_n, notes)
            if rpc_node is not None:
                results.append(rpc_node)

        profile_text = ""
        if args.profile:
            print(f"ailedger embedded chain under cProfile, N={args.n} ...", flush=True)
            profiled, profile_text = run_embedded_profiled(
                root / "profiled", cache_dir, args.n, args.profile
            )
            notes.append(
                f"profiled embedded run: {profiled.tx_per_s:.0f} tx/s (slowed by cProfile)"
            )

    print(profile_text, end="")
    _print_table(results)
    for note in notes:
        print(f"note: {note}")
    if len({r.n for r in results}) > 1:
        print("note: N differs between backends; the ratio compares rates (tx/s), not totals")
    print(
        "note: eth-tester's rate falls as N grows (its receipt lookup walks back from the head, "
        "so awaiting N receipts is quadratic); compare ratios taken at the same --reference-n"
    )
    print(f"ratio_vs_eth_tester: {embedded.tx_per_s / reference.tx_per_s:.2f}")
    return 0


def _run_anvil(cache_dir: Path, n: int, notes: list[str]) -> Result | None:
    try:
        from ailedger.testing.ethnode import anvil_available
    except ImportError as exc:
        notes.append(f"Anvil skipped: ailedger.testing.ethnode is not importable ({exc})")
        return None
    if not anvil_available():
        notes.append("Anvil skipped: not installed (run scripts/install_ethnode.sh)")
        return None
    print(f"Anvil over HTTP JSON-RPC (automine), N={n} ...", flush=True)
    try:
        with anvil(cache_dir) as target:
            return run_workload("Anvil (HTTP JSON-RPC)", target, n)
    except BenchmarkError:
        raise
    except Exception as exc:  # the reference node is optional; say why it is missing
        notes.append(f"Anvil skipped: {type(exc).__name__}: {exc}")
        return None


def _print_table(results: list[Result]) -> None:
    print()
    header = f"{'backend':<34} {'N':>6} {'blocks':>7} {'send s':>8} {'total s':>8} {'tx/s':>8}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.name:<34} {r.n:>6} {r.blocks:>7} {r.send_seconds:>8.2f} "
            f"{r.seconds:>8.2f} {r.tx_per_s:>8.1f}"
        )
    print()


if __name__ == "__main__":
    sys.exit(main())
