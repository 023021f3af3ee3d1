"""The data owner's, the researcher's and the account pages, rendered on a real chain.

Each page renders for the operator (with its buttons) and for an auditor (without any);
hostile titles come out escaped; no page carries inline script, style or event
handlers; the htmx fragment routes do what the buttons say and refuse an auditor; the
audit history is paged, never rendered whole."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import Request, Response

from ailedger.node.app import create_app
from ailedger.node.service import BackgroundServer, announce
from ailedger.session import Session
from ailedger.sharing import desk
from ailedger.sharing.owner import OwnerNode
from ailedger.web.api import account
from ailedger.web.deps import User, WebContext
from ailedger.web.pages import owner, research
from tests.web.homes import TestClient, auditor, embedded_chain, operator_of, router_client

HOSTILE = "<script>alert(1)</script>"
RESEARCH = "rare-disease-research"
LIMIT = 64 * 1024


def page_client(context: WebContext, user: User) -> TestClient:
    """A client of the pages with ``user`` signed in as the web app's sign-in leaves it
    (``request.state.user``, which the pages read to draw their buttons)."""
    client = router_client(context, [owner.pages(LIMIT), research.pages(), account.pages()], user)

    async def sign_in(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Any:
        request.state.user = user
        request.state.csrf_token = "csrf-for-tests"
        return await call_next(request)

    app: Any = client.app
    app.middleware("http")(sign_in)
    return client


@dataclass
class World:
    owner: Session
    researcher: Session
    node: OwnerNode
    dataset: str
    request_id: int
    owner_page: TestClient
    owner_auditor: TestClient
    researcher_page: TestClient
    researcher_auditor: TestClient


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, contract_cache: Path) -> Iterator[World]:
    root = tmp_path_factory.mktemp("web-pages")
    with embedded_chain(root, contract_cache) as chain:
        owner_s, researcher_s = chain.party("owner"), chain.party("researcher")
        with OwnerNode(owner_s) as node, BackgroundServer(create_app(node.gateway())) as url:
            announce(owner_s, url)
            researcher_s.token.faucet(100 * 10**18)
            researcher_s.key_registry.register(researcher_s.home.encryption_public_key)
            source = root / "data.csv"
            source.write_bytes(b"cohort rows\n" * 100)
            policy = desk.offer_policy([RESEARCH], True, "2", 86400, 0)
            metadata = desk.catalog_metadata(HOSTILE, ["x<b>y"], "<img src=x onerror=alert(1)>")
            published = desk.publish_file(owner_s, source, policy, metadata)
            dataset = "0x" + published.dataset_id.hex()
            made = desk.ask_access(researcher_s, published.dataset_id, RESEARCH)
            owner_ctx, researcher_ctx = WebContext(owner_s, node=node), WebContext(researcher_s)
            yield World(
                owner_s,
                researcher_s,
                node,
                dataset,
                made.request_id,
                page_client(owner_ctx, operator_of(owner_s)),
                page_client(owner_ctx, auditor("0x" + "ab" * 20)),
                page_client(researcher_ctx, operator_of(researcher_s)),
                page_client(researcher_ctx, auditor("0x" + "cd" * 20)),
            )


def html_of(client: TestClient, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def assert_no_inline_code(html: str) -> None:
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert all(" src=" in tag for tag in scripts), scripts  # files only, nothing inline
    assert "style=" not in html and "<style" not in html
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", html)  # no onclick= and the like


def test_the_owner_page_shows_everything_with_buttons_for_the_operator(world: World) -> None:
    html = html_of(world.owner_page, "/owner")
    assert "Approve" in html and "Deny" in html and 'hx-encoding="multipart/form-data"' in html
    assert f"/owner/requests/{world.request_id}/grant" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and HOSTILE not in html
    assert "<svg" in html and "Earnings over time" in html and "Reads per dataset" in html
    assert_no_inline_code(html)


def test_an_auditor_sees_the_owner_page_without_a_button(world: World) -> None:
    html = html_of(world.owner_auditor, "/owner")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and HOSTILE not in html
    assert str(world.request_id) in html  # the pending request is shown ...
    assert "hx-post" not in html  # ... and nothing is actionable
    for button in (">Approve<", ">Deny<", ">Revoke<", ">Publish<"):
        assert button not in html
    assert "read-only" in html
    assert_no_inline_code(html)


def test_the_research_page_searches_and_escapes(world: World) -> None:
    html = html_of(world.researcher_page, "/research?text=script")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and HOSTILE not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert 'hx-post="/research/requests"' in html and world.dataset in html
    assert_no_inline_code(html)
    assert "No dataset matches" in html_of(world.researcher_page, "/research?text=nothing-here")
    bad = html_of(world.researcher_page, "/research?purpose=spying")
    assert "unknown purpose" in bad  # told on the page, not a 500
    readonly = html_of(world.researcher_auditor, "/research")
    assert "hx-post" not in readonly and "Fetch" not in readonly
    assert_no_inline_code(readonly)


def test_the_account_page(world: World) -> None:
    html = html_of(world.researcher_page, "/account")
    assert world.researcher.address in html and "registered on chain" in html
    assert_no_inline_code(html)
    minted = world.researcher_page.post("/account/faucet", data={"amount": "1"})
    assert minted.status_code == 200 and "minted 1 AIL" in minted.text
    refused = world.researcher_page.post("/account/faucet", data={"amount": "lots"})
    assert refused.status_code == 200 and "not an amount" in refused.text
    assert world.researcher_auditor.post("/account/faucet", data={"amount": "1"}).status_code == 403
    assert "Mint" not in html_of(world.researcher_auditor, "/account")


def status_of(world: World, request_id: int) -> str:
    grant = world.owner.data_market.grant_info(request_id)
    assert grant is not None
    return grant.status.name.lower()


def test_buttons_request_approve_fetch_revoke(world: World) -> None:
    asked = world.researcher_page.post(
        "/research/requests", data={"dataset": world.dataset, "purpose": RESEARCH}
    )
    assert asked.status_code == 200 and "is pending" in asked.text
    request_id = int(re.findall(r"request (\d+) is pending", asked.text)[0])

    assert world.owner_auditor.post(f"/owner/requests/{request_id}/grant").status_code == 403
    assert status_of(world, request_id) == "pending"
    granted = world.owner_page.post(f"/owner/requests/{request_id}/grant")
    assert granted.status_code == 200 and f"request {request_id} granted" in granted.text
    assert f"/owner/requests/{request_id}/revoke" in granted.text  # now a grant to revoke

    assert world.researcher_auditor.post(f"/research/grants/{request_id}/fetch").status_code == 403
    fetched = world.researcher_page.post(f"/research/grants/{request_id}/fetch")
    assert fetched.status_code == 200 and fetched.content == b"cohort rows\n" * 100

    revoked = world.owner_page.post(f"/owner/requests/{request_id}/revoke")
    assert f"request {request_id} revoked" in revoked.text
    refused = world.researcher_page.post(f"/research/grants/{request_id}/fetch")
    assert (
        refused.status_code == 403 and "revoked" in refused.text and "Fetch refused" in refused.text
    )
    assert_no_inline_code(refused.text)

    unknown = world.owner_page.post("/owner/requests/424242/deny")
    assert unknown.status_code == 200 and "no request 424242" in unknown.text


def test_publishing_from_the_page(world: World) -> None:
    form = {"title": "From the page", "purposes": [RESEARCH], "approval": "false"}
    done = world.owner_page.post("/owner/publish", data=form, files={"file": ("a", b"abc")})
    assert done.status_code == 200 and "Published" in done.text
    bad = world.owner_page.post(
        "/owner/publish", data={**form, "duration": "soon"}, files={"file": ("a", b"abc")}
    )
    assert "not a duration" in bad.text
    big = world.owner_page.post(
        "/owner/publish", data=form, files={"file": ("a", b"z" * LIMIT * 2)}
    )
    assert big.status_code == 413
    denied = world.owner_auditor.post("/owner/publish", data=form, files={"file": ("a", b"abc")})
    assert denied.status_code == 403
    assert "From the page" in html_of(world.owner_page, "/owner")


def test_the_history_is_paged_with_proofs(world: World) -> None:
    entries = [
        {"kind": "read", "outcome": "refused", "dataset": world.dataset, "reason": f"r{i}"}
        for i in range(120)
    ]
    world.node.audit.extend(entries)
    world.node.audit.checkpoint_now()
    html = html_of(world.owner_page, "/owner")
    section = html.split('id="history"')[1]
    assert section.count("<details>") == 50 and "r119" in section and "r69" not in section
    older = re.findall(r'href="/owner\?before=(\d+)#history"', section)
    assert older
    more = html_of(world.owner_page, f"/owner?before={older[0]}").split('id="history"')[1]
    assert "r69" in more and "r119" not in more
    assert "PROOF FAILED" not in html and "proved (" in section
    filtered = html_of(world.owner_auditor, f"/owner?dataset={world.dataset}")
    assert "r119" in filtered
    assert world.owner_page.get("/owner?dataset=0x12").status_code == 422
