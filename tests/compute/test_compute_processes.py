"""The compute market through the real CLI, each party its own process: a requester
serving the chain and running its node, a provider running `provider start`, and a
provider killed with SIGKILL in the middle of a job."""

from __future__ import annotations

import os
import signal
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ailedger.compute.provider.sandbox import confinement
from tests.processes import Party, free_port, stop, wait_http

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CONFINED = confinement() is not None


@dataclass
class Market:
    requester: Party
    provider: Party
    tmp: Path
    processes: list[Any]

    def start_provider(self) -> Any:
        flags = [] if CONFINED else ["--allow-unconfined"]
        log = self.tmp / f"provider-{len(self.processes)}.log"
        agent = self.provider.spawn(
            "provider", "start", "--price", "1", "--max-output-mb", "16", *flags, log=log
        )
        self.processes.append(agent)
        deadline = time.monotonic() + 60
        while "watching the market" not in log.read_text():
            assert agent.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        return agent

    def bundle(self, name: str, code: str) -> Path:
        directory = self.tmp / name
        directory.mkdir()
        (directory / "main.py").write_text(textwrap.dedent(code))
        (directory / "job.toml").write_text(
            '[job]\nentry = "main.py"\nruntime = "python"\nseed = 1\ndeterministic = true\n'
            "[resources]\ncpu_cores = 1\nram_mb = 256\nmax_hours = 1\n"
            '[market]\nmax_price_per_hour = "3"\ndeadline_hours = 1\n'
        )
        return directory

    def submit(self, bundle: Path) -> int:
        flags = [] if CONFINED else ["--allow-unconfined"]
        done = self.requester.json("job", "submit", str(bundle), *flags)
        assert done["status"] == "assigned", done
        return int(done["job_id"])  # type: ignore[call-overload]

    def wait(self, job_id: int, wanted: str) -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while True:
            info = self.requester.json("job", "status", str(job_id))
            if info["status"] == wanted:
                return info
            assert time.monotonic() < deadline, info
            time.sleep(0.3)


@pytest.fixture
def market(tmp_path: Path, contract_cache: Path) -> Iterator[Market]:
    chain_port, node_port = free_port(), free_port()
    chain_url = f"http://127.0.0.1:{chain_port}"
    requester = Party(tmp_path / "requester", contract_cache, None)
    provider = Party(tmp_path / "provider", contract_cache, chain_url)
    requester.init()
    provider.init()
    processes = [requester.spawn("chain", "serve", "--port", str(chain_port))]
    try:
        wait_http(chain_url, {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
        requester.run("token", "faucet", "500")
        provider.run("token", "faucet", "500")
        processes.append(requester.spawn("node", "start", "--port", str(node_port)))
        wait_http(f"http://127.0.0.1:{node_port}/v1/health")
        yield Market(requester, provider, tmp_path, processes)
    finally:
        for process in reversed(processes):
            stop(process)


SUM = """
    import json, os
    print("computed", flush=True)
    with open(os.path.join(os.environ["AILEDGER_OUTPUT"], "s.json"), "w") as f:
        json.dump({"sum": sum(range(1000))}, f)
"""
SLOW = """
    import time
    print("started", flush=True)
    time.sleep(300)
"""


def test_submit_follow_fetch_accept_then_survive_a_killed_provider(market: Market) -> None:
    provider_address = market.provider.json("account", "show")["address"]
    before = int(market.provider.json("token", "balance")["base_units"])  # type: ignore[call-overload]
    agent = market.start_provider()

    job_id = market.submit(market.bundle("sum", SUM))
    info = market.wait(job_id, "review")
    assert [a["provider"] for a in info["assignments"]] == [provider_address]
    assert "computed" in market.requester.run("job", "logs", str(job_id)).stdout
    out = market.tmp / "result"
    market.requester.run("job", "result", str(job_id), "-o", str(out))
    assert (out / "s.json").read_text() == '{"sum": 499500}'
    market.requester.run("job", "accept", str(job_id))
    after = int(market.provider.json("token", "balance")["base_units"])  # type: ignore[call-overload]
    # Staked 100 AIL; paid by the second at 1 AIL an hour, at least the one second started.
    paid = after - before + 100 * 10**18
    assert 10**18 // 3600 <= paid <= 120 * 10**18 // 3600

    slow = market.submit(market.bundle("slow", SLOW))
    deadline = time.monotonic() + 60
    while "started" not in market.requester.run("job", "logs", str(slow)).stdout:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    os.kill(agent.pid, signal.SIGKILL)  # the provider's machine dies mid-job
    agent.wait()
    cancelled = market.requester.json("job", "cancel", str(slow))
    assert cancelled["action"] == "cancelled"
    info = market.requester.json("job", "status", str(slow))
    assert info["status"] == "cancelled" and info["escrow"] == "0"

    market.start_provider()  # restarted: it resumes, finds the job ended, serves new ones
    again = market.submit(market.bundle("again", SUM))
    market.wait(again, "review")
    bad = market.requester.run("job", "result", "999", "-o", str(market.tmp / "x"), ok=False)
    assert bad.returncode == 1 and "no job 999" in bad.stderr

    # A malformed job.toml is refused, naming the field, before anything is paid.
    paid_before = market.requester.json("token", "balance")["base_units"]
    broken = market.bundle("broken", SUM)
    toml = (broken / "job.toml").read_text().replace("ram_mb = 256", "ram_mb = -1")
    (broken / "job.toml").write_text(toml)
    refused = market.requester.run("job", "submit", str(broken), ok=False)
    assert refused.returncode == 1 and "ram_mb" in refused.stderr
    assert market.requester.json("token", "balance")["base_units"] == paid_before
