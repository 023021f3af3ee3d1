"""The private-analytics page and API: an owner's budgets and cap, a researcher asking a
DP question of another node's private dataset, refusals shown in the page, and who may
do what."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ailedger.chain.contracts.data_market import PURPOSES, Policy
from ailedger.session import Session
from ailedger.web.api import privacy as privacy_api
from ailedger.web.deps import WebContext
from ailedger.web.pages import privacy as privacy_pages
from tests.web.homes import auditor, embedded_chain, operator_of, router_client

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

AIL = 10**18
QUERY: dict[str, Any] = {
    "columns": {"age": {"type": "int", "lower": 0, "upper": 120}},
    "statistics": [{"kind": "count"}, {"kind": "mean", "column": "age"}],
    "epsilon": 0.25,
}


@dataclass
class Site:
    owner: Session
    researcher: Session
    private: str
    open: str
    owner_page: TestClient
    researcher_page: TestClient
    read_only: TestClient


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, contract_cache: Path) -> Iterator[Site]:
    from ailedger.node.app import create_app
    from ailedger.node.service import BackgroundServer, announce, privacy_desk
    from ailedger.privacy.owner import set_privacy_cap
    from ailedger.sharing.owner import OwnerNode

    root = tmp_path_factory.mktemp("privacy-pages")
    source = root / "ages.csv"
    source.write_text("age\n" + "".join(f"{20 + i % 50}\n" for i in range(200)))
    with embedded_chain(root, contract_cache) as chain:
        owner, researcher = chain.party("owner"), chain.party("researcher")
        researcher.token.faucet(50 * AIL)
        policy = Policy(PURPOSES["public-health"], False, AIL, 86400, 0)
        with OwnerNode(owner) as node:
            private = node.publish(source, policy, {"title": "Ages"}, None).dataset_id
            opened = node.publish(source, policy, {"title": "Open ages"}, None).dataset_id
            set_privacy_cap(owner, private, 1.0, 1e-6)
            with BackgroundServer(create_app(node.gateway(), privacy=privacy_desk(node))) as url:
                announce(owner, url)
                routers = [privacy_api.router(), privacy_pages.pages()]
                owner_context = WebContext(owner, node=node)
                yield Site(
                    owner,
                    researcher,
                    "0x" + private.hex(),
                    "0x" + opened.hex(),
                    router_client(owner_context, routers, operator_of(owner)),
                    router_client(WebContext(researcher), routers, operator_of(researcher)),
                    router_client(owner_context, routers, auditor("0x" + "ef" * 20)),
                )


def test_a_researcher_buys_and_asks_and_the_owner_sees_the_charge(site: Site) -> None:
    answer = site.researcher_page.post(
        "/api/v1/privacy/release",
        json={"dataset": site.private, "kind": "query", "spec": QUERY, "buy_for": "public-health"},
    )
    assert answer.status_code == 200, answer.text
    assert set(answer.json()["values"]) == {"count", "mean_age"}

    budget = site.owner_page.get(f"/api/v1/privacy/budget/{site.private}").json()
    assert budget["private"] and len(budget["releases"]) >= 1
    assert site.researcher.address in budget["by_buyer"]
    assert budget["consistent"] and budget["remaining"] < 1.0

    html = site.owner_page.get("/privacy").text
    assert site.private in html and "recomputed from" in html
    assert site.researcher.address in html  # the release's buyer, in the table
    assert "Make a dataset private" in html and "Open ages" in html


def test_a_question_over_the_cap_is_refused_in_the_page_before_paying(site: Site) -> None:
    balance = site.researcher.token.balance_of(site.researcher.address)
    greedy = json.dumps({**QUERY, "epsilon": 5})
    answer = site.researcher_page.post(
        "/privacy/ask",
        data={"dataset": site.private, "kind": "query", "spec": greedy, "buy_for": "public-health"},
    )
    assert answer.status_code == 200 and 'class="error"' in answer.text
    assert "over its cap of 1" in answer.text
    assert site.researcher.token.balance_of(site.researcher.address) == balance


@pytest.mark.parametrize(
    ("form", "says"),
    [
        ({"spec": "{not json"}, "spec or grant"),
        ({"spec": json.dumps(QUERY), "grant": "seven"}, "spec or grant"),
        ({"spec": json.dumps(QUERY), "kind": "dump"}, "kind"),
        ({"spec": json.dumps({**QUERY, "epsilon": -1})}, "epsilon"),
    ],
)
def test_a_bad_form_is_explained_not_a_500(site: Site, form: dict[str, str], says: str) -> None:
    data = {"dataset": site.private, "kind": "query", "grant": "1", **form}
    answer = site.researcher_page.post("/privacy/ask", data=data)
    assert answer.status_code == 200 and 'class="error"' in answer.text
    assert says in answer.text


def test_only_the_operator_sets_a_cap_and_the_first_makes_a_dataset_private(site: Site) -> None:
    body = {"dataset": site.open, "epsilon": 2, "delta": 1e-6}
    assert site.read_only.post("/api/v1/privacy/cap", json=body).status_code == 403
    assert site.researcher_page.post("/api/v1/privacy/cap", json=body).status_code == 422
    done = site.owner_page.post("/api/v1/privacy/cap", json=body)
    assert done.status_code == 200 and done.json()["previous_cap"] is None
    assert site.owner.privacy_ledger.budget(bytes.fromhex(site.open[2:])).private
    bad = site.owner_page.post("/api/v1/privacy/cap", json={**body, "epsilon": "NaN"})
    assert bad.status_code == 422


def test_anyone_signed_in_looks_up_a_budget_and_bad_ids_are_refused(site: Site) -> None:
    html = site.read_only.get("/privacy", params={"dataset": site.private}).text
    assert "epsilon 1 at delta 1e-06" in html
    assert 'id="ask-form"' not in html  # an auditor asks nothing
    assert site.read_only.get("/privacy", params={"dataset": "0x12"}).status_code == 422
    assert site.read_only.get("/api/v1/privacy/budget/0x12").status_code == 422
