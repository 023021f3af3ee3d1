"""The catalog against a real owner's gateway: metadata verified once is shown later
without the owner's node, and metadata missed while the owner was away is fetched when
it is back, even if no block came in between."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

from ailedger.chain.connection import open_embedded
from ailedger.chain.contracts.data_market import PURPOSES, Policy
from ailedger.chain.transactions import fund_from_dev_account
from ailedger.keys.home import NodeHome
from ailedger.node.app import create_app
from ailedger.node.service import BackgroundServer, announce
from ailedger.session import Session
from ailedger.settings import load_settings
from ailedger.sharing.catalog import Catalog
from ailedger.sharing.owner import OwnerNode

PASSPHRASE = "catalog"
POLICY = Policy(PURPOSES["rare-disease-research"], True, 10**18, 3600, 3)


def _session(home: NodeHome, connection: Any, cache: Path) -> Session:
    settings = load_settings(home=home.path, cache_dir=cache)
    return Session(settings, home, connection, home.unlock_account(PASSPHRASE), PASSPHRASE)


def test_verified_metadata_outlives_the_owners_node(tmp_path: Path, contract_cache: Path) -> None:
    cache = contract_cache  # compiled once per run
    owner_home = NodeHome.init(tmp_path / "owner", PASSPHRASE, scrypt_n=2**12)
    researcher_home = NodeHome.init(tmp_path / "researcher", PASSPHRASE, scrypt_n=2**12)
    source = tmp_path / "cohort.csv"
    source.write_text("id,age\n1,40\n")
    with open_embedded(owner_home.chain_dir, cache) as connection:
        owner = _session(owner_home, connection, cache)
        researcher = _session(researcher_home, connection, cache)
        fund_from_dev_account(connection.web3, owner.address, 10**20)
        with OwnerNode(owner) as node:
            first = node.publish(source, POLICY, {"title": "First cohort", "tags": ["a"]}, None)
            with BackgroundServer(create_app(node.gateway())) as url:
                announce(owner, url)
                Catalog(researcher.database).sync(researcher)
            # The owner's node is gone; it publishes once more while offline.
            second = node.publish(source, POLICY, {"title": "Second cohort"}, None)

            researcher.close()  # a later command: a fresh connection to the database
            catalog = Catalog(researcher.database)
            catalog.sync(researcher)
            titles = {e.dataset_id: e.title for e in catalog.search()}
            assert titles == {
                "0x" + first.dataset_id.hex(): "First cohort",
                "0x" + second.dataset_id.hex(): "(metadata unavailable)",
            }

            with BackgroundServer(create_app(node.gateway())) as url:
                announce(owner, url)  # same URL or a new one: the registry says
                head = connection.web3.eth.block_number
                Catalog(researcher.database).sync(researcher)
                synced = Catalog(researcher.database).get("0x" + second.dataset_id.hex())
                assert synced is not None and synced.title == "Second cohort"
                assert connection.web3.eth.block_number == head
        owner.close()
        researcher.close()


class _HangUp:
    """A node that takes each connection and closes it unanswered, counting them."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()


def test_an_owner_whose_node_is_away_costs_a_sync_one_request(
    tmp_path: Path, contract_cache: Path
) -> None:
    """Page views sync the catalog: an owner away with many datasets must not cost one
    request (and one timeout) per dataset, nor a request on every sync."""
    cache = contract_cache  # compiled once per run
    owner_home = NodeHome.init(tmp_path / "owner", PASSPHRASE, scrypt_n=2**12)
    researcher_home = NodeHome.init(tmp_path / "researcher", PASSPHRASE, scrypt_n=2**12)
    source = tmp_path / "cohort.csv"
    source.write_text("id,age\n1,40\n")
    away = _HangUp()
    with open_embedded(owner_home.chain_dir, cache) as connection:
        owner = _session(owner_home, connection, cache)
        researcher = _session(researcher_home, connection, cache)
        fund_from_dev_account(connection.web3, owner.address, 10**20)
        with OwnerNode(owner) as node:
            for i in range(5):
                node.publish(source, POLICY, {"title": f"Cohort {i}"}, None)
        owner.node_registry.register(away.url)
        catalog = Catalog(researcher.database)
        catalog.sync(researcher)
        assert away.connections == 1
        catalog.sync(researcher)
        assert away.connections == 1  # asked again only after the retry window
        assert {e.title for e in catalog.search()} == {"(metadata unavailable)"}
        owner.close()
        researcher.close()
    away.server.close()
