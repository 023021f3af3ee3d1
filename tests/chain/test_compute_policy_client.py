"""The ComputePolicy client: OutputPolicy conversions, and the rules of one dataset set and
read through the typed client on every chain backend."""

from __future__ import annotations

import pytest
from tests.conftest import ChainUnderTest

from ailedger.chain.compiler import compile_contract
from ailedger.chain.contracts import DataMarketClient, Policy
from ailedger.chain.contracts.compute_policy import (
    DEFAULT_OUTPUT_POLICY,
    MAX_OUTPUT_BYTES,
    MIB,
    ComputePolicyClient,
    OutputPolicy,
)
from ailedger.errors import ConfigError, TransactionRevertedError

DS = b"\x51" * 32
CODE = b"\xc0" * 32


def test_output_policy_default_and_conversions() -> None:
    assert OutputPolicy(MIB, True, None) == DEFAULT_OUTPUT_POLICY
    assert DEFAULT_OUTPUT_POLICY.dp_epsilon_milli == 0
    assert OutputPolicy(4096, False, 0.5).dp_epsilon_milli == 500
    assert OutputPolicy(4096, False, 1.2345).dp_epsilon_milli == 1234
    assert OutputPolicy.from_chain(4096, False, 500) == OutputPolicy(4096, False, 0.5)
    assert OutputPolicy.from_chain(MIB, True, 0) == DEFAULT_OUTPUT_POLICY


@pytest.mark.parametrize(
    ("size", "epsilon"),
    [
        (0, None),
        (MAX_OUTPUT_BYTES + 1, None),
        (MIB, 0.0),
        (MIB, 0.0004),
        (MIB, 100.001),
        (MIB, float("nan")),
        (MIB, float("inf")),
        (MIB, -1.0),
    ],
)
def test_output_policy_refuses_what_the_contract_would(size: int, epsilon: float | None) -> None:
    with pytest.raises(ConfigError):
        OutputPolicy(size, True, epsilon)


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
    policy.set_output_policy(DS, OutputPolicy(4096, False, 0.25))
    assert policy.may_compute(DS, CODE)
    assert policy.may_host(DS, provider.address)
    assert stranger.output_policy(DS) == OutputPolicy(4096, False, 0.25)

    policy.allow_algorithm(DS, CODE, allowed=False)
    assert not policy.may_compute(DS, CODE)

    with pytest.raises(TransactionRevertedError, match="not the dataset owner"):
        stranger.allow_algorithm(DS, CODE)
