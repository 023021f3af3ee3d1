"""The typed contract clients, run unchanged against every chain backend."""

from __future__ import annotations

from typing import TypeVar

import pytest
from tests.conftest import ChainUnderTest

from ailedger.chain.compiler import compile_contract
from ailedger.chain.contracts import (
    AuditAnchorClient,
    ContractClient,
    KeyRegistryClient,
    NodeRegistryClient,
    TokenClient,
)
from ailedger.chain.deploy import TOKEN_INITIAL_SUPPLY
from ailedger.chain.transactions import wait_for
from ailedger.errors import ContractError, TransactionRevertedError

AIL = 10**18


C = TypeVar("C", bound=ContractClient)


def bound(kind: type[C], chain: ChainUnderTest, index: int) -> C:
    abi = compile_contract(kind.contract_name, chain.cache_dir).abi
    address = chain.deployment.address(kind.contract_name)
    return kind(chain.connection.web3, address, abi, chain.accounts[index])


def token(chain: ChainUnderTest, index: int | None) -> TokenClient:
    account = None if index is None else chain.accounts[index]
    abi = compile_contract("Token", chain.cache_dir).abi
    return TokenClient(chain.connection.web3, chain.deployment.address("Token"), abi, account)


def registry(chain: ChainUnderTest, index: int | None) -> KeyRegistryClient:
    account = None if index is None else chain.accounts[index]
    abi = compile_contract("KeyRegistry", chain.cache_dir).abi
    address = chain.deployment.address("KeyRegistry")
    return KeyRegistryClient(chain.connection.web3, address, abi, account)


def test_token_metadata_and_supply(chain_under_test: ChainUnderTest) -> None:
    t = token(chain_under_test, None)
    assert (t.name(), t.symbol(), t.decimals()) == ("ailedger token", "AIL", 18)
    assert t.total_supply() == TOKEN_INITIAL_SUPPLY
    assert t.balance_of(chain_under_test.deployment.deployer) == TOKEN_INITIAL_SUPPLY


def test_faucet_transfer_and_balances(chain_under_test: ChainUnderTest) -> None:
    alice, bob = token(chain_under_test, 0), token(chain_under_test, 1)
    a, b = (acct.address for acct in chain_under_test.accounts[:2])
    alice.faucet(100 * AIL)
    result = alice.transfer(b, 40 * AIL)
    assert result.block_number > 0 and result.gas_used > 21_000
    assert alice.balance_of(a) == 60 * AIL
    assert bob.balance_of(b) == 40 * AIL
    assert alice.total_supply() == TOKEN_INITIAL_SUPPLY + 100 * AIL


def test_transfer_beyond_balance_is_refused_and_changes_nothing(
    chain_under_test: ChainUnderTest,
) -> None:
    alice = token(chain_under_test, 0)
    a, b = (acct.address for acct in chain_under_test.accounts[:2])
    alice.faucet(5 * AIL)
    with pytest.raises(TransactionRevertedError, match="exceeds balance"):
        alice.transfer(b, 6 * AIL)
    assert alice.balance_of(a) == 5 * AIL
    assert alice.balance_of(b) == 0


def test_allowance_and_transfer_from(chain_under_test: ChainUnderTest) -> None:
    owner, spender = token(chain_under_test, 0), token(chain_under_test, 1)
    o, s, c = (acct.address for acct in chain_under_test.accounts)
    owner.faucet(10 * AIL)
    owner.approve(s, 3 * AIL)
    assert owner.allowance(o, s) == 3 * AIL
    spender.transfer_from(o, c, 2 * AIL)
    assert owner.allowance(o, s) == 1 * AIL
    assert owner.balance_of(c) == 2 * AIL
    with pytest.raises(TransactionRevertedError):
        spender.transfer_from(o, c, 2 * AIL)


def test_submit_approval_returns_the_hash_at_once_and_orders_the_next_write_after_it(
    chain_under_test: ChainUnderTest,
) -> None:
    owner = token(chain_under_test, 0)
    o, s, c = (acct.address for acct in chain_under_test.accounts)
    owner.faucet(10 * AIL)
    tx_hash = owner.submit_approval(s, 3 * AIL)
    assert tx_hash.startswith("0x") and len(tx_hash) == 66
    transfer = owner.transfer(c, 1 * AIL)  # the next nonce: mined after the approval
    approval = wait_for(chain_under_test.connection.web3, tx_hash)
    assert approval.block_number <= transfer.block_number
    assert owner.allowance(o, s) == 3 * AIL


def test_faucet_refuses_more_than_its_per_call_limit(chain_under_test: ChainUnderTest) -> None:
    with pytest.raises(TransactionRevertedError, match="per-call limit"):
        token(chain_under_test, 0).faucet(10_001 * AIL)


def test_writes_need_an_account(chain_under_test: ChainUnderTest) -> None:
    with pytest.raises(ContractError, match="needs an unlocked account"):
        token(chain_under_test, None).transfer(chain_under_test.accounts[0].address, 1)


def test_key_registry_register_rotate_and_isolation(chain_under_test: ChainUnderTest) -> None:
    alice, bob = registry(chain_under_test, 0), registry(chain_under_test, 1)
    a, b = (acct.address for acct in chain_under_test.accounts[:2])
    assert alice.key_of(a) is None and alice.version_of(a) == 0
    alice.register(b"\x01" * 32)
    alice.register(b"\x02" * 32)
    bob.register(b"\x03" * 32)
    assert alice.key_of(a) == b"\x02" * 32 and alice.version_of(a) == 2
    assert alice.key_of(b) == b"\x03" * 32 and alice.version_of(b) == 1
    with pytest.raises(ContractError, match="32 bytes"):
        alice.register(b"\x01" * 31)


def test_transfer_events_are_found_with_get_logs(chain_under_test: ChainUnderTest) -> None:
    alice = token(chain_under_test, 0)
    b = chain_under_test.accounts[1].address
    alice.faucet(3 * AIL)
    result = alice.transfer(b, 1 * AIL)
    web3 = chain_under_test.connection.web3
    contract = web3.eth.contract(
        address=alice.address, abi=compile_contract("Token", chain_under_test.cache_dir).abi
    )
    events = contract.events.Transfer().get_logs(from_block=result.block_number)
    assert [(e["args"]["receiver"], e["args"]["value"]) for e in events] == [(b, 1 * AIL)]


def test_node_registry_register_move_and_unknown(chain_under_test: ChainUnderTest) -> None:
    alice = bound(NodeRegistryClient, chain_under_test, 0)
    bob = bound(NodeRegistryClient, chain_under_test, 1)
    a, b = (acct.address for acct in chain_under_test.accounts[:2])
    assert alice.url_of(a) is None
    alice.register("http://127.0.0.1:8700")
    bob.register("https://node.example.org")
    alice.register("http://127.0.0.1:8701")  # moved
    assert bob.url_of(a) == "http://127.0.0.1:8701"
    assert alice.url_of(b) == "https://node.example.org"
    with pytest.raises(TransactionRevertedError):
        alice.register("ftp://node.example.org")


def test_audit_anchor_moves_only_forward(chain_under_test: ChainUnderTest) -> None:
    node = bound(AuditAnchorClient, chain_under_test, 0)
    other = bound(AuditAnchorClient, chain_under_test, 1)
    n = chain_under_test.accounts[0].address
    assert node.latest(n) is None
    first = node.anchor(3, b"\x01" * 32)
    node.anchor(3, b"\x01" * 32)  # the same checkpoint again: accepted, not recorded
    node.anchor(8, b"\x02" * 32)
    assert other.latest(n) == (8, b"\x02" * 32)
    with pytest.raises(TransactionRevertedError, match="size below latest"):
        node.anchor(5, b"\x03" * 32)
    with pytest.raises(TransactionRevertedError, match="root differs"):
        node.anchor(8, b"\x04" * 32)
    history = other.history(n, from_block=first.block_number)
    assert history == [(3, b"\x01" * 32), (8, b"\x02" * 32)]
    assert other.history(chain_under_test.accounts[1].address) == []


def test_audit_anchor_checkpoint_key_is_the_nodes_own(chain_under_test: ChainUnderTest) -> None:
    node = bound(AuditAnchorClient, chain_under_test, 0)
    other = bound(AuditAnchorClient, chain_under_test, 1)
    n = chain_under_test.accounts[0].address
    assert other.checkpoint_key(n) is None
    node.set_checkpoint_key(b"\x07" * 32)
    node.set_checkpoint_key(b"\x08" * 32)  # a rotation
    assert other.checkpoint_key(n) == b"\x08" * 32
    assert node.checkpoint_key(chain_under_test.accounts[1].address) is None
    with pytest.raises(TransactionRevertedError, match="key is zero"):
        node.set_checkpoint_key(bytes(32))
