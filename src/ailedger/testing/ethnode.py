"""Start an external Ethereum JSON-RPC node (Ganache, from npm) for backend tests.

The project's default chain is its embedded py-evm node; the contract clients must also work
against any standard JSON-RPC endpoint. :class:`GanacheNode` runs Ganache 7.9.2, pinned in
``tools/ethnode/package-lock.json`` and installed by ``scripts/install_ethnode.sh``, as that
second backend: a real separate process speaking JSON-RPC over HTTP.

Ganache 7.9.2 knows hardforks up to ``shanghai`` (no Cancun: no blobs, no ``MCOPY``, no
transient storage), so contracts deployed to it must be compiled with ``evm_version =
"shanghai"``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Final

from ailedger.errors import ChainUnreachableError, ConfigError

__all__ = ["GanacheNode", "default_ganache_path", "ganache_available"]

_REPO_ROOT: Final = Path(__file__).resolve().parents[3]
_INSTALL_HINT: Final = "run scripts/install_ethnode.sh (needs Node.js and npm)"
# Ganache's stderr on a crash is mostly one minified line of its webpack bundle; only its end
# (the message and the stack) is useful in an error.
_STDERR_TAIL_CHARS: Final = 2000
_PORT_ATTEMPTS: Final = 3


def default_ganache_path() -> Path:
    """Where ``scripts/install_ethnode.sh`` puts the ``ganache`` executable."""
    return _REPO_ROOT / "tools" / "ethnode" / "node_modules" / ".bin" / "ganache"


def ganache_available() -> bool:
    """Whether Ganache is installed and ``node`` is on ``PATH`` to run it."""
    return default_ganache_path().is_file() and shutil.which("node") is not None


def _free_port() -> int:
    # Ganache refuses --server.port 0, so a free port is picked here; another process may take
    # it before Ganache binds, which start() detects and retries.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _normalise_key(key: str) -> str:
    hex_part = key.removeprefix("0x").removeprefix("0X").lower()
    if len(hex_part) != 64 or any(c not in "0123456789abcdef" for c in hex_part):
        raise ConfigError(
            "a prefunded account's private key must be 32 bytes of hex (64 digits, optional "
            "0x prefix); check the key passed to GanacheNode"
        )
    return "0x" + hex_part


class GanacheNode:
    """A Ganache process on ``127.0.0.1``, started on enter and stopped on exit.

    ``accounts`` are ``(private key hex, balance in wei)`` pairs funded at genesis. With no
    accounts, Ganache makes ten random ones of its own. Blocks are mined instantly, one per
    transaction, before ``eth_sendRawTransaction`` returns.

    Example::

        with GanacheNode([(key, 10**21)], chain_id=1337) as node:
            w3 = Web3(Web3.HTTPProvider(node.url))
    """

    def __init__(
        self,
        accounts: Sequence[tuple[str, int]] = (),
        *,
        chain_id: int = 1337,
        hardfork: str = "shanghai",
        startup_timeout: float = 30.0,
        executable: Path | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        for _, balance in accounts:
            if balance < 0:
                raise ConfigError("a prefunded account's balance must be >= 0 wei")
        if chain_id <= 0:
            raise ConfigError(f"chain id must be positive, got {chain_id}")
        self._accounts = [(_normalise_key(key), balance) for key, balance in accounts]
        self._chain_id = chain_id
        self._hardfork = hardfork
        self._startup_timeout = startup_timeout
        self._executable = executable if executable is not None else default_ganache_path()
        self._extra_args = list(extra_args)
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._port: int | None = None
        # A fresh net_version per process tells this node apart from any other server that
        # grabbed the port between _free_port() and Ganache binding it.
        self._network_id = 0

    @property
    def chain_id(self) -> int:
        """The chain id the node answers to ``eth_chainId``."""
        return self._chain_id

    @property
    def port(self) -> int:
        """The TCP port the node listens on; only while it runs."""
        if self._port is None or self._process is None:
            raise ChainUnreachableError("the Ganache node is not running; start it first")
        return self._port

    @property
    def url(self) -> str:
        """The HTTP JSON-RPC endpoint, e.g. ``http://127.0.0.1:40123``; only while it runs."""
        return f"http://127.0.0.1:{self.port}"

    def _command(self, port: int) -> list[str]:
        command = [
            str(self._executable),
            "--server.host", "127.0.0.1",
            "--server.port", str(port),
            "--chain.chainId", str(self._chain_id),
            "--chain.networkId", str(self._network_id),
            "--chain.hardfork", self._hardfork,
            "--miner.blockTime", "0",  # instamine: one block per transaction
            "--miner.instamine", "eager",  # mined before the send call returns
            "--logging.quiet",
        ]  # fmt: skip
        for key, balance in self._accounts:
            command += ["--wallet.accounts", f"{key},{balance}"]
        return command + self._extra_args

    def start(self) -> GanacheNode:
        """Start Ganache and wait until it answers ``eth_chainId`` with the chain id."""
        if self._process is not None:
            raise ChainUnreachableError("this Ganache node is already running; stop it first")
        if not self._executable.is_file():
            raise ConfigError(f"Ganache is not installed at {self._executable}: {_INSTALL_HINT}")
        if shutil.which("node") is None:
            raise ConfigError(
                "Ganache needs Node.js, but `node` is not on PATH: install it "
                "(e.g. `apt-get install nodejs npm`) and run scripts/install_ethnode.sh"
            )
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            port = _free_port()
            self._network_id = 1_000_000 + secrets.randbelow(2**31)
            self._spawn(port)
            try:
                self._wait_ready(port)
            except ChainUnreachableError:
                tail = self._stop_and_read_stderr()
                if "EADDRINUSE" in tail and attempt < _PORT_ATTEMPTS:
                    continue  # lost the race for the port; pick another one
                raise
            self._port = port
            return self
        raise AssertionError("unreachable")  # pragma: no cover

    def _spawn(self, port: int) -> None:
        # stderr goes to a file, not a pipe: nobody reads a pipe while the node runs, and a
        # full pipe would block Ganache. The banner on stdout (--logging.quiet keeps it) is
        # of no use to tests.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the node
        try:
            self._process = subprocess.Popen(
                self._command(port),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr,
                # Own session: a Ctrl-C in the test runner reaches Python only, which then
                # stops the node itself, in order.
                start_new_session=True,
            )
        except OSError as exc:
            self._stderr.close()
            self._stderr = None
            raise ConfigError(f"cannot run {self._executable}: {exc}; {_INSTALL_HINT}") from exc

    def _wait_ready(self, port: int) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self._startup_timeout
        url = f"http://127.0.0.1:{port}"
        while True:
            code = self._process.poll()
            if code is not None:
                raise ChainUnreachableError(
                    f"Ganache exited with status {code} before answering on {url}; "
                    f"its stderr ends with:\n{self._stderr_tail()}"
                )
            chain_id = _call(url, "eth_chainId")
            if chain_id is not None:
                network_id = _call(url, "net_version")
                if network_id != str(self._network_id) or chain_id != hex(self._chain_id):
                    raise ChainUnreachableError(
                        f"another server answers on {url} (eth_chainId {chain_id!r}, "
                        f"net_version {network_id!r}), not the Ganache just started; "
                        f"its stderr ends with:\n{self._stderr_tail()}"
                    )
                return
            if time.monotonic() >= deadline:
                raise ChainUnreachableError(
                    f"Ganache did not answer eth_chainId on {url} within "
                    f"{self._startup_timeout:g} s; raise startup_timeout on a slow machine. "
                    f"Its stderr ends with:\n{self._stderr_tail()}"
                )
            time.sleep(0.05)

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.flush()
        self._stderr.seek(0, os.SEEK_END)
        size = self._stderr.tell()
        self._stderr.seek(max(0, size - _STDERR_TAIL_CHARS))
        text = self._stderr.read().decode("utf-8", errors="replace").strip()
        return text if text else "(nothing)"

    def _stop_and_read_stderr(self) -> str:
        tail = self._stderr_tail()
        self.stop()
        return tail

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
            if self._stderr is not None:
                self._stderr.close()
                self._stderr = None

    def __enter__(self) -> GanacheNode:
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
