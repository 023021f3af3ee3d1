"""The compute market's windows: scaled to the network's pace at deploy, read back from
the contract on every backend."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from eth_account import Account
from tests.conftest import ChainUnderTest

from ailedger.chain.compiler import compile_contract
from ailedger.chain.connection import connect_rpc
from ailedger.chain.contracts import ComputeMarketClient
from ailedger.chain.deploy import deploy_contracts
from ailedger.chain.market_windows import (
    DEV_CHAIN_WINDOWS,
    MAX_WINDOW_S,
    MarketWindows,
    WindowChoice,
    observed_block_interval,
)
from ailedger.errors import ConfigError
from ailedger.testing.ethnode import AnvilNode, anvil_available


def market(chain: ChainUnderTest) -> ComputeMarketClient:
    abi = compile_contract("ComputeMarket", chain.cache_dir).abi
    address = chain.deployment.address("ComputeMarket")
    return ComputeMarketClient(chain.connection.web3, address, abi, None)


def test_a_chain_that_seals_at_once_gets_the_development_windows() -> None:
    assert MarketWindows(bid_s=10, reveal_s=300, dispute_s=600) == DEV_CHAIN_WINDOWS
    assert MarketWindows.for_block_interval(0) == DEV_CHAIN_WINDOWS
    assert MarketWindows.for_block_interval(0.4) == DEV_CHAIN_WINDOWS


def test_windows_span_blocks_on_a_slower_network() -> None:
    # Four blocks of bids, but never under the development window's 10 s.
    assert MarketWindows.for_block_interval(1) == MarketWindows(10, 300, 600)
    assert MarketWindows.for_block_interval(3) == MarketWindows(12, 300, 600)
    assert MarketWindows.for_block_interval(12) == MarketWindows(48, 360, 720)
    assert MarketWindows.for_block_interval(12.5) == MarketWindows(50, 375, 750)
    slowest = MarketWindows.for_block_interval(10**9)
    assert slowest == MarketWindows(MAX_WINDOW_S, MAX_WINDOW_S, MAX_WINDOW_S)


@pytest.mark.parametrize("interval", [-1.0, math.nan, math.inf])
def test_a_meaningless_block_interval_is_refused(interval: float) -> None:
    with pytest.raises(ConfigError, match="block interval"):
        MarketWindows.for_block_interval(interval)


@pytest.mark.parametrize("bad", [0, -5, MAX_WINDOW_S + 1])
def test_windows_the_contract_would_refuse_are_refused_first(bad: int) -> None:
    with pytest.raises(ConfigError, match="reveal window"):
        MarketWindows(2, bad, 600)


def test_an_operator_fixes_some_windows_and_the_rest_scale() -> None:
    choice = WindowChoice(reveal_s=100)
    assert choice.measures
    assert choice.resolve(12) == MarketWindows(48, 100, 720)
    assert not WindowChoice(5, 6, 7).measures
    assert WindowChoice(5, 6, 7).resolve(12) == MarketWindows(5, 6, 7)


def test_the_windows_in_force_are_read_from_the_contract(
    chain_under_test: ChainUnderTest,
) -> None:
    windows = market(chain_under_test).windows()
    if chain_under_test.name == "embedded":
        assert windows == DEV_CHAIN_WINDOWS  # given, not measured
        return
    # Deployed like any external chain: scaled to the seconds per transaction of the six
    # deploys before ComputeMarket's, which went into consecutive blocks.
    web3, last = chain_under_test.connection.web3, chain_under_test.deployment.block
    interval = observed_block_interval(web3, range(last - 6, last))
    assert windows == MarketWindows.for_block_interval(interval)
    # Anvil mines on demand: however slow the machine, reveals and disputes keep the
    # development windows (they grow only past 10 s per transaction).
    assert (windows.reveal_s, windows.dispute_s) == (300, 600)


@pytest.mark.slow
@pytest.mark.rpcnode
@pytest.mark.integration
@pytest.mark.skipif(not anvil_available(), reason="Anvil: run scripts/install_ethnode.sh")
def test_deploy_measures_a_chain_mining_every_second(contract_cache: Path) -> None:
    deployer = Account.create()
    with AnvilNode([(deployer.address, 10**22)], block_time=1) as node:
        connection = connect_rpc(node.url)
        deployment = deploy_contracts(
            connection.web3, deployer, contract_cache, WindowChoice(dispute_s=900)
        )
        abi = compile_contract("ComputeMarket", contract_cache).abi
        client = ComputeMarketClient(
            connection.web3, deployment.address("ComputeMarket"), abi, None
        )
        # One block a second: four blocks of bids are 4 s, under the development floor;
        # reveals span 30 blocks, under theirs; the dispute window as chosen.
        assert client.windows() == MarketWindows(bid_s=10, reveal_s=300, dispute_s=900)
