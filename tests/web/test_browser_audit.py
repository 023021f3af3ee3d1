"""The audit and clinic pages in a real browser (Debian's Chromium driven by Playwright),
against a node served as ``node start`` serves it, on one embedded chain: a genuine
receipt is verified in the browser against the root anchored on chain with its Merkle
path drawn, a tampered one does not verify, an uploaded one does; verify.js passes the
RFC 6962 vectors inside Chromium too; the clinician searches, ranks and saves a query.
Screenshots: ``scripts/screenshots.sh`` puts them in docs/screenshots."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ailedger.demo.records import RARE_CASE, write_bundles
from ailedger.health.node import HealthNode
from ailedger.session import Session
from tests.web.audit_home import serve_a_researcher
from tests.web.conftest import screenshot, sign_in
from tests.web.homes import Chain, WebNode, served, web_node
from tests.web.test_verify_js import _vectors


@dataclass
class AuditedNode:
    web: WebNode
    dataset: str
    served_index: int
    researcher: Session


@pytest.fixture(scope="module")
def audited(web_chain: Chain, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuditedNode]:
    from ailedger.node.service import announce

    root = tmp_path_factory.mktemp("browser-audit")
    owner, researcher = web_chain.party("owner"), web_chain.party("researcher")
    with HealthNode(owner.home.path) as health:
        health.import_files(write_bundles(root / "fhir", 12))
    with web_node(owner) as node, served(node):
        announce(owner, node.url)
        dataset, index = serve_a_researcher(owner, researcher, node.app.state.web.node, root)
        yield AuditedNode(node, dataset, index, researcher)


def _console(page: Any) -> list[str]:
    messages: list[str] = []
    page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: messages.append(f"pageerror: {e}"))
    return messages


def _problems(console: list[str]) -> list[str]:
    return [m for m in console if m.startswith(("error", "pageerror")) or "Security" in m]


def _verify(page: Any, receipt_text: str) -> None:
    page.fill("#receipt-text", receipt_text)
    page.click("#receipt-check")
    page.wait_for_selector("#verdict.ok, #verdict.error")


@pytest.fixture
def page(browser: Any, audited: AuditedNode) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    opened = context.new_page()
    sign_in(opened, audited.web)
    yield opened
    context.close()


def test_a_genuine_receipt_verifies_in_the_browser_and_a_tampered_one_does_not(
    page: Any, audited: AuditedNode, tmp_path: Path
) -> None:
    console = _console(page)
    url = audited.web.url
    page.goto(f"{url}/audit")
    # find the served read with the entries filter (htmx), then take its receipt
    page.fill("#filter-dataset", audited.dataset)
    page.fill("#filter-kind", "read")
    page.click("#entries-filter button")
    receipt_button = f'[data-receipt-url="/api/v1/audit/entries/{audited.served_index}"]'
    page.wait_for_selector(receipt_button)
    page.click(receipt_button)
    page.wait_for_selector("#verdict.ok, #verdict.error")
    assert page.text_content("#verdict") == "verified"
    assert "root anchored on chain" in (page.text_content("#browser-check") or "")
    assert page.get_attribute("#merkle-path svg [data-verdict]", "data-verdict") == "match"
    levels = page.locator("#merkle-path svg rect").count()
    receipt = json.loads(page.input_value("#receipt-text"))
    assert levels == 1 + 2 * len(receipt["inclusion_proof"])  # leaf, then node + sibling
    assert page.locator("#server-checks li.ok").count() == 5
    screenshot(page, "audit", tmp_path)

    tampered = dict(receipt, entry=receipt["entry"].replace('"served"', '"servee"'))
    _verify(page, json.dumps(tampered))
    assert page.text_content("#verdict") == "does not verify (inclusion)"
    assert page.get_attribute("#merkle-path svg [data-verdict]", "data-verdict") == "mismatch"
    assert "does NOT lead to the anchored root" in (page.text_content("#browser-check") or "")

    _verify(page, "{not json")
    assert "not JSON" in (page.text_content("#verdict") or "")

    upload = tmp_path / "receipt.json"
    upload.write_text(json.dumps(receipt))
    page.fill("#receipt-text", "")
    page.set_input_files("#receipt-file", str(upload))
    from playwright.sync_api import expect

    expect(page.locator("#receipt-text")).to_have_value(re.compile("inclusion_proof"))
    page.click("#receipt-check")
    page.wait_for_selector("#verdict.ok")
    assert page.text_content("#verdict") == "verified"
    assert _problems(console) == []


def test_an_auditor_verifies_read_only(browser: Any, audited: AuditedNode) -> None:
    context = browser.new_context()
    page = context.new_page()
    console = _console(page)
    page.goto(audited.web.login_link(read_only=True))
    page.wait_for_url(f"{audited.web.url}/")
    page.goto(f"{audited.web.url}/audit")
    page.click("#verify-log")  # the whole log, on request: its cost grows with the log
    page.wait_for_selector("#coverage-verdict.ok")
    page.click('[data-receipt-url^="/api/v1/audit/entries/"]')  # the newest entry
    page.wait_for_selector("#verdict.ok, #verdict.error")
    assert page.text_content("#verdict") == "verified"
    assert _problems(console) == []
    context.close()


def test_a_requester_verifies_the_receipt_it_holds_against_the_owners_anchor(
    browser: Any, audited: AuditedNode
) -> None:
    """The patient's or researcher's side: the receipt its home kept when it was served,
    proved by the owner's gateway and checked against the owner's anchor on chain."""
    with web_node(audited.researcher) as node, served(node):
        context = browser.new_context()
        page = context.new_page()
        console = _console(page)
        sign_in(page, node)
        page.goto(f"{node.url}/audit")
        held = (
            f'[data-receipt-url="/api/v1/audit/receipts/{audited.dataset}/{audited.served_index}"]'
        )
        page.click(held)
        page.wait_for_selector("#verdict.ok, #verdict.error")
        assert page.text_content("#verdict") == "verified"
        assert page.input_value("#receipt-node") == audited.web.session.address
        assert "root anchored on chain" in (page.text_content("#browser-check") or "")
        assert _problems(console) == []
        context.close()


def test_verify_js_passes_the_rfc6962_vectors_in_chromium(page: Any, audited: AuditedNode) -> None:
    page.goto(f"{audited.web.url}/audit")
    cases = _vectors("inclusion")
    if not cases:
        pytest.skip("no Merkle vectors in ../shared/data")
    said = page.evaluate(
        """async (cases) => {
            const v = window.AiledgerVerify, b = v.b64decode, out = [];
            for (const c of cases) {
              let ok;
              try {
                ok = await v.verifyInclusion(b(c.leafHash), BigInt(c.leafIdx),
                  BigInt(c.treeSize), (c.proof || []).map(b), b(c.root));
              } catch (e) { ok = false; }
              out.push(ok);
            }
            return out;
        }""",
        cases,
    )
    assert [c["path"] for c, ok in zip(cases, said, strict=True) if ok is c["wantErr"]] == []


def test_the_clinician_searches_ranks_and_saves(
    page: Any, audited: AuditedNode, tmp_path: Path
) -> None:
    console = _console(page)
    page.goto(f"{audited.web.url}/clinic")
    page.fill("#hpo", " ".join(RARE_CASE[:6]))
    page.click("#search-here")
    page.wait_for_selector("#match-results")
    assert "mailto:genetics@hospital-a.example.org" in (page.text_content("#matches") or "")
    assert RARE_CASE[0] in (page.text_content("#match-results") or "")
    page.click("#rank-diagnoses")
    page.wait_for_selector("#diagnosis-results", timeout=60_000)
    page.fill("#save-name", "kabuki-like")
    page.click("#save-query")
    page.locator("#saved td", has_text="kabuki-like").wait_for()
    screenshot(page, "clinic", tmp_path)
    page.fill("#hpo", "HP:nonsense")
    page.click("#search-here")
    page.locator("#matches .error").wait_for()
    assert "is not an HPO id" in (page.text_content("#matches") or "")
    assert [m for m in _problems(console) if "422" not in m] == []
