"""Stuck jobs are refunded without the requester: the node's chores and the provider
agents expire the jobs they know of once they are due (ailedger.compute.expiry)."""

from __future__ import annotations

import time
from typing import Any

from ailedger.chain.compiler import compile_contract
from ailedger.chain.contracts import ComputeMarketClient, ComputeProvidersClient, TokenClient
from ailedger.chain.contracts.compute_market import JobStatus, JobTerms
from ailedger.chain.deploy import COMPUTE_MIN_STAKE
from ailedger.compute.expiry import ExpiryWatch, PostedJobs, chain_time
from tests.conftest import ChainUnderTest

AIL = 10**18


def _client(chain: ChainUnderTest, cls: Any, name: str, who: Any) -> Any:
    abi = compile_contract(name, chain.cache_dir).abi
    return cls(chain.connection.web3, chain.deployment.address(name), abi, who)


def _funded(chain: ChainUnderTest, who: Any) -> TokenClient:
    token: TokenClient = _client(chain, TokenClient, "Token", who)
    token.faucet(1_000 * AIL)
    token.approve(chain.deployment.address("ComputeMarket"), 1_000 * AIL)
    token.approve(chain.deployment.address("ComputeProviders"), 1_000 * AIL)
    return token


def _terms(market: ComputeMarketClient, seconds_after_bidding: int) -> JobTerms:
    deadline = chain_time(market) + market.windows().bid_s + seconds_after_bidding
    return JobTerms(
        bundle_hash=b"\x42" * 32,
        cpu_cores=1,
        ram_mb=1024,
        gpu_mem_mb=0,
        max_price_per_hour=5 * AIL,
        max_hours=2,
        deadline=deadline,
    )


def _wait_past(market: ComputeMarketClient, deadline: int) -> None:
    give_up = time.monotonic() + 60
    while chain_time(market) < deadline:
        assert time.monotonic() < give_up
        time.sleep(0.2)


def _spare(chain: ChainUnderTest) -> TokenClient:
    """An account of its own for the test's block-making transactions."""
    spare: TokenClient = _client(chain, TokenClient, "Token", chain.accounts[2])
    return spare


def _ticks_until_done(tick: Any, wanted: int, token: TokenClient) -> list[int]:
    """Tick (as the chores and agents do, round after round) until ``wanted`` jobs are
    expired. A node that mines only for transactions (Anvil) judges a call by its latest
    block's time, so the test keeps blocks coming as a live network does."""
    done: list[int] = []
    give_up = time.monotonic() + 60
    while len(done) < wanted:
        assert time.monotonic() < give_up, done
        token.faucet(1)
        done += tick()
        time.sleep(0.5)
    return done


def test_the_requesters_node_expires_its_job_that_nobody_bid_on(
    chain_under_test: ChainUnderTest,
) -> None:
    requester = chain_under_test.accounts[0]
    token = _funded(chain_under_test, requester)
    market: ComputeMarketClient = _client(
        chain_under_test, ComputeMarketClient, "ComputeMarket", requester
    )
    before = token.balance_of(requester.address)
    terms = _terms(market, 2)
    job_id, _ = market.post_job(terms)
    assert token.balance_of(requester.address) == before - terms.max_cost
    jobs = PostedJobs(market, requester.address, chain_under_test.deployment.block)
    assert jobs.run_once() == []  # not due yet: nothing sent
    assert jobs.watch.watched == 1
    _wait_past(market, terms.deadline)
    assert _ticks_until_done(jobs.run_once, 1, _spare(chain_under_test)) == [job_id]
    assert market.job(job_id).status == JobStatus.EXPIRED  # type: ignore[union-attr]
    assert token.balance_of(requester.address) == before  # the escrow came back
    assert jobs.run_once() == [] and jobs.watch.watched == 0


def test_a_provider_agent_expires_a_stuck_assignment_and_the_requester_is_refunded(
    chain_under_test: ChainUnderTest,
) -> None:
    """Nobody commits: the provider's own watch ends the job; the requester, away, gets
    the escrow back and the provider's slash as compensation."""
    requester, provider = chain_under_test.accounts[:2]
    token = _funded(chain_under_test, requester)
    _funded(chain_under_test, provider)
    as_requester: ComputeMarketClient = _client(
        chain_under_test, ComputeMarketClient, "ComputeMarket", requester
    )
    as_provider: ComputeMarketClient = _client(
        chain_under_test, ComputeMarketClient, "ComputeMarket", provider
    )
    stakes: ComputeProvidersClient = _client(
        chain_under_test, ComputeProvidersClient, "ComputeProviders", provider
    )
    stakes.register_provider(COMPUTE_MIN_STAKE)
    stakes.post_offer(2, 4096, "", 0, 3 * AIL, True)
    before = token.balance_of(requester.address)
    terms = _terms(as_requester, 3)
    job_id, _ = as_requester.post_job(terms)
    as_provider.bid(job_id, 3 * AIL)
    as_requester.close_auction(job_id)
    watch = ExpiryWatch(as_provider)
    watch.watch(job_id, terms.deadline)
    assert watch.tick(chain_time(as_provider)) == []
    _wait_past(as_provider, terms.deadline)
    assert _ticks_until_done(
        lambda: watch.tick(chain_time(as_provider)), 1, _spare(chain_under_test)
    ) == [job_id]
    assert as_requester.job(job_id).status == JobStatus.EXPIRED  # type: ignore[union-attr]
    slashed = COMPUTE_MIN_STAKE - stakes.provider(provider.address)["stake"]
    assert slashed > 0 and stakes.provider(provider.address)["active_jobs"] == 0
    assert token.balance_of(requester.address) == before + slashed


def test_work_per_tick_is_bounded(chain_under_test: ChainUnderTest) -> None:
    requester = chain_under_test.accounts[0]
    _funded(chain_under_test, requester)
    market: ComputeMarketClient = _client(
        chain_under_test, ComputeMarketClient, "ComputeMarket", requester
    )
    terms = _terms(market, 5)
    ids = [market.post_job(terms)[0] for _ in range(3)]
    watch = ExpiryWatch(market, per_tick=2)
    for job_id in ids:
        watch.watch(job_id, terms.deadline)
    _wait_past(market, terms.deadline)
    expired = _ticks_until_done(lambda: watch.tick(chain_time(market)), 3, _spare(chain_under_test))
    assert expired == ids and watch.watched == 0
    # Bounded: each tick looked at two jobs at most.
    fresh = ExpiryWatch(market, per_tick=2)
    for job_id in ids:
        fresh.watch(job_id, terms.deadline)
    calls: list[int] = []
    real_info = market.info
    market.info = lambda job_id: calls.append(job_id) or real_info(job_id)  # type: ignore[method-assign,func-returns-value]
    fresh.tick(chain_time(market))
    assert calls == ids[:2]
