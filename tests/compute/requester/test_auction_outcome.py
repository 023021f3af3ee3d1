"""An auction that does not start its job ends cleanly, and the requester is told which
way: failed and refunded, or closed without enough bids and refundable."""

from __future__ import annotations

import dataclasses
import time

from ailedger.chain.contracts import ComputeMarketClient, ComputeProvidersClient
from ailedger.chain.contracts.compute_market import JobStatus
from ailedger.chain.deploy import COMPUTE_MIN_STAKE
from ailedger.compute.expiry import chain_time
from ailedger.compute.requester.job import auction_outcome
from tests.compute.test_expiry import _client, _funded, _terms
from tests.conftest import ChainUnderTest

AIL = 10**18


def test_an_auction_short_of_bids_refunds_in_full_and_says_so(
    chain_under_test: ChainUnderTest,
) -> None:
    requester, provider = chain_under_test.accounts[:2]
    token = _funded(chain_under_test, requester)
    _funded(chain_under_test, provider)
    market: ComputeMarketClient = _client(
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
    terms = _terms(market, 600)
    k2 = dataclasses.replace(terms, redundancy=2)
    job_id, _ = market.post_job(k2)
    idle_id, _ = market.post_job(terms)
    as_provider.bid(job_id, 3 * AIL)
    assert auction_outcome(market, job_id) is None  # bidding still open
    give_up = time.monotonic() + 30
    while chain_time(market) < market.job(job_id).bid_deadline + 1:  # type: ignore[union-attr]
        assert time.monotonic() < give_up
        time.sleep(0.2)
    said = auction_outcome(market, idle_id)
    assert said is not None and said.startswith("bidding closed with 0 bid(s) of the 1 needed")
    market.close_auction(job_id)
    market.close_auction(idle_id)
    assert market.job(job_id).status == JobStatus.CANCELLED  # type: ignore[union-attr]
    assert market.auction_failed(job_id) == 1 and market.auction_failed(idle_id) == 0
    said = auction_outcome(market, job_id)
    assert said == (
        "auction failed: 1 eligible bid(s) of the 2 needed; the job was cancelled and its "
        "escrow refunded in full"
    )
    assert token.balance_of(requester.address) == before  # both escrows came back
