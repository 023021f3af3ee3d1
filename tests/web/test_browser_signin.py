"""Signing in in a real browser (Debian's Chromium, driven by Playwright): the printed
link signs in and lands on the home page, under the strict CSP with no console error,
and signing out ends it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.web.conftest import screenshot, sign_in
from tests.web.homes import WebNode


def _console(page: Any) -> list[str]:
    messages: list[str] = []
    page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: messages.append(f"pageerror: {e}"))
    return messages


def test_the_printed_link_signs_in_and_sign_out_ends_it(
    browser: Any, served_node: WebNode, tmp_path: Path
) -> None:
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    console = _console(page)
    sign_in(page, served_node)
    # the code is gone from the address bar and from history
    assert "code=" not in page.url
    assert page.text_content("#home-address") == served_node.session.address
    assert page.text_content("#home-role").strip().startswith("operator")
    cookies = {c["name"]: c for c in context.cookies()}
    name = "ailedger_session_" + served_node.url.rsplit(":", 1)[1]
    assert cookies[name]["httpOnly"] is True
    assert cookies[name]["sameSite"] == "Strict"
    # htmx loaded under the CSP, configured by its meta tag
    assert page.evaluate("window.htmx.config.allowEval") is False
    assert page.evaluate("window.htmx.config.includeIndicatorStyles") is False
    screenshot(page, "home", tmp_path)
    problems = [m for m in console if "error" in m.split(":")[0] or "Content Security" in m]
    assert problems == []
    page.click("#sign-out")
    page.wait_for_url(f"{served_node.url}/login")
    page.goto(f"{served_node.url}/")
    assert page.url == f"{served_node.url}/login"
    context.close()


def test_a_used_link_shows_why_it_fails(browser: Any, served_node: WebNode) -> None:
    link = served_node.login_link()
    first = browser.new_context()
    sign_in_page = first.new_page()
    sign_in_page.goto(link)
    sign_in_page.wait_for_url(f"{served_node.url}/")
    first.close()
    second = browser.new_context()
    page = second.new_page()
    page.goto(link)
    page.wait_for_selector("#login-error:not([hidden])")
    assert "already used" in (page.text_content("#login-error") or "")
    assert "code=" not in page.url
    second.close()


def test_a_read_only_link_signs_in_an_auditor(browser: Any, served_node: WebNode) -> None:
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, served_node, read_only=True)
    assert "auditor" in (page.text_content("#home-role") or "")
    # an operator's link opened while signed in replaces the session
    page.goto(served_node.login_link())
    page.wait_for_function("() => !location.hash")
    page.wait_for_selector("#home-role >> text=operator")
    assert "code=" not in page.url
    context.close()


# A browser wallet (EIP-1193 provider) stood in for by the test: it holds the home's key
# and signs what app.js asks it to, as a wallet's personal_sign does.
WALLET = """
window.ethereum = {
  request: async ({method, params}) => {
    if (method === "eth_requestAccounts") { return [await window.walletAddress()]; }
    if (method === "personal_sign") { return await window.walletSign(params[0], params[1]); }
    throw new Error("unsupported " + method);
  },
};
"""


def test_a_browser_wallet_signs_in(browser: Any, served_node: WebNode) -> None:
    from eth_account.messages import encode_defunct

    account = served_node.session.account
    assert account is not None
    signed: list[str] = []

    def wallet_sign(message_hex: str, address: str) -> str:
        assert address.lower() == account.address.lower()
        text = bytes.fromhex(message_hex.removeprefix("0x")).decode()
        signed.append(text)
        signature = account.sign_message(encode_defunct(text=text)).signature
        return "0x" + bytes(signature).hex()

    context = browser.new_context()
    context.expose_function("walletAddress", lambda: account.address.lower())
    context.expose_function("walletSign", wallet_sign)
    context.add_init_script(WALLET)
    page = context.new_page()
    console = _console(page)
    page.goto(f"{served_node.url}/login")
    page.click("#wallet-sign-in")
    page.wait_for_function(
        "() => location.pathname === '/' || !document.querySelector('#login-error').hidden",
        timeout=10000,
    )
    assert page.url == f"{served_node.url}/", (page.text_content("#login-error"), console)
    assert page.text_content("#home-address") == served_node.session.address
    host = served_node.url.removeprefix("http://")
    assert signed[0].startswith(f"{host} wants you to sign in with your Ethereum account:\n")
    assert f"\n{account.address}\n" in signed[0]  # EIP-55, as the server returned it
    assert [m for m in console if m.startswith("error")] == []
    context.close()


def test_the_api_docs_run_from_the_package_under_the_strict_policy(
    browser: Any, served_node: WebNode
) -> None:
    context = browser.new_context()
    page = context.new_page()
    console = _console(page)
    outside: list[str] = []
    page.on(
        "request",
        lambda r: None if r.url.startswith(served_node.url) else outside.append(r.url),
    )
    sign_in(page, served_node)
    page.goto(f"{served_node.url}/api/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    paths = page.eval_on_selector_all(".opblock-summary-path", "els => els.map(e => e.textContent)")
    assert any("/api/v1/auth/siwe" in p for p in paths)
    assert outside == []  # nothing fetched from another origin
    problems = [m for m in console if "error" in m.split(":")[0] or "Content Security" in m]
    assert problems == []
    context.close()
