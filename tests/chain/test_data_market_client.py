"""The DataMarket client on every chain backend: a dataset registered and read back, and
one paid request taken through its consent lifecycle (escrow, grant, check, revoke)."""

from __future__ import annotations

import pytest
from tests.conftest import ChainUnderTest

from ailedger.chain.compiler import compile_contract
from ailedger.chain.contracts import TokenClient
from ailedger.chain.contracts.data_market import PURPOSES, DataMarketClient, GrantStatus, Policy
from ailedger.errors import TransactionRevertedError

AIL = 10**18
DS = b"\x61" * 32
RESEARCH = PURPOSES["rare-disease-research"]
TRAINING = PURPOSES["model-training"]


def market(chain: ChainUnderTest, index: int) -> DataMarketClient:
    abi = compile_contract("DataMarket", chain.cache_dir).abi
    address = chain.deployment.address("DataMarket")
    return DataMarketClient(chain.connection.web3, address, abi, chain.accounts[index])


def token(chain: ChainUnderTest, index: int) -> TokenClient:
    abi = compile_contract("Token", chain.cache_dir).abi
    address = chain.deployment.address("Token")
    return TokenClient(chain.connection.web3, address, abi, chain.accounts[index])


def test_a_paid_request_is_escrowed_granted_checked_and_revoked(
    chain_under_test: ChainUnderTest,
) -> None:
    owner, researcher = market(chain_under_test, 0), market(chain_under_test, 1)
    o, r = (acct.address for acct in chain_under_test.accounts[:2])
    policy = Policy(RESEARCH, True, 5 * AIL, 3600, 2)
    registered = owner.register_dataset(DS, b"\x22" * 32, b"\x33" * 32, policy)

    record = researcher.dataset(DS)
    assert record is not None and record.owner == o and record.policy == policy
    assert (record.ciphertext_hash, record.metadata_hash) == (b"\x22" * 32, b"\x33" * 32)
    assert not record.retired and record.registered_at > 0
    assert researcher.dataset(b"\x00" * 32) is None
    with pytest.raises(TransactionRevertedError):
        owner.register_dataset(DS, b"\x22" * 32, b"\x33" * 32, policy)  # taken

    paying = token(chain_under_test, 1)
    paying.faucet(10 * AIL)
    paying.approve(researcher.address, 5 * AIL)
    request_id, requested = researcher.request_access(DS, RESEARCH)
    assert requested.block_number > registered.block_number
    pending = researcher.grant_info(request_id)
    assert pending is not None and pending.status == GrantStatus.PENDING
    assert (pending.requester, pending.amount, pending.dataset_id) == (r, 5 * AIL, DS)
    assert paying.balance_of(r) == 5 * AIL  # the price is held in escrow
    assert not owner.check_access(request_id, r, DS, RESEARCH)

    owner.grant(request_id)
    granted = owner.grant_info(request_id)
    assert granted is not None and granted.status == GrantStatus.GRANTED
    assert granted.expires_at > record.registered_at and granted.max_reads == 2
    assert paying.balance_of(o) == 5 * AIL  # released to the owner at the grant
    assert owner.check_access(request_id, r, DS, RESEARCH)
    assert not owner.check_access(request_id, r, DS, TRAINING)
    assert not owner.check_access(request_id, o, DS, RESEARCH)

    with pytest.raises(TransactionRevertedError):
        researcher.revoke(request_id)  # only the owner revokes
    owner.revoke(request_id)
    assert owner.grant_info(request_id).status == GrantStatus.REVOKED  # type: ignore[union-attr]
    assert not owner.check_access(request_id, r, DS, RESEARCH)


def test_a_request_for_a_purpose_the_policy_does_not_allow_is_refused(
    chain_under_test: ChainUnderTest,
) -> None:
    owner, researcher = market(chain_under_test, 0), market(chain_under_test, 1)
    owner.register_dataset(DS, b"\x22" * 32, b"\x33" * 32, Policy(RESEARCH, False, 0, 60, 0))
    with pytest.raises(TransactionRevertedError):
        researcher.request_access(DS, TRAINING)
    request_id, _ = researcher.request_access(DS, RESEARCH)
    # No approval needed and free: granted at once.
    assert researcher.grant_info(request_id).status == GrantStatus.GRANTED  # type: ignore[union-attr]
    owner.retire(DS)
    assert owner.dataset(DS).retired  # type: ignore[union-attr]
    with pytest.raises(TransactionRevertedError):
        researcher.request_access(DS, RESEARCH)
