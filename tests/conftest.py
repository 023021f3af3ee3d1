"""Fixtures shared across the suite: chain backends and a compiled-contract cache."""

from __future__ import annotations

import os

# The CLI's console takes its width once, when it is made: whichever test imports the CLI
# first, in whichever worker, the text the tests read is laid out on 200 columns.
os.environ["COLUMNS"] = "200"

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from ailedger.chain.connection import ChainConnection, connect_rpc, open_embedded
from ailedger.chain.deploy import Deployment, deploy_contracts, find_deployment
from ailedger.chain.market_windows import MarketWindows, WindowChoice
from ailedger.chain.transactions import fund_from_dev_account
from tests.db.conftest import database, db_url, postgres_server  # noqa: F401 (every store suite)
from tests.short_windows import deploy_beside

# The Anvil variants are marked at collection, so `-m "not rpcnode"` leaves them out.
BACKENDS = ["embedded", pytest.param("anvil", marks=pytest.mark.rpcnode)]


@pytest.fixture(scope="session")
def contract_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One compile cache per test session: contracts compile once, not per test."""
    return tmp_path_factory.mktemp("contract-cache")


@dataclass
class ChainUnderTest:
    """A running chain with ailedger's contracts and funded test accounts."""

    name: str
    connection: ChainConnection
    deployment: Deployment
    accounts: list[LocalAccount]
    cache_dir: Path


def _funded_accounts(connection: ChainConnection, count: int) -> list[LocalAccount]:
    accounts = [Account.create() for _ in range(count)]
    for account in accounts:
        fund_from_dev_account(connection.web3, account.address, 10**20)
    return accounts


@pytest.fixture
def market_windows() -> MarketWindows | None:
    """The compute market's windows on ``chain_under_test``: None deploys it as each
    backend does by default. A module whose tests wait a window out overrides this with
    a shorter one, so the wait costs seconds, not the development chain's 10 s."""
    return None


@pytest.fixture(params=BACKENDS)
def chain_under_test(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    contract_cache: Path,
    market_windows: MarketWindows | None,
) -> Iterator[ChainUnderTest]:
    """The same tests run on the embedded chain and on a real JSON-RPC node (Anvil)."""
    if request.param == "embedded":
        with open_embedded(tmp_path / "chain", contract_cache) as connection:
            if market_windows is None:
                deployment = find_deployment(connection.web3, tmp_path / "home")
            else:  # a deployment of its own beside the node's, with those windows
                deployment = deploy_beside(connection.web3, contract_cache, market_windows)
            accounts = _funded_accounts(connection, 3)
            yield ChainUnderTest("embedded", connection, deployment, accounts, contract_cache)
        return
    from ailedger.testing.ethnode import AnvilNode, anvil_available

    if not anvil_available():
        pytest.skip("Anvil is not installed: run scripts/install_ethnode.sh")
    deployer = Account.create()
    with AnvilNode([(deployer.address, 10**24)]) as node:
        connection = connect_rpc(node.url)
        deployment = deploy_contracts(
            connection.web3, deployer, contract_cache, market_windows or WindowChoice()
        )
        accounts = _funded_accounts(connection, 3)
        yield ChainUnderTest("anvil", connection, deployment, accounts, contract_cache)
