"""A working session: one node home, its chain, the deployed contracts and the account.

The CLI, the demo and programs using the SDK open a :class:`Session` and call its
contract clients (``session.token``, ``session.data_market``, ...: one typed attribute
per contract); none of them needs to know whether the chain is embedded or remote.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, TypeVar

from ailedger.chain.connection import ChainConnection, connect
from ailedger.chain.deploy import Deployment, find_deployment
from ailedger.errors import LockedError
from ailedger.keys.home import NodeHome
from ailedger.settings import Settings

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from eth_account.signers.local import LocalAccount
    from sqlalchemy import Engine

    from ailedger.chain.contracts import (
        AuditAnchorClient,
        ComputeMarketClient,
        ComputePolicyClient,
        ComputeProvidersClient,
        ContractClient,
        DataMarketClient,
        FederatedJobsClient,
        KeyRegistryClient,
        ModelRegistryClient,
        NodeRegistryClient,
        PatientsClient,
        PrivacyLedgerClient,
        TokenClient,
    )

GAS_FUNDING_WEI = 10 * 10**18  # what `account fund` hands out on development chains

Client = TypeVar("Client", bound="ContractClient")


@dataclass
class Session:
    settings: Settings
    home: NodeHome
    chain: ChainConnection
    account: LocalAccount | None
    passphrase: str | None = field(default=None, repr=False)
    _encryption_key: X25519PrivateKey | None = field(default=None, repr=False, init=False)
    _database: Engine | None = field(default=None, repr=False, init=False)
    _database_lock: threading.Lock = field(
        default_factory=threading.Lock, repr=False, init=False, compare=False
    )

    @cached_property
    def deployment(self) -> Deployment:
        return find_deployment(self.chain.web3, self.home.path)

    @property
    def database(self) -> Engine:
        """The shared stores' database (AILEDGER_DATABASE_URL, else the home's SQLite
        file), opened and migrated on first use, closed with the session. The provider
        agent's threads share the session, hence the lock: one engine, not one each."""
        with self._database_lock:
            if self._database is None:
                from ailedger.db import database_url, open_database

                url = database_url(self.settings.database_url, self.home.layout.database)
                self._database = open_database(url)
            return self._database

    def close(self) -> None:
        with self._database_lock:
            if self._database is not None:
                self._database.dispose()
                self._database = None

    @property
    def address(self) -> str:
        return str(self.home.address)

    def _bind(self, client_class: type[Client]) -> Client:
        """A client of ``client_class``'s contract as deployed here, sending as this
        session's account (reads only, if the session is locked)."""
        from ailedger.chain.compiler import compile_contract

        name = client_class.contract_name
        abi = compile_contract(name, self.settings.cache_dir).abi
        return client_class(self.chain.web3, self.deployment.address(name), abi, self.account)

    @cached_property
    def token(self) -> TokenClient:
        from ailedger.chain.contracts import TokenClient

        return self._bind(TokenClient)

    @cached_property
    def key_registry(self) -> KeyRegistryClient:
        from ailedger.chain.contracts import KeyRegistryClient

        return self._bind(KeyRegistryClient)

    @cached_property
    def node_registry(self) -> NodeRegistryClient:
        from ailedger.chain.contracts import NodeRegistryClient

        return self._bind(NodeRegistryClient)

    @cached_property
    def data_market(self) -> DataMarketClient:
        from ailedger.chain.contracts import DataMarketClient

        return self._bind(DataMarketClient)

    @cached_property
    def audit_anchor(self) -> AuditAnchorClient:
        from ailedger.chain.contracts import AuditAnchorClient

        return self._bind(AuditAnchorClient)

    @cached_property
    def compute_market(self) -> ComputeMarketClient:
        from ailedger.chain.contracts import ComputeMarketClient

        return self._bind(ComputeMarketClient)

    @cached_property
    def compute_providers(self) -> ComputeProvidersClient:
        """The compute market's providers: stakes, offers, reputation."""
        from ailedger.chain.contracts import ComputeProvidersClient

        return self._bind(ComputeProvidersClient)

    @cached_property
    def compute_policy(self) -> ComputePolicyClient:
        from ailedger.chain.contracts import ComputePolicyClient

        return self._bind(ComputePolicyClient)

    @cached_property
    def privacy_ledger(self) -> PrivacyLedgerClient:
        """The per-dataset differential-privacy budgets: caps, charges, their digest."""
        from ailedger.chain.contracts import PrivacyLedgerClient

        return self._bind(PrivacyLedgerClient)

    @cached_property
    def model_registry(self) -> ModelRegistryClient:
        """Model versions with their passports and on-chain-checked training lineage."""
        from ailedger.chain.contracts import ModelRegistryClient

        return self._bind(ModelRegistryClient)

    @cached_property
    def patients(self) -> PatientsClient:
        """Patients' links to hospitals' records, their consent, their share of sales."""
        from ailedger.chain.contracts import PatientsClient

        return self._bind(PatientsClient)

    @cached_property
    def federated_jobs(self) -> FederatedJobsClient:
        """Federated tasks: escrowed pools, joining institutions, anchored rounds, payouts."""
        from ailedger.chain.contracts import FederatedJobsClient

        return self._bind(FederatedJobsClient)

    def encryption_key(self) -> X25519PrivateKey:
        """The home's X25519 private key (needs the session opened with unlock=True).
        Unlocked once per session: scrypt costs a third of a second each time."""
        if self.passphrase is None:
            raise LockedError(
                "this action needs the unlocked encryption key; open the session with unlock=True"
            )
        if self._encryption_key is None:
            self._encryption_key = self.home.unlock_encryption_key(self.passphrase)
        return self._encryption_key

    def require_account(self) -> LocalAccount:
        if self.account is None:
            raise LockedError(
                "this action needs the unlocked account to sign; open the session with unlock=True"
            )
        return self.account

    def ether_balance(self, address: str | None = None) -> int:
        web3 = self.chain.web3
        return int(web3.eth.get_balance(web3.to_checksum_address(address or self.address)))


def effective_chain(settings: Settings, home: NodeHome) -> str:
    """A --chain flag or AILEDGER_CHAIN wins over what the home was initialised with."""
    return settings.chain or home.config.chain


@contextmanager
def open_session(
    settings: Settings, *, unlock: bool, passphrase: str | None = None
) -> Iterator[Session]:
    """Open the home in ``settings``, connect to its chain, unlock the account if asked."""
    from ailedger.keys.passphrase import resolve_passphrase

    home = NodeHome.open(settings.home)
    account = None
    secret = None
    if unlock:
        secret = passphrase or resolve_passphrase(settings.passphrase, confirm=False)
        account = home.unlock_account(secret)
    connection = connect(effective_chain(settings, home), home.chain_dir, settings.cache_dir)
    session = Session(settings, home, connection, account, secret)
    try:
        yield session
    finally:
        session.close()
        connection.close()
