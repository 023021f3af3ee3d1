"""The session: one typed client per contract, and a clear error when it is locked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ailedger.chain.connection import open_embedded
from ailedger.chain.contracts import (
    AuditAnchorClient,
    ComputeMarketClient,
    ComputePolicyClient,
    ContractClient,
    DataMarketClient,
    FederatedJobsClient,
    KeyRegistryClient,
    ModelRegistryClient,
    NodeRegistryClient,
    PrivacyLedgerClient,
    TokenClient,
)
from ailedger.errors import LockedError
from ailedger.keys.home import NodeHome
from ailedger.session import Session
from ailedger.settings import load_settings

PASSPHRASE = "session test"


@pytest.fixture
def locked(tmp_path: Path, contract_cache: Path) -> Iterator[Session]:
    """A session opened without the passphrase, as read-only commands open it."""
    home = NodeHome.init(tmp_path / "home", PASSPHRASE, scrypt_n=2**12)
    settings = load_settings(home=home.path, cache_dir=contract_cache)
    with open_embedded(home.chain_dir, contract_cache) as connection:
        yield Session(settings, home, connection, None)


def test_each_contract_has_its_typed_client_at_its_deployed_address(locked: Session) -> None:
    clients: list[tuple[ContractClient, type[ContractClient]]] = [
        (locked.token, TokenClient),
        (locked.key_registry, KeyRegistryClient),
        (locked.node_registry, NodeRegistryClient),
        (locked.data_market, DataMarketClient),
        (locked.audit_anchor, AuditAnchorClient),
        (locked.compute_market, ComputeMarketClient),
        (locked.compute_policy, ComputePolicyClient),
        (locked.privacy_ledger, PrivacyLedgerClient),
        (locked.model_registry, ModelRegistryClient),
        (locked.federated_jobs, FederatedJobsClient),
    ]
    for client, expected in clients:
        assert type(client) is expected
        assert client.address == locked.deployment.address(expected.contract_name)
    assert locked.token is locked.token  # bound once per session
    assert locked.token.symbol() == "AIL"


def test_a_locked_session_reads_but_refuses_to_sign_or_decrypt(locked: Session) -> None:
    assert locked.key_registry.key_of(locked.address) is None
    with pytest.raises(LockedError, match="needs the unlocked account"):
        locked.require_account()
    with pytest.raises(LockedError, match="needs the unlocked encryption key"):
        locked.encryption_key()
