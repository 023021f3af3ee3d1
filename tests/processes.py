"""Parties as separate processes: each a home driven through the real CLI."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ailedger.keys.home import NodeHome
from ailedger.settings import EMBEDDED

PASSPHRASE = "two parties, one chain"
# scrypt's cost in the homes' key files: production's default (2**17) costs about 0.3 s per
# unlock, and every CLI command unlocks once or twice; `ailedger init` itself is run by
# tests/cli, so these homes are written directly at a test cost.
TEST_SCRYPT_N = 2**12


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Party:
    def __init__(self, home: Path, cache: Path, chain: str | None) -> None:
        self.home = home
        self.env = {
            **os.environ,
            "AILEDGER_HOME": str(home),
            "AILEDGER_PASSPHRASE": PASSPHRASE,
            "AILEDGER_CACHE_DIR": str(cache),
            "COLUMNS": "200",
        }
        if chain:
            self.env["AILEDGER_CHAIN"] = chain
        else:
            self.env.pop("AILEDGER_CHAIN", None)

    def init(self) -> None:
        """What `ailedger init` writes for this party (its chain setting included), with
        keys that unlock cheaply."""
        chain = self.env.get("AILEDGER_CHAIN", EMBEDDED)
        NodeHome.init(self.home, PASSPHRASE, chain=chain, scrypt_n=TEST_SCRYPT_N)

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "ailedger.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if ok:
            assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done

    def json(self, *args: str) -> dict[str, object]:
        return json.loads(self.run(*args, "--json").stdout)  # type: ignore[no-any-return]

    def spawn(self, *args: str, log: Path | None = None) -> subprocess.Popen[str]:
        """Start a long-running command; its output goes to ``log`` if given (so the test
        can read it while the process runs), else to pipes."""
        out = subprocess.PIPE if log is None else log.open("w")
        try:
            return subprocess.Popen(
                [sys.executable, "-m", "ailedger.cli", *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.PIPE if log is None else subprocess.STDOUT,
                text=True,
            )
        finally:
            if log is not None:
                out.close()  # type: ignore[union-attr]  # the child holds its own copy


def wait_http(url: str, body: dict[str, object] | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if body is None:
                httpx.get(url, timeout=1)
            else:
                httpx.post(url, json=body, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not come up within {timeout} s")


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
