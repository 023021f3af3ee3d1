"""Two parties for real: an owner and a researcher, separate homes and processes, one chain.

On the embedded backend the owner's home serves its embedded chain over JSON-RPC; on the
Anvil backend both homes use an external node, where the owner deploys the contracts and
the researcher gets a copy of the manifest. The owner runs its gateway; the researcher's
home talks to it over HTTP. Everything goes through the real CLI: sharing, federated
matchmaking and audit anchoring.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.processes import Party, free_port, stop, wait_http

from ailedger.chain.market_windows import DEV_CHAIN_WINDOWS
from ailedger.testing.ethnode import AnvilNode, anvil_available

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(params=["embedded", pytest.param("anvil", marks=pytest.mark.rpcnode)])
def parties(
    request: pytest.FixtureRequest, tmp_path: Path, contract_cache: Path
) -> Iterator[tuple[Party, Party, int]]:
    if request.param == "anvil":
        yield from _parties_on_anvil(tmp_path, contract_cache)
    else:
        yield from _parties_on_embedded(tmp_path, contract_cache)


def _parties_on_anvil(tmp_path: Path, contract_cache: Path) -> Iterator[tuple[Party, Party, int]]:
    if not anvil_available():
        pytest.skip("Anvil is not installed: run scripts/install_ethnode.sh")
    with AnvilNode() as node:
        owner = Party(tmp_path / "owner", contract_cache, node.url)
        researcher = Party(tmp_path / "researcher", contract_cache, node.url)
        owner.init()
        researcher.init()
        owner.run("account", "fund")  # gas for the deploy, from Anvil's dev account
        deployed = owner.json("chain", "deploy")
        manifest = Path(str(deployed["manifest"]))
        (tmp_path / "researcher" / "deployments").mkdir()
        shutil.copy(manifest, tmp_path / "researcher" / "deployments" / manifest.name)
        # The windows the deploy chose are read back from the contract by the other home;
        # Anvil mines on demand, so reveals and disputes keep the development windows.
        windows = researcher.json("chain", "status")["market_windows"]
        assert windows == deployed["market_windows"]
        assert windows["reveal_s"] == DEV_CHAIN_WINDOWS.reveal_s  # type: ignore[index]
        yield owner, researcher, free_port()


def _parties_on_embedded(
    tmp_path: Path, contract_cache: Path
) -> Iterator[tuple[Party, Party, int]]:
    chain_port, gateway_port = free_port(), free_port()
    owner = Party(tmp_path / "owner", contract_cache, None)
    researcher = Party(tmp_path / "researcher", contract_cache, f"http://127.0.0.1:{chain_port}")
    owner.init()
    researcher.init()
    chain = owner.spawn("chain", "serve", "--port", str(chain_port))
    processes = [chain]
    try:
        wait_http(
            f"http://127.0.0.1:{chain_port}",
            {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
        )
        yield owner, researcher, gateway_port
    finally:
        for process in processes:
            stop(process)


def _wait_for_entry(gateway: str, kind: str) -> None:
    """Until the node's audit log, read from its gateway, holds an entry of ``kind``."""
    deadline = time.monotonic() + 60
    while True:
        page = httpx.get(f"{gateway}/v1/audit/entries", params={"stop": 1000}).json()
        if any(json.loads(entry)["kind"] == kind for entry in page["entries"]):
            return
        assert time.monotonic() < deadline, page
        time.sleep(0.1)


def test_publish_request_grant_fetch_audit_revoke(
    parties: tuple[Party, Party, int], tmp_path: Path
) -> None:
    owner, researcher, gateway_port = parties
    source = tmp_path / "cohort.csv"
    source.write_bytes(os.urandom(300_000) + b"rare disease cohort, de-identified\n")

    status = researcher.json("chain", "status")
    assert status["pending"] == 0 and "JSON-RPC node at" in str(status["description"])
    owner.run("account", "fund")
    researcher.run("token", "faucet", "100")
    published = owner.json(
        "data",
        "publish",
        str(source),
        "--title",
        "Rare disease cohort",
        "--tag",
        "genomics",
        "--purpose",
        "rare-disease-research",
        "--price",
        "5",
        "--max-reads",
        "3",
    )
    dataset = str(published["dataset"])

    from ailedger.demo.records import RARE_CASE, write_bundles

    bundles = write_bundles(tmp_path / "fhir", 12)
    imported = owner.json("health", "import", *map(str, bundles))
    assert imported["patients"] == 12

    gateway = owner.spawn("node", "start", "--port", str(gateway_port), "--anchor-every", "1")
    try:
        wait_http(f"http://127.0.0.1:{gateway_port}/v1/health")
        listing = researcher.json("data", "list", "--search", "rare")
        assert [d["dataset"] for d in listing["datasets"]] == [dataset]  # type: ignore[index]
        assert listing["datasets"][0]["title"] == "Rare disease cohort"  # type: ignore[index]

        requested = researcher.json(
            "data", "request", dataset, "--purpose", "rare-disease-research"
        )
        grant = str(requested["request"])
        assert requested["status"] == "pending"
        researcher.run("account", "register-key")
        out = tmp_path / "fetched.csv"
        refused = researcher.run(
            "data", "fetch", dataset, "--grant", grant, "-o", str(out), ok=False
        )
        assert refused.returncode == 1 and "awaits the owner's approval" in refused.stderr
        assert not out.exists()

        owner.run("data", "grant", grant)
        fetched = researcher.json("data", "fetch", dataset, "--grant", grant, "-o", str(out))
        assert out.read_bytes() == source.read_bytes()
        assert fetched["size"] == source.stat().st_size
        receipt = researcher.json("data", "receipt", dataset, str(fetched["audit_index"]))
        assert receipt["proved"] is True and receipt["matches_fetch"] is True
        shown = researcher.json("data", "show", dataset)
        assert shown["purposes"] == ["rare-disease-research"] and shown["max_reads"] == 3

        wrong = researcher.run("data", "request", dataset, "--purpose", "model-training", ok=False)
        assert wrong.returncode == 1

        hpo = [arg for term in RARE_CASE[:6] for arg in ("--hpo", term)]
        # Answering clinicians must be able to reach whoever asks: no contact, no query.
        refused = researcher.run("health", "match", "--federated", *hpo, ok=False)
        assert refused.returncode == 1 and "no MME contact" in refused.stderr
        researcher.run("health", "contact", "Dr R. Lind", "mailto:lind@lab.example")
        matched = researcher.json("health", "match", "--federated", *hpo)
        found = len(matched["results"])
        assert list(matched["asked"].values()) == [f"ok: {found} results"] and found >= 1
        top = matched["results"][0]
        assert top["score"]["patient"] >= 0.99
        assert top["patient"]["contact"]["href"] == "mailto:genetics@hospital-a.example.org"
        # What the patient's matchmaking consent shares, never the record.
        assert top["patient"]["features"]
        assert set(top["patient"]) <= {"id", "contact", "features", "genomicFeatures"}

        owner.run("data", "revoke", grant)
        again = tmp_path / "again.csv"
        refused = researcher.run(
            "data", "fetch", dataset, "--grant", grant, "-o", str(again), ok=False
        )
        assert "revoked" in refused.stderr and not again.exists()
        # The node logs the revocation from the chain's events in its next round of chores.
        _wait_for_entry(f"http://127.0.0.1:{gateway_port}", "revoke")
    finally:
        stop(gateway)

    history = owner.json("audit", "history", "--dataset", dataset)
    outcomes = [(e["kind"], e["outcome"]) for e in history["entries"]]  # type: ignore[index]
    assert ("read", "served") in outcomes
    assert [o for o in outcomes if o == ("read", "refused")] == [("read", "refused")] * 2
    assert ("grant", "on chain") in outcomes and ("revoke", "on chain") in outcomes
    everything = owner.json("audit", "history")["entries"]
    incoming = [e for e in everything if e["kind"] == "mme-query"]  # type: ignore[index]
    assert [e["direction"] for e in incoming] == ["incoming"] and incoming[0]["results"] >= 1
    outgoing = researcher.json("audit", "history")["entries"]
    assert [e["direction"] for e in outgoing if e["kind"] == "mme-query"] == ["outgoing"]
    assert all(e["proof_ok"] for e in history["entries"])  # type: ignore[index]
    verified = owner.json("audit", "verify")
    assert verified["ok"] is True and verified["anchored"] >= 1
