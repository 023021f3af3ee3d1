"""One job through the compute market with the typed client, on every chain backend:
offer, post (escrow), bid, early close by the requester, commit, reveal, accept, payment."""

from __future__ import annotations

import time

from tests.conftest import ChainUnderTest

from ailedger.chain.compiler import compile_contract
from ailedger.chain.contracts import ComputeProvidersClient, TokenClient
from ailedger.chain.contracts.compute_market import (
    ComputeMarketClient,
    JobStatus,
    JobTerms,
    new_salt,
)
from ailedger.chain.deploy import COMPUTE_MIN_STAKE

AIL = 10**18


def test_a_job_is_auctioned_run_revealed_accepted_and_paid(
    chain_under_test: ChainUnderTest,
) -> None:
    contract_cache = chain_under_test.cache_dir
    web3 = chain_under_test.connection.web3
    deployment = chain_under_test.deployment
    provider, requester = chain_under_test.accounts[:2]
    clients = {}
    for who in (provider, requester):
        token = TokenClient(
            web3,
            deployment.address("Token"),
            compile_contract("Token", contract_cache).abi,
            who,
        )
        token.faucet(1_000 * AIL)
        token.approve(deployment.address("ComputeMarket"), 1_000 * AIL)
        token.approve(deployment.address("ComputeProviders"), 1_000 * AIL)
        clients[who.address] = ComputeMarketClient(
            web3,
            deployment.address("ComputeMarket"),
            compile_contract("ComputeMarket", contract_cache).abi,
            who,
        )
    as_provider, as_requester = clients[provider.address], clients[requester.address]
    providers = ComputeProvidersClient(
        web3,
        deployment.address("ComputeProviders"),
        compile_contract("ComputeProviders", contract_cache).abi,
        provider,
    )

    providers.register_provider(COMPUTE_MIN_STAKE)
    providers.post_offer(2, 4096, "", 0, 3 * AIL, True)
    terms = JobTerms(
        bundle_hash=b"\x42" * 32,
        cpu_cores=1,
        ram_mb=1024,
        gpu_mem_mb=0,
        max_price_per_hour=5 * AIL,
        max_hours=2,
        deadline=int(time.time()) + 3600,
    )
    job_id, _ = as_requester.post_job(terms)
    assert as_requester.job(job_id).escrow == terms.max_cost  # type: ignore[union-attr]
    assert as_requester.job_datasets(job_id) == ((), 0)
    as_provider.bid(job_id, 3 * AIL)
    assert as_requester.job_bids(job_id) == [(provider.address, 3 * AIL)]
    as_requester.close_auction(job_id)  # early: the requester has its k = 1 bid
    [slot] = as_requester.assignments(job_id)
    assert slot["provider"] == provider.address and slot["price_per_hour"] == 3 * AIL

    output, salt = b"\x07" * 32, new_salt()
    as_provider.commit_result(job_id, output, salt)
    as_provider.reveal_result(job_id, output, salt, 3600)  # claims an hour
    assert as_requester.job(job_id).status == JobStatus.REVIEW  # type: ignore[union-attr]
    token = TokenClient(
        web3, deployment.address("Token"), compile_contract("Token", contract_cache).abi, None
    )
    before = token.balance_of(provider.address)
    as_requester.accept(job_id)
    record = as_requester.job(job_id)
    assert record is not None and record.status == JobStatus.COMPLETED
    assert record.result_hash == output
    # Paid by the second for the time that passed before the commitment, not the hour claimed.
    [slot] = as_requester.assignments(job_id)
    worked = max(slot["committed_at"] - slot["assigned_at"], 1)
    assert worked < 60 and slot["seconds_used"] == 3600
    assert slot["paid"] == worked * 3 * AIL // 3600
    assert token.balance_of(provider.address) == before + slot["paid"]
    assert providers.provider(provider.address)["completed"] == 1


def test_max_cost_includes_the_tie_break_reserve_for_k_of_two_or_more() -> None:
    base = {"bundle_hash": b"\x42" * 32, "cpu_cores": 1, "ram_mb": 1, "gpu_mem_mb": 0}
    terms = {**base, "max_price_per_hour": 5, "max_hours": 2, "deadline": 0}
    assert JobTerms(**terms).max_cost == 10  # type: ignore[arg-type]
    assert JobTerms(**terms, redundancy=2).max_cost == 30  # type: ignore[arg-type]
    assert JobTerms(**terms, redundancy=3).max_cost == 40  # type: ignore[arg-type]
