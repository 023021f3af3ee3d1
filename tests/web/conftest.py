"""Fixtures of the web app's tests: a real node served over HTTP on an embedded chain,
and Debian's Chromium driven by Playwright (``scripts/install_browser.sh``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web.homes import Chain, WebNode, embedded_chain, served, web_node

CHROMIUM = Path("/usr/lib/chromium/chromium")


@pytest.fixture(scope="module")
def web_chain(tmp_path_factory: pytest.TempPathFactory, contract_cache: Path) -> Iterator[Chain]:
    """One embedded chain per test module."""
    with embedded_chain(tmp_path_factory.mktemp("web"), contract_cache) as chain:
        yield chain


@pytest.fixture(scope="module")
def served_node(web_chain: Chain) -> Iterator[WebNode]:
    """A home's node, with its web app, served on a free loopback port as ``node start``
    serves it."""
    with web_node(web_chain.party("operator")) as node, served(node):
        yield node


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's), or a skip that says how to get it; with
    AILEDGER_REQUIRE_BROWSER=1 (scripts/test.sh) a missing browser fails instead."""
    required = os.environ.get("AILEDGER_REQUIRE_BROWSER") == "1"
    if not CHROMIUM.exists():
        message = f"no Chromium at {CHROMIUM}: run scripts/install_browser.sh"
        if required:
            pytest.fail(message + " (AILEDGER_REQUIRE_BROWSER=1)")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def screenshot(page: Any, name: str, tmp_path: Path) -> Path:
    """A full-page screenshot of ``page`` as ``name``.png: into ``$AILEDGER_SCREENSHOTS``
    when set (``scripts/screenshots.sh`` refreshes docs/screenshots so), else beside the
    test, so a test run never changes the checkout."""
    folder = Path(os.environ.get("AILEDGER_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0
    return path


def sign_in(page: Any, node: WebNode, *, read_only: bool = False) -> None:
    """Sign ``page`` in to ``node`` through a real one-time link, and wait for the home."""
    page.goto(node.login_link(read_only=read_only))
    page.wait_for_url(f"{node.url}/")
    page.wait_for_selector("#home-role")
