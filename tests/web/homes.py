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
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request

from ailedger.chain.connection import ChainConnection, open_embedded
from ailedger.chain.transactions import fund_from_dev_account
from ailedger.keys.home import NodeHome
from ailedger.node.errors import install_error_handlers
from ailedger.session import Session
from ailedger.settings import load_settings
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
    app = FastAPI()
    install_error_handlers(app)
    app.state.web = context
    for router in routers:
        app.include_router(router)

    def as_user(request: Request) -> User:
        if user is None:
            return signed_in(request)  # nobody signed in: the real refusal
        return user

    app.dependency_overrides[signed_in] = as_user
    return TestClient(app)
