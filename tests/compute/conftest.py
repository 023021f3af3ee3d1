"""Fixtures of the compute suites."""

from __future__ import annotations

import dataclasses

import pytest

from ailedger.chain.market_windows import DEV_CHAIN_WINDOWS, MarketWindows

# The expiry and auction-outcome tests wait a job's bid window out on ``chain_under_test``
# with nobody bidding, or with one bid sent from the test itself right after the posting:
# 4 s holds that bid on a loaded machine (the agents' 10 s is for a bidder that must first
# see the posting and fetch the job's spec), and each wait costs 4 s instead of 10.
SHORT_BID_WINDOW_S = 4


@pytest.fixture
def market_windows() -> MarketWindows:
    return dataclasses.replace(DEV_CHAIN_WINDOWS, bid_s=SHORT_BID_WINDOW_S)
