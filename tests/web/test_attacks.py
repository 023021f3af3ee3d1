"""Attacks on the web app, each performed for real against a node as ``node start`` serves
it: a hostile peer's answers shown on the clinician's page, a read-only auditor looking
for the operator's secrets, and the like. Each test failed before its fix."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import Body, FastAPI
from fastapi.responses import JSONResponse

from ailedger.demo.records import RARE_CASE
from ailedger.health.mme import NodeContact
from ailedger.health.node import HealthNode
from ailedger.peer import wire
from ailedger.session import Session
from tests.web.homes import PASSPHRASE, Chain, WebNode, client, link_client, web_node

# A JSON-RPC provider's URL carries its API key (and sometimes a password): the node
# uses it, nobody who merely signs in to look should read it.
RPC_SECRET = "k3y0f7h3rpcpr0v1d3r"
RPC_URL = f"https://user:pa55w0rd@rpc.example.org/v2/{RPC_SECRET}?token={RPC_SECRET}"

# What a hostile node registered on chain answers to every MME query: results valid by the
# official MME schema that carry markup and fields of their own that the clinician's page
# and API would read, and results the schema refuses (a javascript: href, no href at all).
_FEATURES = [{"id": "HP:0001250", "label": "<script>alert(2)</script>"}]
HOSTILE_RESULTS: list[dict[str, Any]] = [
    {
        "score": {"patient": 0.99},
        "patient": {
            "id": "p1",
            "contact": {"name": "<b>x</b>", "href": "https://evil.example.org/"},
            "features": _FEATURES,
        },
        "explanation": "not an explanation",
    },
    {
        "score": {"patient": 0.98},
        "patient": {
            "id": "p2",
            "contact": {"name": "y", "href": "mailto:y@evil.example.org"},
            "features": _FEATURES,
        },
        "explanation": {"matched_terms": [["HP:0000001"]], "shared_genes": 7, "conflicts": []},
    },
    {
        "score": {"patient": 0.97, "detail": "a string where a number goes"},
        "patient": {
            "id": "p3",
            "contact": {"name": "z", "href": "https://evil.example.org/z"},
            "genomicFeatures": [{"gene": {"id": "FBN1"}}],
        },
    },
    {
        "score": {"patient": 0.96},
        "patient": {
            "id": "p4",
            "contact": {"name": "w", "href": "javascript:alert(1)"},
            "features": _FEATURES,
        },
    },
    {"score": {"patient": 0.95}, "patient": {"id": "p5", "contact": {"name": "v"}}},
]


def _hostile_peer() -> FastAPI:
    app = FastAPI()

    @app.post(wire.MME_MATCH)
    def match() -> dict[str, Any]:
        return {"results": HOSTILE_RESULTS}

    return app


@dataclass
class Homes:
    node: WebNode
    rpc_node: WebNode  # a home whose chain is reached through RPC_URL


def _rpc_party(chain: Chain, name: str) -> Session:
    """A home like ``chain.party(name)``, whose chain connection says it is RPC_URL."""
    import dataclasses

    from ailedger.keys.home import NodeHome
    from ailedger.settings import load_settings

    home = NodeHome.init(chain.root / name, PASSPHRASE, scrypt_n=2**12)
    settings = load_settings(home=home.path, cache_dir=chain.cache)
    connection = dataclasses.replace(chain.connection, description=f"JSON-RPC node at {RPC_URL}")
    return Session(settings, home, connection, home.unlock_account(PASSPHRASE), PASSPHRASE)


@pytest.fixture(scope="module")
def homes(web_chain: Chain) -> Iterator[Homes]:
    from ailedger.node.service import BackgroundServer

    evil = web_chain.party("evil")
    with BackgroundServer(_hostile_peer()) as url:
        evil.node_registry.register(url)
        clinic = web_chain.party("clinic")
        with HealthNode(clinic.home.path) as health:  # whom the clinic's queries name
            health.set_contact(NodeContact("Clinic desk", "https://clinic.example.org/mme"))
        with (
            web_node(clinic) as node,
            web_node(_rpc_party(web_chain, "rpc-home")) as rpc_node,
        ):
            yield Homes(node, rpc_node)


# A hostile peer's MME answer


def test_a_hostile_peers_results_do_not_break_the_federated_search_api(homes: Homes) -> None:
    http = link_client(homes.node)
    answer = http.post("/api/v1/health/matches/federated", json={"hpo": RARE_CASE[:3], "limit": 10})
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["patient"]["id"] for r in results] == ["p1", "p2", "p3"]
    assert all(r["explanation"] is None for r in results)  # a peer's own says nothing here
    [status] = answer.json()["asked"].values()  # the two results the schema refuses
    assert status.startswith("ok: 3 results (2 not valid by the MME schema: results/3 dropped")


def test_a_hostile_peers_results_do_not_break_the_clinicians_page(homes: Homes) -> None:
    http = link_client(homes.node)
    form = {"hpo": " ".join(RARE_CASE[:3]), "limit": "10"}
    answer = http.post("/clinic/matches/federated", data=form, headers={"HX-Request": "true"})
    assert answer.status_code == 200, answer.text
    assert "p1" in answer.text and "p3" in answer.text
    assert "<b>x</b>" not in answer.text and "&lt;b&gt;x&lt;/b&gt;" in answer.text
    assert 'href="javascript:' not in answer.text and "p4" not in answer.text
    assert "<script>alert(2)" not in answer.text


# Secrets in what a signed-in reader sees


@pytest.mark.parametrize("path", ["/", "/account", "/api/v1/account"])
def test_an_auditor_does_not_read_the_chains_rpc_key(homes: Homes, path: str) -> None:
    http = link_client(homes.rpc_node, read_only=True)
    answer = http.get(path)
    assert answer.status_code == 200, answer.text
    assert "rpc.example.org" in answer.text  # where the chain is: shown
    assert RPC_SECRET not in answer.text and "pa55w0rd" not in answer.text


# A program signing in (web.client) to a node that is not the one it signs for


def _relaying_node(victim: WebNode, replies: list[int]) -> FastAPI:
    """A server that hands a program the victim node's nonce and what the victim's
    messages must say, and replays the signed message it gets back to the victim."""
    app = FastAPI()
    victim_http = client(victim)

    @app.get("/api/v1/auth/nonce")
    def nonce(address: str) -> Any:
        return victim_http.get("/api/v1/auth/nonce", params={"address": address}).json()

    @app.post("/api/v1/auth/siwe")
    def siwe(body: dict[str, Any] = Body(...)) -> JSONResponse:  # noqa: B008
        replayed = victim_http.post("/api/v1/auth/siwe", json=body)
        replies.append(replayed.status_code)
        return JSONResponse(replayed.json(), status_code=replayed.status_code)

    return app


def test_a_program_does_not_sign_a_message_for_another_node(homes: Homes) -> None:
    from ailedger.errors import UnauthenticatedError
    from ailedger.node.service import BackgroundServer
    from ailedger.web.client import sign_in

    replies: list[int] = []
    account = homes.node.session.account
    assert account is not None
    with (
        BackgroundServer(_relaying_node(homes.node, replies)) as url,
        pytest.raises(UnauthenticatedError, match="another"),
        sign_in(url, account),
    ):
        pass
    assert 200 not in replies  # nothing signed that the victim node would take
