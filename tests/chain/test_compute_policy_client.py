"""The ComputePolicy client: OutputPolicy conversions, and the rules of one dataset set and
read through the typed client on every chain backend."""

from __future__ import annotations

import pytest
from tests.conftest import ChainUnderTest

from ailedger.chain.compiler import compile_contract
from ailedger.chain.contracts import DataMarketClient, Policy
from ailedger.chain.contracts.compute_policy import (
    DEFAULT_MIN_CELL_SIZE,
    DEFAULT_OUTPUT_POLICY,
    MAX_MIN_CELL_SIZE,
    MAX_OUTPUT_BYTES,
    MIB,
    ComputePolicyClient,
    OutputPolicy,
)
from ailedger.errors import ConfigError, TransactionRevertedError

DS = b"\x51" * 32
CODE = b"\xc0" * 32


def test_output_policy_default() -> None:
    assert OutputPolicy(MIB, True, 10) == DEFAULT_OUTPUT_POLICY
    assert DEFAULT_OUTPUT_POLICY.min_cell_size == DEFAULT_MIN_CELL_SIZE == 10
    assert not hasattr(DEFAULT_OUTPUT_POLICY, "dp_epsilon")  # nothing here claims privacy
    assert OutputPolicy(1, False, 1).min_cell_size == 1
    assert OutputPolicy(MAX_OUTPUT_BYTES, True, MAX_MIN_CELL_SIZE).min_cell_size == 1_000_000


@pytest.mark.parametrize(
    ("size", "cell", "message"),
    [
        (0, 10, "output size cap"),
        (MAX_OUTPUT_BYTES + 1, 10, "output size cap"),
        (True, 10, "output size cap"),
        (MIB, 0, "minimum cell size"),
        (MIB, -1, "minimum cell size"),
        (MIB, MAX_MIN_CELL_SIZE + 1, "minimum cell size"),
        (MIB, 2.5, "minimum cell size"),
        (MIB, True, "minimum cell size"),
    ],
)
def test_output_policy_refuses_what_the_contract_would(size: int, cell: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        OutputPolicy(size, True, cell)


def test_rules_set_and_read_through_the_client(chain_under_test: ChainUnderTest) -> None:
    contract_cache = chain_under_test.cache_dir
    web3 = chain_under_test.connection.web3
    deployment = chain_under_test.deployment
    owner, provider = chain_under_test.accounts[:2]
    market = DataMarketClient(
        web3,
        deployment.address("DataMarket"),
        compile_contract("DataMarket", contract_cache).abi,
        owner,
    )
    market.register_dataset(DS, b"\x22" * 32, b"\x33" * 32, Policy(1, False, 0, 86400, 0))
    abi = compile_contract("ComputePolicy", contract_cache).abi
    address = deployment.address("ComputePolicy")
    policy = ComputePolicyClient(web3, address, abi, owner)
    stranger = ComputePolicyClient(web3, address, abi, provider)

    assert policy.output_policy(DS) == DEFAULT_OUTPUT_POLICY
    assert not policy.may_compute(DS, CODE)
    assert policy.may_host(DS, owner.address)
    assert not policy.may_host(DS, provider.address)

    policy.allow_algorithm(DS, CODE)
    policy.allow_provider(DS, provider.address)
    policy.set_output_policy(DS, OutputPolicy(4096, False, 25))
    assert policy.may_compute(DS, CODE)
    assert policy.may_host(DS, provider.address)
    assert stranger.output_policy(DS) == OutputPolicy(4096, False, 25)

    policy.allow_algorithm(DS, CODE, allowed=False)
    assert not policy.may_compute(DS, CODE)

    with pytest.raises(TransactionRevertedError, match="not the dataset owner"):
        stranger.allow_algorithm(DS, CODE)
