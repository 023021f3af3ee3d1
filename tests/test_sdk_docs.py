"""docs/sdk.md runs: its ```python blocks are executed in order, in one namespace, against
the processes the page tells the reader to start (a served chain, two nodes and a
provider, each its own home driven through the real CLI), and what they did is checked."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ailedger.compute.provider.sandbox import confinement
from tests.processes import PASSPHRASE, Party, free_port, stop, wait_http

pytestmark = [pytest.mark.integration, pytest.mark.slow]
DOC = Path(__file__).resolve().parents[1] / "docs" / "sdk.md"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def python_blocks(text: str) -> list[str]:
    return PYTHON_BLOCK.findall(text)


@dataclass
class World:
    """What the page says the reader has: the homes, and the variables its code assumes."""

    researcher: Party
    variables: dict[str, Any]


def _wait_for_line(log: Path, line: str, process: Any) -> None:
    deadline = time.monotonic() + 60
    while line not in log.read_text():
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)


@pytest.fixture
def world(tmp_path: Path, contract_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    if confinement() is None:
        pytest.skip("the page's job needs a provider that confines jobs (bwrap or unshare)")
    for name in ("AILEDGER_HOME", "AILEDGER_CHAIN", "AILEDGER_PASSPHRASE"):
        monkeypatch.delenv(name, raising=False)  # the page's variables, not the caller's
    monkeypatch.setenv("AILEDGER_CACHE_DIR", str(contract_cache))  # compiled once per run
    chain_port, hospital_port, researcher_port = free_port(), free_port(), free_port()
    chain_url = f"http://127.0.0.1:{chain_port}"
    hospital = Party(tmp_path / "hospital", contract_cache, None)
    researcher = Party(tmp_path / "researcher", contract_cache, chain_url)
    gpu = Party(tmp_path / "gpu", contract_cache, chain_url)
    for party in (hospital, researcher, gpu):
        party.init()
    processes = [hospital.spawn("chain", "serve", "--port", str(chain_port))]
    try:
        wait_http(chain_url, {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
        for party in (hospital, researcher, gpu):
            party.run("token", "faucet", "500")
        nodes = [(hospital, hospital_port), (researcher, researcher_port)]
        for party, port in nodes:
            processes.append(party.spawn("node", "start", "--port", str(port)))
        provider_log = tmp_path / "provider.log"
        processes.append(gpu.spawn("provider", "start", "--price", "1", log=provider_log))
        for _, port in nodes:
            wait_http(f"http://127.0.0.1:{port}/v1/health")
        _wait_for_line(provider_log, "watching the market", processes[-1])
        work = tmp_path / "work"
        work.mkdir()
        variables = {
            "HOSPITAL_HOME": tmp_path / "hospital",
            "RESEARCHER_HOME": tmp_path / "researcher",
            "PASSPHRASE": PASSPHRASE,
            "WORK": work,
        }
        yield World(researcher, variables)
    finally:
        for process in reversed(processes):
            stop(process)


def test_the_sdk_page_runs(world: World) -> None:
    namespace = dict(world.variables)
    for number, block in enumerate(python_blocks(DOC.read_text()), 1):
        first_line = block.strip().splitlines()[0]
        try:
            exec(compile(block, f"<docs/sdk.md python block {number}>", "exec"), namespace)
        except (Exception, SystemExit) as exc:  # a snippet may exit as a program would
            raise AssertionError(
                f"docs/sdk.md python block {number} ({first_line!r}) failed: {exc!r}"
            ) from exc

    work: Path = world.variables["WORK"]
    assert namespace["fetched"].path.read_bytes() == (work / "cohort.csv").read_bytes()
    assert json.loads((work / "result" / "sum.json").read_text()) == {"sum": 499500}
    job = world.researcher.json("job", "status", str(namespace["job_id"]))
    assert job["status"] == "completed"
    requests = world.researcher.json("data", "requests")["made_by_me"]
    assert [(r["request_id"], r["status"]) for r in requests] == [  # type: ignore[index,union-attr]
        (namespace["request_id"], "granted")
    ]
