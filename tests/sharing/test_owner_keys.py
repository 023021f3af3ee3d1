"""The node binds its checkpoint key on chain; a chain too old for that says so plainly."""

from __future__ import annotations

from pathlib import Path

import pytest

from ailedger.chain.compiler import compile_contract
from ailedger.chain.connection import open_embedded
from ailedger.chain.contracts import AuditAnchorClient
from ailedger.errors import ContractError
from ailedger.keys.home import NodeHome
from ailedger.session import Session
from ailedger.settings import load_settings
from ailedger.sharing.owner import audit_signing_key, register_checkpoint_key

PASSPHRASE = "owner keys"


def test_checkpoint_key_is_bound_once(tmp_path: Path, contract_cache: Path) -> None:
    home = NodeHome.init(tmp_path / "home", PASSPHRASE, scrypt_n=2**12)
    settings = load_settings(home=home.path, cache_dir=contract_cache)
    with open_embedded(home.chain_dir, contract_cache) as connection:
        from ailedger.chain.transactions import fund_from_dev_account

        account = home.unlock_account(PASSPHRASE)
        fund_from_dev_account(connection.web3, account.address, 10**18)
        session = Session(settings, home, connection, account, PASSPHRASE)
        assert register_checkpoint_key(session) is not None
        assert register_checkpoint_key(session) is None  # already bound: no transaction
        key = audit_signing_key(session).public_key().public_bytes_raw()
        assert session.audit_anchor.checkpoint_key(session.address) == key


def test_an_anchor_contract_without_checkpoint_keys_is_named(
    tmp_path: Path, contract_cache: Path
) -> None:
    """A chain whose AuditAnchor predates checkpoint keys: one clear error, not a revert."""
    home = NodeHome.init(tmp_path / "home", PASSPHRASE, scrypt_n=2**12)
    settings = load_settings(home=home.path, cache_dir=contract_cache)
    with open_embedded(home.chain_dir, contract_cache) as connection:
        account = home.unlock_account(PASSPHRASE)
        session = Session(settings, home, connection, account, PASSPHRASE)
        # Stand-in for the old contract: an address holding code without set_checkpoint_key.
        elsewhere = session.deployment.address("Token")
        abi = compile_contract("AuditAnchor", contract_cache).abi
        session.__dict__["audit_anchor"] = AuditAnchorClient(
            connection.web3, elsewhere, abi, account
        )
        with pytest.raises(ContractError, match="predates"):
            register_checkpoint_key(session)
