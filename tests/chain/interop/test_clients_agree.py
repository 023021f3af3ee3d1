"""ethers v6, viem and web3.py run one checklist against ``ailedger chain serve`` and
against Anvil, and every client gets the same outcomes from both nodes (issue 17).

The checklist (``tools/interop/checklist.mjs`` for the npm clients, ``web3_checklist.py``
for web3.py): accounts, balances at tags, a node-signed transaction with a lowercase
``to``, a signed one, receipts, deploying a small contract, a call, ``estimateGas``
within 1% of gas used, a revert reason, logs through a filter and through getLogs, fee
history, a batch, and ``newHeads`` over WebSocket. Outcomes leave out what legitimately
differs between nodes (hashes, chain ids, addresses), so the dictionaries must be equal.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.chain.interop import web3_checklist
from tests.processes import Party, free_port, stop, wait_http

from ailedger.testing.ethnode import AnvilNode, anvil_available

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
INTEROP = REPO / "tools/interop"
INSTALL_HINT = "run scripts/install_interop.sh and scripts/install_ethnode.sh (need Node.js)"

PROBE_SOURCE = """
# pragma version ~=0.4.1
event Stored:
    who: indexed(address)
    value: uint256

stored: public(uint256)


@deploy
def __init__(initial: uint256):
    self.stored = initial


@external
def store(amount: uint256):
    self.stored = amount
    log Stored(who=msg.sender, value=amount)


@external
@view
def refuse():
    raise "interop: refused"
"""

ONE_ETHER = str(10**18)
EXPECTED: dict[str, Any] = {
    "chainId": True,
    "accounts": True,
    "nodeSigned": {"status": 1, "lowercaseTo": True},
    "balances": {
        "before": "0",
        "earliest": "0",
        "atBlock": ONE_ETHER,
        "latest": ONE_ETHER,
        "pending": ONE_ETHER,
    },
    "signed": {"status": 1, "type": 2, "gasUsed": 21_000, "fromMatches": True},
    "deploy": {"status": 1, "addressMatches": True, "hasCode": True},
    "call": "42",
    "revert": {"code": "CALL_EXCEPTION", "reason": "interop: refused"},
    "estimate": True,
    "filterLogs": ["7"],
    "uninstall": True,
    "getLogs": ["7"],
    "feeHistory": {
        "blocks": 2,
        "baseFees": 3,
        "rewardRows": 2,
        "rewardColumns": True,
        "requested": 2,
    },
    "priorityFee": True,
    "batch": ["result", "result", -32601],
    "newHeads": True,
}
WEB3_ONLY = {"missingFields": {"receipt": [], "transaction": [], "block": []}}


def _require(available: bool, what: str) -> None:
    if available:
        return
    message = f"{what} is not installed: {INSTALL_HINT}"
    if os.environ.get("AILEDGER_REQUIRE_INTEROP") == "1":
        pytest.fail(message + " (AILEDGER_REQUIRE_INTEROP=1)")
    pytest.skip(message)


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import vyper  # type: ignore[import-untyped]
    from vyper.compiler.settings import Settings  # type: ignore[import-untyped]

    from ailedger.chain.compiler import EVM_VERSION

    output = vyper.compile_code(
        PROBE_SOURCE,
        output_formats=["abi", "bytecode"],
        settings=Settings(evm_version=EVM_VERSION),
    )
    return {"abi": output["abi"], "bytecode": output["bytecode"]}


@pytest.fixture(scope="module")
def nodes(
    tmp_path_factory: pytest.TempPathFactory, contract_cache: Path, probe: dict[str, Any]
) -> Iterator[dict[str, dict[str, Any]]]:
    """Both nodes' endpoints with the probe contract: ``chain serve`` as its own process
    on a fresh home, and Anvil."""
    _require(anvil_available(), "Anvil")
    port = free_port()
    party = Party(tmp_path_factory.mktemp("interop") / "home", contract_cache, None)
    party.init()
    serving = party.spawn("chain", "serve", "--port", str(port))
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url, {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
        with AnvilNode() as anvil:
            yield {
                "ailedger": {"http": url, "ws": f"ws://127.0.0.1:{port}", **probe},
                "anvil": {"http": anvil.url, "ws": "ws" + anvil.url.removeprefix("http"), **probe},
            }
    finally:
        stop(serving)


def run_npm_client(client: str, config: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    node = shutil.which("node")
    _require(node is not None and (INTEROP / "node_modules/ethers").is_dir(), "ethers/viem")
    assert node is not None
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    done = subprocess.run(
        [node, str(INTEROP / "checklist.mjs"), client, str(config_file)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{client} failed against {config['http']}:\n{done.stderr}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("client", ["ethers", "viem", "web3.py"])
def test_every_client_gets_the_same_outcomes_from_both_nodes(
    client: str, nodes: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    results = {}
    for name, config in nodes.items():
        if client == "web3.py":
            results[name] = web3_checklist.run(config)
        else:
            results[name] = run_npm_client(client, config, tmp_path)
    expected = {**EXPECTED, **(WEB3_ONLY if client == "web3.py" else {})}
    assert results["anvil"] == expected, "the checklist's expectations no longer hold on Anvil"
    assert results["ailedger"] == results["anvil"]
