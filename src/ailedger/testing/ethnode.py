"""Start an external Ethereum JSON-RPC node (Anvil, from npm) for backend tests.

The project's default chain is its embedded py-evm node; the contract clients and the
protocol flows must also work against any standard JSON-RPC endpoint. :class:`AnvilNode`
runs Foundry's Anvil, pinned in ``tools/ethnode/package-lock.json`` (the npm package ships
the binary) and installed by ``scripts/install_ethnode.sh``, as that second backend: a real
separate process speaking JSON-RPC over HTTP.

The node runs the ``shanghai`` hardfork by default, the EVM version ailedger's contracts
are compiled for, so the suite proves the bytecode runs where consortium chains that have
not adopted Cancun run it.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Final

from ailedger.errors import ChainError, ChainUnreachableError, ConfigError

__all__ = ["ANVIL_CHAIN_ID", "AnvilNode", "anvil_available", "default_anvil_path"]

ANVIL_CHAIN_ID: Final = 31337  # Anvil's default; the Token faucet mints on it
_REPO_ROOT: Final = Path(__file__).resolve().parents[3]
_INSTALL_HINT: Final = "run scripts/install_ethnode.sh (needs Node.js and npm)"
_OUTPUT_TAIL_CHARS: Final = 2000
# Anvil prints this once its HTTP server is bound; with --port 0 it is the only place
# that names the port the kernel picked.
_LISTENING: Final = re.compile(rb"Listening on 127\.0\.0\.1:(\d+)")


def default_anvil_path() -> Path:
    """Where ``scripts/install_ethnode.sh`` puts the ``anvil`` executable: npm installs
    the one platform package (``@foundry-rs/anvil-<os>-<arch>``) that fits this machine."""
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )
    package = f"anvil-{platform.system().lower()}-{arch}"
    return _REPO_ROOT / "tools/ethnode/node_modules/@foundry-rs" / package / "bin/anvil"


def anvil_available() -> bool:
    """Whether Anvil is installed (a native binary: it needs no Node.js to run)."""
    return os.access(default_anvil_path(), os.X_OK)


def _checked_address(address: str) -> str:
    hex_part = address.removeprefix("0x").removeprefix("0X")
    if len(hex_part) != 40 or any(c not in "0123456789abcdefABCDEF" for c in hex_part):
        raise ConfigError(
            f"a prefunded account must be an address (0x and 40 hex digits), not {address!r}; "
            "check the accounts passed to AnvilNode"
        )
    return "0x" + hex_part.lower()


class AnvilNode:
    """An Anvil process on ``127.0.0.1``, started on enter and stopped on exit.

    ``accounts`` are ``(address, balance in wei)`` pairs whose balances are set
    (``anvil_setBalance``) before the node is handed out. Besides them, Anvil unlocks
    ``dev_accounts`` accounts of its own with ``dev_balance_ether`` each, for
    ``eth_sendTransaction`` (what ``account fund`` and ``token faucet`` pay gas from).
    ``block_time`` None mines one block per transaction before ``eth_sendRawTransaction``
    returns; a number of seconds mines on that interval instead, like a real network.

    Example::

        with AnvilNode([(address, 10**21)]) as node:
            w3 = Web3(Web3.HTTPProvider(node.url))
    """

    def __init__(
        self,
        accounts: Sequence[tuple[str, int]] = (),
        *,
        chain_id: int = ANVIL_CHAIN_ID,
        hardfork: str = "shanghai",
        block_time: float | None = None,
        dev_accounts: int = 10,
        dev_balance_ether: int = 10_000,
        startup_timeout: float = 30.0,
        executable: Path | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        for _, balance in accounts:
            if balance < 0:
                raise ConfigError("a prefunded account's balance must be >= 0 wei")
        if chain_id <= 0:
            raise ConfigError(f"chain id must be positive, got {chain_id}")
        if block_time is not None and block_time <= 0:
            raise ConfigError(f"block time must be positive seconds, got {block_time}")
        self._accounts = [(_checked_address(a), balance) for a, balance in accounts]
        self._chain_id = chain_id
        self._hardfork = hardfork
        self._block_time = block_time
        self._dev_accounts = dev_accounts
        self._dev_balance_ether = dev_balance_ether
        self._startup_timeout = startup_timeout
        self._executable = executable if executable is not None else default_anvil_path()
        self._extra_args = list(extra_args)
        self._process: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None
        self._port: int | None = None

    @property
    def chain_id(self) -> int:
        """The chain id the node answers to ``eth_chainId``."""
        return self._chain_id

    @property
    def port(self) -> int:
        """The TCP port the node listens on; only while it runs."""
        if self._port is None or self._process is None:
            raise ChainUnreachableError("the Anvil node is not running; start it first")
        return self._port

    @property
    def url(self) -> str:
        """The HTTP JSON-RPC endpoint, e.g. ``http://127.0.0.1:40123``; only while it runs."""
        return f"http://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        command = [
            str(self._executable),
            "--host", "127.0.0.1",
            # Port 0: the kernel picks a free port as Anvil binds it, so no other process
            # can take it in between; the port is read back from Anvil's output.
            "--port", "0",
            "--chain-id", str(self._chain_id),
            "--hardfork", self._hardfork,
            "--accounts", str(self._dev_accounts),
            "--balance", str(self._dev_balance_ether),
        ]  # fmt: skip
        if self._block_time is not None:
            command += ["--block-time", f"{self._block_time:g}"]
        return command + self._extra_args

    def start(self) -> AnvilNode:
        """Start Anvil, wait until it answers ``eth_chainId``, then fund ``accounts``."""
        if self._process is not None:
            raise ConfigError("this Anvil node is already running; stop it first")
        if not os.access(self._executable, os.X_OK):
            raise ConfigError(f"Anvil is not installed at {self._executable}: {_INSTALL_HINT}")
        self._spawn()
        try:
            self._port = self._wait_ready()
            for address, balance in self._accounts:
                self._rpc("anvil_setBalance", [address, hex(balance)])
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self) -> None:
        # Output goes to a file, not a pipe: nobody reads a pipe while the node runs, and a
        # full pipe would block Anvil (it logs every RPC method it serves).
        self._output = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the node
        try:
            self._process = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=self._output,
                stderr=subprocess.STDOUT,
                # Own session: a Ctrl-C in the test runner reaches Python only, which then
                # stops the node itself, in order.
                start_new_session=True,
            )
        except OSError as exc:
            self._output.close()
            self._output = None
            raise ConfigError(f"cannot run {self._executable}: {exc}; {_INSTALL_HINT}") from exc

    def _wait_ready(self) -> int:
        assert self._process is not None and self._output is not None
        deadline = time.monotonic() + self._startup_timeout
        port: int | None = None
        while True:
            code = self._process.poll()
            if code is not None:
                raise ChainUnreachableError(
                    f"Anvil exited with status {code} before answering; "
                    f"its output ends with:\n{self._output_tail()}"
                )
            if port is None:
                self._output.seek(0)
                found = _LISTENING.search(self._output.read())
                port = int(found.group(1)) if found else None
            if port is not None:
                chain_id = _call(f"http://127.0.0.1:{port}", "eth_chainId")
                if chain_id is not None:
                    if chain_id != hex(self._chain_id):
                        raise ChainError(
                            f"Anvil on port {port} answers chain id {chain_id!r}, not "
                            f"{hex(self._chain_id)}; its output ends with:\n{self._output_tail()}"
                        )
                    return port
            if time.monotonic() >= deadline:
                raise ChainUnreachableError(
                    f"Anvil did not answer eth_chainId within {self._startup_timeout:g} s; "
                    "raise startup_timeout on a slow machine. "
                    f"Its output ends with:\n{self._output_tail()}"
                )
            time.sleep(0.02)

    def _rpc(self, method: str, params: list[object]) -> object:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        request = urllib.request.Request(
            self.url,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
        if not isinstance(answer, dict) or "error" in answer:
            raise ChainError(f"Anvil refused {method}: {answer!r}")
        return answer.get("result")

    def _output_tail(self) -> str:
        if self._output is None:
            return ""
        self._output.flush()
        self._output.seek(0, os.SEEK_END)
        size = self._output.tell()
        self._output.seek(max(0, size - _OUTPUT_TAIL_CHARS))
        text = self._output.read().decode("utf-8", errors="replace").strip()
        return text if text else "(nothing)"

    def stop(self) -> None:
        """Stop the node: SIGTERM, then SIGKILL after 5 s. Safe to call twice."""
        process, self._process = self._process, None
        self._port = None
        try:
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        finally:
            if self._output is not None:
                self._output.close()
                self._output = None

    def __enter__(self) -> AnvilNode:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _call(url: str, method: str) -> object:
    """One JSON-RPC call without parameters; None while nothing (useful) listens yet."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": []}).encode()
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            answer = json.loads(response.read())
    except (OSError, ValueError):
        # URLError and connection resets are OSErrors; a half-started server may send
        # something that is not JSON (ValueError).
        return None
    return answer.get("result") if isinstance(answer, dict) else None
