"""Attacks on the web app, each performed for real against a node as ``node start`` serves
it: a hostile peer's answers shown on the clinician's page, a read-only auditor looking
for the operator's secrets, and the like. Each test failed before its fix."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI

from ailedger.demo.records import RARE_CASE
from ailedger.peer import wire
from tests.web.homes import Chain, WebNode, link_client, web_node

# What a hostile node registered on chain answers to every MME query: results that pass
# the well-formedness check (a numeric score, a patient with an id and a contact) but
# carry fields of its own that the clinician's page and API would read.
HOSTILE_RESULTS: list[dict[str, Any]] = [
    {
        "score": {"patient": 0.99},
        "patient": {"id": "p1", "contact": {"name": "<b>x</b>", "href": "javascript:alert(1)"}},
        "explanation": "not an explanation",
    },
    {
        "score": {"patient": 0.98},
        "patient": {"id": "p2", "contact": {"name": "y"}},
        "explanation": {"matched_terms": [["HP:0000001"]], "shared_genes": 7, "conflicts": []},
    },
    {
        "score": {"patient": 0.97, "detail": "a string where a number goes"},
        "patient": {"id": "p3", "contact": {"name": "z"}},
    },
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


@pytest.fixture(scope="module")
def homes(web_chain: Chain) -> Iterator[Homes]:
    from ailedger.node.service import BackgroundServer

    evil = web_chain.party("evil")
    with BackgroundServer(_hostile_peer()) as url:
        evil.node_registry.register(url)
        with web_node(web_chain.party("clinic")) as node:
            yield Homes(node)


# A hostile peer's MME answer


def test_a_hostile_peers_results_do_not_break_the_federated_search_api(homes: Homes) -> None:
    http = link_client(homes.node)
    answer = http.post("/api/v1/health/matches/federated", json={"hpo": RARE_CASE[:3], "limit": 10})
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["patient"]["id"] for r in results] == ["p1", "p2", "p3"]
    assert all(r["explanation"] is None for r in results)  # a peer's own says nothing here


def test_a_hostile_peers_results_do_not_break_the_clinicians_page(homes: Homes) -> None:
    http = link_client(homes.node)
    form = {"hpo": " ".join(RARE_CASE[:3]), "limit": "10"}
    answer = http.post("/clinic/matches/federated", data=form, headers={"HX-Request": "true"})
    assert answer.status_code == 200, answer.text
    assert "p1" in answer.text and "p3" in answer.text
    assert "<b>x</b>" not in answer.text and "&lt;b&gt;x&lt;/b&gt;" in answer.text
    assert 'href="javascript:' not in answer.text
