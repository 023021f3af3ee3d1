"""The data owner's and the researcher's main flow clicked through in a real browser
(Debian's Chromium, driven by Playwright): two homes on one chain, each serving its node
and web app; the owner publishes, the researcher requests, the owner approves, the
researcher downloads, the owner revokes and the researcher's next fetch is refused.
Screenshots of both pages: ``scripts/screenshots.sh`` puts them in docs/screenshots."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ailedger.node.service import announce
from tests.web.conftest import screenshot, sign_in
from tests.web.homes import Chain, WebNode, served, web_node

pytestmark = [pytest.mark.integration]

DATA = b"patient_id,age,hpo\n" + b"x,1,HP:0001250\n" * 500
TITLE = "Rare epilepsy cohort"


@pytest.fixture(scope="module")
def homes(web_chain: Chain) -> Iterator[tuple[WebNode, WebNode]]:
    with (
        web_node(web_chain.party("owner")) as owner,
        served(owner),
        web_node(web_chain.party("researcher")) as researcher,
        served(researcher),
    ):
        announce(owner.session, owner.url)  # the researcher finds the gateway on chain
        announce(researcher.session, researcher.url)
        researcher.session.token.faucet(50 * 10**18)
        yield owner, researcher


def _console(page: Any) -> list[str]:
    messages: list[str] = []
    page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: messages.append(f"pageerror: {e}"))
    return messages


def test_publish_request_approve_fetch_revoke_in_a_browser(
    browser: Any, homes: tuple[WebNode, WebNode], tmp_path: Path
) -> None:
    owner, researcher = homes
    source = tmp_path / "cohort.csv"
    source.write_bytes(DATA)

    owner_context = browser.new_context(viewport={"width": 1280, "height": 900})
    owner_page = owner_context.new_page()
    owner_console = _console(owner_page)
    sign_in(owner_page, owner)
    owner_page.goto(f"{owner.url}/owner")
    owner_page.set_input_files("#publish input[name=file]", str(source))
    owner_page.fill("#publish input[name=title]", TITLE)
    owner_page.fill("#publish input[name=tags]", "neurology, rare")
    owner_page.fill("#publish input[name=price]", "5")
    owner_page.click("#publish button[type=submit]")
    owner_page.wait_for_selector("#publish-result .ok")
    assert TITLE in (owner_page.text_content("#publish-result") or "")

    research_context = browser.new_context(
        viewport={"width": 1280, "height": 900}, accept_downloads=True
    )
    research_page = research_context.new_page()
    research_console = _console(research_page)
    sign_in(research_page, researcher)
    research_page.goto(f"{researcher.url}/research")
    research_page.fill("#search input[name=text]", "epilepsy")
    research_page.click("#search form button[type=submit]")
    research_page.wait_for_selector(f"#search td:has-text('{TITLE}')")
    research_page.click("#search form.inline button[type=submit]")
    research_page.wait_for_selector("#my-requests .ok")
    assert "is pending" in (research_page.text_content("#my-requests") or "")

    owner_page.goto(f"{owner.url}/owner")
    owner_page.click("#requests button:has-text('Approve')")
    owner_page.wait_for_selector("#requests .ok")
    assert "granted" in (owner_page.text_content("#requests .ok") or "")

    research_page.goto(f"{researcher.url}/research")
    with research_page.expect_download() as download:
        research_page.click("#my-requests button:has-text('Fetch')")
    fetched = tmp_path / "fetched.csv"
    download.value.save_as(str(fetched))
    assert fetched.read_bytes() == DATA
    screenshot(research_page, "research", tmp_path)

    # the owner's node logs the decision and the read, and signs a checkpoint (its chores
    # do this every few seconds when it runs as `node start`)
    owner_web = owner.app.state.web
    owner_web.node.log_chain_decisions()
    owner_web.node.audit.checkpoint_now()
    owner_page.goto(f"{owner.url}/owner")
    owner_page.click("#history details summary")
    assert owner_page.is_visible("#history details ol")
    screenshot(owner_page, "owner", tmp_path)

    owner_page.click("#requests button:has-text('Revoke')")
    owner_page.wait_for_selector("#requests .ok:has-text('revoked')")

    # the researcher's page still shows the Fetch button it drew before: the fetch is refused
    research_page.click("#my-requests button:has-text('Fetch')")
    research_page.wait_for_selector("text=Fetch refused")
    assert "revoked" in (research_page.text_content("main") or "")

    for messages in (owner_console, research_console):
        problems = [m for m in messages if m.startswith(("error", "pageerror"))]
        assert problems == [] or all("403" in m for m in problems), problems
    owner_context.close()
    research_context.close()
