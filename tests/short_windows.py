"""Compute-market deployments with a short bid window, for tests that wait one out.

The development chain's market takes bids for 10 s (``DEV_CHAIN_WINDOWS``): room for a
provider agent that must first see a posting and fetch its ``job.toml`` on a loaded
machine. A test that waits a window out with nobody bidding, or whose only bids come
straight from the test or from an agent already watching (it bids within a tenth of a
second), deploys a market of its own with a 4 s bid window, so each wait costs 4 s."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Final

from eth_account import Account
from web3 import Web3

from ailedger.chain.deploy import Deployment, deploy_contracts
from ailedger.chain.market_windows import DEV_CHAIN_WINDOWS, MarketWindows
from ailedger.chain.transactions import fund_from_dev_account

SHORT_BID_WINDOWS: Final = dataclasses.replace(DEV_CHAIN_WINDOWS, bid_s=4)


def deploy_beside(web3: Web3, cache_dir: Path, windows: MarketWindows) -> Deployment:
    """Deploy ailedger's contracts again on a development chain (the node's own deployment
    stays as it is), from a new account funded by the chain's dev account."""
    deployer = Account.create()
    fund_from_dev_account(web3, deployer.address, 10**20)
    return deploy_contracts(web3, deployer, cache_dir, windows)
