"""Sign-in: the EIP-4361 message read and written exactly, every refusal of a message or
a one-time link, the roles they give, and signing out."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from eth_account import Account

from ailedger.web import login_links
from ailedger.web.siwe import SiweFormatError, SiweMessage, parse, recover_signer, timestamp
from tests.web.homes import (
    Chain,
    WebNode,
    client,
    link_client,
    sign,
    signed_in_client,
    siwe_text,
    web_node,
)

AUDITOR = Account.create()
STRANGER = Account.create()
ADDRESS = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"


@pytest.fixture(scope="module")
def node(web_chain: Chain) -> Iterator[WebNode]:
    with web_node(web_chain.party("home"), auditors=(AUDITOR.address,)) as served:
        yield served


def _post(node: WebNode, text: str, signature: str | None = None) -> tuple[int, str]:
    account = node.session.account
    assert account is not None
    http = client(node)
    answer = http.post(
        "/api/v1/auth/siwe", json={"message": text, "signature": signature or sign(account, text)}
    )
    return answer.status_code, answer.json().get("error", "")


# The message format.

FULL = SiweMessage(
    domain="127.0.0.1:8700",
    address=ADDRESS,
    statement="Sign in to this ailedger home.",
    uri="http://127.0.0.1:8700",
    chain_id=1337,
    nonce="abcdef0123456789",
    issued_at="2026-12-02T11:00:00Z",
    expiration_time="2026-12-02T11:05:00Z",
    not_before="2026-12-02T10:59:00Z",
    request_id="req-1",
    resources=("https://example.org/a", "ipfs://b"),
)


@pytest.mark.parametrize(
    "message",
    [
        FULL,
        SiweMessage("localhost:1", ADDRESS, "http://localhost:1", 1, "12345678", FULL.issued_at),
        SiweMessage(
            "example.org",
            ADDRESS,
            "https://example.org/x",
            5,
            "noncenonce",
            FULL.issued_at,
            scheme="https",
        ),
    ],
)
def test_a_message_reads_back_as_it_was_written(message: SiweMessage) -> None:
    assert parse(message.text()) == message
    assert parse(message.text()).text() == message.text()


def test_the_text_is_exactly_eip4361() -> None:
    assert FULL.text() == (
        "127.0.0.1:8700 wants you to sign in with your Ethereum account:\n"
        f"{ADDRESS}\n\nSign in to this ailedger home.\n\n"
        "URI: http://127.0.0.1:8700\nVersion: 1\nChain ID: 1337\nNonce: abcdef0123456789\n"
        "Issued At: 2026-12-02T11:00:00Z\nExpiration Time: 2026-12-02T11:05:00Z\n"
        "Not Before: 2026-12-02T10:59:00Z\nRequest ID: req-1\n"
        "Resources:\n- https://example.org/a\n- ipfs://b"
    )
    bare = SiweMessage("h:1", ADDRESS, "http://h:1", 1, "12345678", FULL.issued_at).text()
    assert f"{ADDRESS}\n\n\nURI: " in bare  # no statement: address LF LF LF URI


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        FULL.text().replace("wants you to sign in", "wants you to log in"),
        FULL.text().replace(ADDRESS, ADDRESS.lower()),  # no EIP-55 checksum
        FULL.text().replace("Version: 1", "Version: 2"),
        FULL.text().replace("Chain ID: 1337", "Chain ID: one"),
        FULL.text().replace("Nonce: abcdef0123456789", "Nonce: short"),
        FULL.text().replace("Issued At: 2026-12-02T11:00:00Z", "Issued At: yesterday"),
        FULL.text().replace("Issued At: 2026-12-02T11:00:00Z", "Issued At: 2026-12-02T11:00:00"),
        FULL.text().replace("URI: ", "Uri: "),
        FULL.text() + "\nextra line",
        FULL.text().replace("Nonce:", "Chain ID: 1\nNonce:"),
        "x" * 5000,
    ],
)
def test_a_text_that_is_not_a_message_is_refused(text: str) -> None:
    with pytest.raises(SiweFormatError):
        parse(text)


def test_a_signature_is_recovered_or_refused() -> None:
    text = FULL.text()
    assert recover_signer(text, sign(STRANGER, text)) == STRANGER.address
    for bad in ("0x", "0x" + "00" * 65, "zz" * 66, sign(STRANGER, text)[:-2]):
        with pytest.raises(SiweFormatError):
            recover_signer(text, bad)


# Signing in with a message.


def test_the_homes_account_signs_in_as_operator(node: WebNode) -> None:
    http = signed_in_client(node)
    assert http.get("/api/v1/auth/me").json() == {
        "address": node.session.address,
        "role": "operator",
    }


def test_a_named_auditor_signs_in_read_only(node: WebNode) -> None:
    http = signed_in_client(node, AUDITOR)
    assert http.get("/api/v1/auth/me").json()["role"] == "auditor"


def test_a_stranger_is_refused(node: WebNode) -> None:
    http = client(node)
    text = siwe_text(http, STRANGER)
    answer = http.post(
        "/api/v1/auth/siwe", json={"message": text, "signature": sign(STRANGER, text)}
    )
    assert answer.status_code == 403
    assert "may not sign in" in answer.json()["error"]
    assert "set-cookie" not in answer.headers


def _refused(node: WebNode, **changes: object) -> str:
    account = node.session.account
    assert account is not None
    status, error = _post(node, siwe_text(client(node), account, **changes))
    assert status == 401, error
    return error


def test_a_message_for_another_site_is_refused(node: WebNode) -> None:
    assert "is for 'evil.example'" in _refused(node, domain="evil.example")
    assert "URI" in _refused(node, uri="http://evil.example/")


def test_a_message_for_another_chain_is_refused(node: WebNode) -> None:
    assert "chain 1" in _refused(node, chain_id=1)


def test_an_unknown_nonce_is_refused(node: WebNode) -> None:
    assert "nonce" in _refused(node, nonce="0123456789abcdef0123456789abcdef")


def test_a_replayed_message_is_refused(node: WebNode) -> None:
    account = node.session.account
    assert account is not None
    text = siwe_text(client(node), account)
    assert _post(node, text)[0] == 200
    status, error = _post(node, text)
    assert status == 401
    assert "nonce" in error


def test_messages_outside_their_time_are_refused(node: WebNode) -> None:
    now = datetime.now(UTC)
    assert "expired" in _refused(node, expiration_time=timestamp(now - timedelta(seconds=5)))
    assert "not valid yet" in _refused(node, not_before=timestamp(now + timedelta(minutes=5)))
    assert "future" in _refused(node, issued_at=timestamp(now + timedelta(minutes=10)))


def test_a_signature_by_someone_else_than_the_message_says_is_refused(node: WebNode) -> None:
    account = node.session.account
    assert account is not None
    text = siwe_text(client(node), account)
    status, error = _post(node, text, sign(STRANGER, text))
    assert status == 401
    assert "not by the message's address" in error


@pytest.mark.parametrize(
    "body",
    [
        {"message": "not a message", "signature": "0x" + "00" * 65},
        {"message": FULL.text(), "signature": "nope"},
        {"message": 5, "signature": []},
        {"signature": "0x"},
    ],
)
def test_a_malformed_sign_in_is_a_client_error(node: WebNode, body: dict[str, object]) -> None:
    answer = client(node).post("/api/v1/auth/siwe", json=body)
    assert 400 <= answer.status_code < 500
    assert "set-cookie" not in answer.headers


def test_a_sign_in_that_is_not_json_is_refused(node: WebNode) -> None:
    # A cross-site form can post text/plain without a preflight; the server wants JSON.
    answer = client(node).post(
        "/api/v1/auth/link", content=b'{"code": "x"}', headers={"content-type": "text/plain"}
    )
    assert answer.status_code == 415


# One-time links.


def test_a_link_signs_in_once(node: WebNode) -> None:
    code = login_links.create_link(node.session.home.path, read_only=False)
    first = client(node).post("/api/v1/auth/link", json={"code": code})
    assert first.status_code == 200
    assert first.json()["role"] == "operator"
    assert first.json()["address"] == node.session.address
    again = client(node).post("/api/v1/auth/link", json={"code": code})
    assert again.status_code == 401
    assert "already used" in again.json()["error"]


def test_a_link_file_is_private_and_holds_no_code(node: WebNode) -> None:
    code = login_links.create_link(node.session.home.path, read_only=False)
    files = list(login_links.links_dir(node.session.home.path).glob("*.json"))
    assert files and all(f.stat().st_mode & 0o077 == 0 for f in files)
    assert all(code not in f.read_text() and code not in f.name for f in files)


def test_an_expired_link_is_refused(node: WebNode) -> None:
    long_ago = time.time() - login_links.LINK_LIFETIME_S - 1
    code = login_links.create_link(node.session.home.path, read_only=False, now=long_ago)
    answer = client(node).post("/api/v1/auth/link", json={"code": code})
    assert answer.status_code == 401


@pytest.mark.parametrize("code", ["", "../../config.toml", "A" * 43, "A" * 64])
def test_a_made_up_code_is_refused(node: WebNode, code: str) -> None:
    assert client(node).post("/api/v1/auth/link", json={"code": code}).status_code in (401, 422)


def test_a_read_only_link_gives_an_auditor(node: WebNode) -> None:
    http = link_client(node, read_only=True)
    assert http.get("/api/v1/auth/me").json() == {
        "address": node.session.address,
        "role": "auditor",
    }


def test_signing_out_ends_the_session(node: WebNode) -> None:
    http = link_client(node)
    cookie = http.cookies.get("ailedger_session_8700")
    answer = http.post("/api/v1/auth/logout")
    assert answer.status_code == 204
    assert http.get("/api/v1/auth/me").status_code == 401
    # the old cookie, replayed, opens nothing
    stale = client(node)
    stale.cookies.set("ailedger_session_8700", cookie or "")
    assert stale.get("/api/v1/auth/me").status_code == 401


def test_the_sign_out_form_ends_the_session(node: WebNode) -> None:
    http = link_client(node)
    token = http.headers.pop("X-CSRF-Token")
    answer = http.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"
    assert http.get("/api/v1/auth/me").status_code == 401


def test_the_cli_prints_a_link_that_signs_in(
    node: WebNode, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ailedger.cli.app import main

    monkeypatch.setattr(
        sys,
        "argv",
        [
            "ailedger",
            "--home",
            str(node.session.home.path),
            "node",
            "login-link",
            "--read-only",
            "--port",
            "8700",
        ],
    )
    monkeypatch.setenv("COLUMNS", "200")
    try:
        main()
    except SystemExit as exited:
        assert exited.code in (0, None)
    out = capsys.readouterr().out
    match = re.search(r"http://127\.0\.0\.1:8700/login#code=([A-Za-z0-9_-]+)", out)
    assert match, out
    assert "auditor" in out
    answer = client(node).post("/api/v1/auth/link", json={"code": match[1]})
    assert answer.status_code == 200
    assert answer.json()["role"] == "auditor"


# Lifetimes, on a clock the test turns.


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_ends_after_twelve_hours() -> None:
    from ailedger.web.deps import User
    from ailedger.web.sessions import SESSION_LIFETIME_S, SessionStore

    clock = Clock()
    store = SessionStore(clock=clock)
    session = store.start(User(ADDRESS, "operator"))
    assert SESSION_LIFETIME_S == 12 * 3600
    clock.now += SESSION_LIFETIME_S - 1
    assert store.get(session.id) == session
    clock.now += 1
    assert store.get(session.id) is None
    assert store.get("") is None and store.get(None) is None


def test_a_nonce_is_good_once_for_five_minutes() -> None:
    from ailedger.web.sessions import NONCE_LIFETIME_S, NonceStore

    clock = Clock()
    store = NonceStore(clock=clock)
    late, used = store.issue(), store.issue()
    assert NONCE_LIFETIME_S == 300
    assert store.consume(used)
    assert not store.consume(used)
    clock.now += NONCE_LIFETIME_S
    assert not store.consume(late)
    assert not store.consume("never-issued")
