"""Matchmaker Exchange with a real MME node as the peer, both ways: patientMatcher 4.7.0
(from PyPI, in ``.venv-mme``: ``scripts/mme-env.sh``) served on 127.0.0.1 with mongomock and
its 50 demo patients, the MME benchmark set (Buske et al., Hum Mutat 2015).

(a) patientMatcher -> ailedger: patientMatcher's own ``POST /match/external/<id>`` sends each
    of its demo patients to ailedger's ``/mme/match`` with its own client (v1.0 content type,
    its token); ailedger holds the same 50 patients and must find each one.
(b) ailedger -> patientMatcher: ``ailedger health match --peer`` (and the SDK call under it)
    asks patientMatcher as an outside peer; every answer must be valid by the official
    schema. Phenotype-only and gene-only queries: a variant would make patientMatcher call
    Ensembl, which is out of reach here.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ailedger.health.federation import federated_match
from ailedger.health.http import matchmaking_router
from ailedger.health.mme import MatchableCohort, MatchmakerService, NodeContact
from ailedger.health.mme_auth import IssuedTokens, authenticator
from ailedger.health.mme_peers import OutsidePeer
from ailedger.health.mme_schema import response_errors
from ailedger.health.patients import Patient
from ailedger.peer import wire
from ailedger.peer.background import BackgroundServer
from tests.cli.test_cli import home_env, run
from tests.fakes import ListAudit

__all__ = ["home_env"]  # the CLI tests' home, a fixture used below

REPO = Path(__file__).resolve().parents[2]
MME_VENV = Path(os.environ.get("AILEDGER_MME_VENV", REPO / ".venv-mme"))
LAUNCHER = Path(__file__).with_name("mme_peer_server.py")
PEER_TOKEN = "ailedger-to-patientmatcher-token"
DESK = NodeContact("Genetics desk", "https://hospital-a.example.org/mme", "Hospital A")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(
        not (MME_VENV / "bin" / "python").exists(),
        reason=f"patientMatcher's virtualenv {MME_VENV} is missing: run scripts/mme-env.sh",
    ),
]


@dataclass
class Peers:
    """ailedger's MME endpoint and patientMatcher, each knowing the other."""

    pm_url: str
    service: MatchmakerService
    audit: ListAudit
    demo: list[dict[str, Any]]


def _demo_patients() -> list[dict[str, Any]]:
    """patientMatcher's own copy of the 50 benchmark patients (what it loaded)."""
    probe = "import patientMatcher.resources as r; print(r.path_to_benchmark_patients)"
    path = subprocess.run(
        [str(MME_VENV / "bin" / "python"), "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.strip()
    loaded: list[dict[str, Any]] = json.loads(Path(path).read_text())
    return loaded


def _as_stored(raw: dict[str, Any]) -> Patient:
    """A benchmark patient as an ailedger node stores it: no clinician e-mail, so answers
    name the node's contact."""
    features = raw.get("features", [])
    return Patient(
        local_id=raw["id"],
        observed=tuple(f["id"] for f in features if f.get("observed", "yes") == "yes"),
        excluded=tuple(f["id"] for f in features if f.get("observed") == "no"),
        genes=tuple(sorted({g["gene"]["id"] for g in raw.get("genomicFeatures", [])})),
        matchmaking=True,
    )


def _first_line(process: subprocess.Popen[str], log: Path, timeout_s: float) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout_s)
    line = process.stdout.readline() if ready else ""
    if not line:
        process.kill()
        process.communicate(timeout=30)
        pytest.fail(f"patientMatcher did not start:\n{log.read_text()[-3000:]}")
    return line


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peers]:
    demo = _demo_patients()
    scratch = tmp_path_factory.mktemp("mme")
    tokens = IssuedTokens(scratch / "tokens.json")
    pm_token = tokens.issue("patientMatcher")
    audit = ListAudit()
    cohort = MatchableCohort.build([_as_stored(p) for p in demo], b"s" * 32, contact=DESK)
    service = MatchmakerService(
        cohort, authenticator(tokens, "0x" + "11" * 20, lambda a: False), audit
    )
    app = FastAPI()
    app.include_router(matchmaking_router(service))
    with BackgroundServer(app) as ailedger_url:
        env = {
            **os.environ,
            "PEER_TOKEN": PEER_TOKEN,
            "AILEDGER_URL": ailedger_url + wire.MME_MATCH,
            "AILEDGER_TOKEN": pm_token,
            "PYTHONPATH": "",
        }
        # patientMatcher logs at DEBUG level: to a file, as a pipe nobody reads would fill
        # and stop it mid-request.
        log = scratch / "patientmatcher.log"
        with log.open("w") as sink:
            process = subprocess.Popen(
                [str(MME_VENV / "bin" / "python"), str(LAUNCHER)],
                stdout=subprocess.PIPE,
                stderr=sink,
                text=True,
                env=env,
            )
        try:
            port, loaded = _first_line(process, log, 120).split()
            assert int(loaded) == len(demo) == 50
            yield Peers(f"http://127.0.0.1:{port}", service, audit, demo)
        finally:
            process.kill()
            process.communicate(timeout=30)


def test_patientmatcher_queries_ailedger_with_its_own_client(peers: Peers) -> None:
    """(a) Each demo patient, sent by patientMatcher's external matcher in MME v1.0, is
    answered with schema-valid results, the same patient first."""
    first = 0
    for raw in peers.demo:
        reply = httpx.post(
            f"{peers.pm_url}/match/external/{raw['id']}",
            headers={"X-Auth-Token": PEER_TOKEN},
            timeout=60,
        )
        assert reply.status_code == 200, reply.text
        by_node = reply.json()["results"]
        assert [r["node"]["id"] for r in by_node] == ["ailedger"]
        results = by_node[0]["patients"]
        assert response_errors({"results": results}) == [], raw["id"]
        assert all(r["patient"]["contact"]["href"] == DESK.href for r in results)
        if results and results[0]["patient"]["id"] == peers.service.cohort.surrogate(raw["id"]):
            first += 1
    incoming = [e for e in peers.audit.entries if e["direction"] == "incoming"]
    assert {(e["peer"], e["outcome"]) for e in incoming} == {("patientMatcher", "200")}
    assert len(incoming) == 50
    print(f"\npatientMatcher -> ailedger: {first}/50 demo patients found first")
    assert first >= 45


def test_ailedger_queries_patientmatcher_as_an_outside_peer(peers: Peers) -> None:
    """(b) Phenotype-only and gene-only queries of every demo patient, through the SDK
    call ``health match`` uses: schema-valid answers, the same patient found."""
    peer = OutsidePeer("patientMatcher", peers.pm_url, PEER_TOKEN)  # MME v1.0, /match
    contact = DESK.as_mme()
    phenotype_first = gene_found = 0
    for raw in peers.demo:
        features = [{"id": f["id"], "observed": f.get("observed", "yes")} for f in raw["features"]]
        query = {"patient": {"id": "q", "contact": contact, "features": features}}
        answer = federated_match(None, query, limit=5, outside=[peer])
        assert answer.asked["patientMatcher"].startswith("ok: "), answer.asked
        assert " dropped: " not in answer.asked["patientMatcher"], answer.asked
        assert all(r["source"] == "outside" for r in answer.results)
        ids = [r["patient"]["id"] for r in answer.results]
        phenotype_first += bool(ids) and ids[0] == raw["id"]
        genes = sorted({g["gene"]["id"] for g in raw["genomicFeatures"]})
        query = {
            "patient": {
                "id": "q",
                "contact": contact,
                "genomicFeatures": [{"gene": {"id": g}} for g in genes],
            }
        }
        answer = federated_match(None, query, limit=20, outside=[peer])
        assert answer.asked["patientMatcher"].startswith("ok: "), answer.asked
        for result in answer.results:  # every answer carries a gene asked for
            carried = {g["gene"]["id"] for g in result["patient"]["genomicFeatures"]}
            assert carried & set(genes), (raw["id"], result["patient"]["id"])
        gene_found += raw["id"] in [r["patient"]["id"] for r in answer.results]
    print(
        f"\nailedger -> patientMatcher: phenotype-only {phenotype_first}/50 first, "
        f"gene-only {gene_found}/50 found"
    )
    # patientMatcher answers at most 5 results: a gene that 6 or more demo patients carry
    # cannot return them all, so gene-only finds fewer than phenotype-only.
    assert phenotype_first >= 45 and gene_found >= 35


def test_a_v1_1_only_request_is_what_patientmatcher_refuses(peers: Peers) -> None:
    """Per-peer versions matter: patientMatcher takes v1.0 only, and says so per peer."""
    peer = OutsidePeer("patientMatcher", peers.pm_url, PEER_TOKEN, version=(1, 1))
    query = {"patient": {"id": "q", "contact": DESK.as_mme(), "features": [{"id": "HP:0001250"}]}}
    answer = federated_match(None, query, limit=5, outside=[peer])
    assert answer.results == [] and answer.asked == {"patientMatcher": "refused: HTTP 415"}
    wrong = OutsidePeer("patientMatcher", peers.pm_url, "not-its-token")
    answer = federated_match(None, query, limit=5, outside=[wrong])
    assert answer.asked == {"patientMatcher": "refused: HTTP 401"}


def test_health_match_asks_patientmatcher_from_the_cli(
    peers: Peers,
    home_env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """(b) through the command a clinician runs: `ailedger health peer add` with the
    defaults (MME v1.0, /match), then `ailedger health match --peer`."""
    for command in (
        ["init"],
        ["health", "contact", DESK.name, DESK.href],
        ["health", "peer", "add", "patientMatcher", peers.pm_url, "--token", PEER_TOKEN],
    ):
        code, _, err = run(command, capsys, monkeypatch)
        assert code == 0, err
    raw = peers.demo[7]
    observed = [f["id"] for f in raw["features"] if f.get("observed", "yes") == "yes"]
    ask = ["health", "match", "--peer", "patientMatcher", "--json"]
    code, out, err = run([*ask, *(a for t in observed for a in ("--hpo", t))], capsys, monkeypatch)
    assert code == 0, err
    answer = json.loads(out)
    assert answer["asked"]["patientMatcher"].startswith("ok: "), answer["asked"]
    # First, or tied with the first: demo patients of one paper can share every feature.
    scores = {r["patient"]["id"]: r["score"]["patient"] for r in answer["results"]}
    assert scores.get(raw["id"]) == answer["results"][0]["score"]["patient"], scores
    assert answer["results"][0]["source"] == "outside"
    results = [{"score": r["score"], "patient": r["patient"]} for r in answer["results"]]
    assert response_errors({"results": results}) == []
    assert PEER_TOKEN not in out + err
