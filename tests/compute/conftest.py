"""Fixtures of the compute suites."""

from __future__ import annotations

import pytest

from ailedger.chain.market_windows import MarketWindows
from tests.short_windows import SHORT_BID_WINDOWS


@pytest.fixture
def market_windows() -> MarketWindows:
    """The expiry and auction-outcome tests wait a job's bid window out on
    ``chain_under_test`` with nobody bidding, or with one bid the test sends right after
    posting: a 4 s window (tests/short_windows.py) instead of the development 10 s."""
    return SHORT_BID_WINDOWS
