"""Homes for the web app's tests: parties on one embedded chain, each with an unlocked
session, and a client for routers over one of them with a chosen user signed in.

``router_client(context, routers, user)`` serves ``routers`` with sign-in replaced by
``user`` (or nobody): it tests what the routes do, not the sign-in, which the web app's
own tests cover."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from eth_account.signers.local import LocalAccount
from fastapi import APIRouter, FastAPI, Request

from ailedger.chain.connection import ChainConnection, open_embedded
from ailedger.chain.transactions import fund_from_dev_account
from ailedger.keys.home import NodeHome
from ailedger.peer.http_errors import install_error_handlers
from ailedger.session import Session
from ailedger.settings import load_settings
from ailedger.web.auth import SignIn
from ailedger.web.deps import User, WebContext, signed_in

with warnings.catch_warnings():
    # starlette deprecates httpx in favour of httpx2, which is not installed here
    warnings.filterwarnings("ignore", message=".*httpx.*deprecated")
    from fastapi.testclient import TestClient

PASSPHRASE = "web"
GAS_WEI = 10**20


@dataclass
class Chain:
    connection: ChainConnection
    root: Path
    cache: Path

    def party(self, name: str) -> Session:
        """A new home named ``name`` with an unlocked session and gas money."""
        home = NodeHome.init(self.root / name, PASSPHRASE, scrypt_n=2**12)
        settings = load_settings(home=home.path, cache_dir=self.cache)
        session = Session(
            settings, home, self.connection, home.unlock_account(PASSPHRASE), PASSPHRASE
        )
        fund_from_dev_account(self.connection.web3, session.address, GAS_WEI)
        return session


@contextmanager
def embedded_chain(root: Path, cache: Path) -> Iterator[Chain]:
    """An embedded chain under ``root`` with ailedger's contracts (deployed on first use
    by the first session that asks for them)."""
    with open_embedded(root / "chain", cache) as connection:
        yield Chain(connection, root, cache)


def operator_of(session: Session) -> User:
    return User(session.address, "operator")


def auditor(address: str) -> User:
    return User(address, "auditor")


def router_client(context: WebContext, routers: list[APIRouter], user: User | None) -> TestClient:
    """A client of ``routers`` over ``context``'s home, ``user`` signed in."""
    from ailedger.web.app import install_web_errors

    app = FastAPI()
    install_error_handlers(app)
    install_web_errors(app)  # as mount_web: a person's mistake is a 4xx, never a 500
    app.state.web = context
    for router in routers:
        app.include_router(router)

    def as_user(request: Request) -> User:
        if user is None:
            return signed_in(request)  # nobody signed in: the real refusal
        return user

    app.dependency_overrides[signed_in] = as_user
    return TestClient(app)


# The whole node as `ailedger node start` serves it, and clients that sign in for real.


@dataclass
class WebNode:
    """A node's app (node-to-node routes and web app) over ``session``'s home."""

    session: Session
    app: FastAPI
    sign_in: SignIn
    url: str = ""  # set while served over HTTP (``served``)

    def login_link(self, *, read_only: bool = False) -> str:
        """What ``ailedger node login-link`` prints for this node."""
        from ailedger.web.login_links import create_link

        code = create_link(self.session.home.path, read_only=read_only)
        return f"{self.url}/login#code={code}"


@contextmanager
def web_node(session: Session, *, auditors: tuple[str, ...] = ()) -> Iterator[WebNode]:
    """``session``'s node app with the web app, exactly as ``node start`` composes it."""
    from ailedger.node.service import node_app
    from ailedger.sharing.owner import OwnerNode

    with OwnerNode(session) as node:
        app = node_app(session, node, auditors=auditors)
        yield WebNode(session, app, app.state.sign_in)


@contextmanager
def served(node: WebNode) -> Iterator[WebNode]:
    """``node`` served over HTTP on a free loopback port (``node.url``)."""
    from ailedger.node.service import BackgroundServer

    with BackgroundServer(node.app) as url:
        node.url = url
        try:
            yield node
        finally:
            node.url = ""


BASE_URL = "http://127.0.0.1:8700"


def client(node: WebNode) -> TestClient:
    """A client of ``node``'s app that nobody signed in to (at the node's own address)."""
    return TestClient(node.app, base_url=BASE_URL)


def siwe_text(http: TestClient, account: LocalAccount, **changes: object) -> str:
    """An EIP-4361 message from ``account`` for ``http``'s server, over a fresh nonce;
    ``changes`` replace any field (to build the messages that must be refused)."""
    from ailedger.web.siwe import SiweMessage, timestamp

    issued = http.get("/api/v1/auth/nonce").json()
    now = datetime.now(UTC)
    fields: dict[str, object] = {
        "domain": issued["domain"],
        "address": account.address,
        "statement": issued["statement"],
        "uri": issued["uri"],
        "chain_id": issued["chain_id"],
        "nonce": issued["nonce"],
        "issued_at": timestamp(now),
        "expiration_time": timestamp(now + timedelta(minutes=5)),
    }
    fields.update(changes)
    return SiweMessage(**fields).text()  # type: ignore[arg-type]


def sign(account: LocalAccount, text: str) -> str:
    from eth_account.messages import encode_defunct

    return "0x" + bytes(account.sign_message(encode_defunct(text=text)).signature).hex()


def signed_in_client(node: WebNode, account: LocalAccount | None = None) -> TestClient:
    """A client signed in through the real SIWE route, as ``account`` (the home's own by
    default): it sends the session cookie, and the CSRF token on every request."""
    http = client(node)
    signer = account or node.session.account
    assert signer is not None
    text = siwe_text(http, signer)
    answer = http.post("/api/v1/auth/siwe", json={"message": text, "signature": sign(signer, text)})
    assert answer.status_code == 200, answer.text
    http.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
    return http


def link_client(node: WebNode, *, read_only: bool = False) -> TestClient:
    """A client signed in through a one-time link, as ``ailedger node login-link``."""
    from ailedger.web.login_links import create_link

    http = client(node)
    code = create_link(node.session.home.path, read_only=read_only)
    answer = http.post("/api/v1/auth/link", json={"code": code})
    assert answer.status_code == 200, answer.text
    http.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
    return http
