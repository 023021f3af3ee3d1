"""ComputePolicy.vy: owner-only compute-to-data rules over DataMarket's datasets:
allowed algorithms, allowed providers, output release rules, their defaults and events.

Contracts are loaded from the very files ``ailedger.chain.compiler`` compiles, with the
same EVM version, so what is tested here is what gets deployed.
"""

from __future__ import annotations

import functools
from typing import Any

import boa
import pytest
from boa.contracts.vyper.vyper_contract import VyperContract, VyperDeployer

from ailedger.chain.compiler import EVM_VERSION, source_path

UNIT = 10**18
DAY = 86400
MIB = 1024 * 1024
GIB = 1024 * MIB
ZERO_ADDR = "0x" + "00" * 20
ZERO32 = b"\x00" * 32

DS = b"\x11" * 32
OTHER_DS = b"\x12" * 32
UNKNOWN_DS = b"\x99" * 32
CT_HASH = b"\x22" * 32
META_HASH = b"\x33" * 32
CODE = b"\xc0" * 32
CODE2 = b"\xc1" * 32
# What output_policy answers until the owner sets one: 1 MiB, aggregate-only, cells of 10.
DEFAULT = (MIB, True, 10)


@functools.cache
def _deployer(name: str) -> VyperDeployer:
    return boa.load_partial(str(source_path(name)), compiler_args={"evm_version": EVM_VERSION})


@pytest.fixture
def market() -> VyperContract:
    token = _deployer("Token").deploy(1_000 * UNIT)
    return _deployer("DataMarket").deploy(token.address)


@pytest.fixture
def owner() -> Any:
    return boa.env.generate_address("owner")


@pytest.fixture
def stranger() -> Any:
    return boa.env.generate_address("stranger")


@pytest.fixture
def provider() -> Any:
    return boa.env.generate_address("provider")


@pytest.fixture
def policy(market: VyperContract, owner: Any) -> VyperContract:
    """A ComputePolicy over `market`, in which `owner` registered DS."""
    _register(market, owner, DS)
    return _deployer("ComputePolicy").deploy(market.address)


def _register(market: VyperContract, owner: Any, dataset_id: bytes) -> None:
    with boa.env.prank(owner):
        market.register_dataset(dataset_id, CT_HASH, META_HASH, 1, False, 0, 30 * DAY, 0)


def _retire(market: VyperContract, owner: Any, dataset_id: bytes = DS) -> None:
    with boa.env.prank(owner):
        market.retire_dataset(dataset_id)


def _only_log(contract: VyperContract) -> Any:
    [log] = contract.get_logs()
    return log


# ---------------------------------------------------------------- construction


def test_constructor_and_constants(policy: VyperContract, market: VyperContract) -> None:
    assert policy.DATA_MARKET() == market.address
    assert policy.MAX_OUTPUT_BYTES() == GIB
    assert policy.DEFAULT_MAX_OUTPUT_BYTES() == MIB
    assert policy.DEFAULT_MIN_CELL_SIZE() == 10
    assert policy.MAX_MIN_CELL_SIZE() == 1_000_000


def test_constructor_rejects_non_contract_market() -> None:
    with boa.reverts("init: data market is not a contract"):
        _deployer("ComputePolicy").deploy(boa.env.generate_address("eoa"))


# ---------------------------------------------------------------- defaults


def test_defaults_for_a_fresh_dataset(policy: VyperContract, owner: Any, provider: Any) -> None:
    assert policy.output_policy(DS) == DEFAULT
    assert policy.output_policy(UNKNOWN_DS) == DEFAULT
    # No algorithm is allowed until the owner allows one; the owner may host.
    assert not policy.may_compute(DS, CODE)
    assert policy.may_host(DS, owner)
    assert not policy.may_host(DS, provider)
    assert not policy.may_host(DS, ZERO_ADDR)


def test_views_say_no_for_an_unknown_dataset(policy: VyperContract, owner: Any) -> None:
    assert not policy.may_compute(UNKNOWN_DS, CODE)
    assert not policy.may_host(UNKNOWN_DS, owner)
    assert not policy.may_host(UNKNOWN_DS, ZERO_ADDR)


# ---------------------------------------------------------------- algorithms


def test_allow_and_deny_algorithm(policy: VyperContract, owner: Any) -> None:
    with boa.env.prank(owner):
        policy.allow_algorithm(DS, CODE, True)
    log = _only_log(policy)
    assert type(log).__name__ == "AlgorithmAllowed"
    assert (log.dataset_id, log.code_hash, log.allowed) == (DS, CODE, True)
    assert policy.may_compute(DS, CODE)
    assert policy.algorithm_allowed(DS, CODE)
    assert not policy.may_compute(DS, CODE2)

    with boa.env.prank(owner):
        policy.allow_algorithm(DS, CODE, False)
    log = _only_log(policy)
    assert (log.dataset_id, log.code_hash, log.allowed) == (DS, CODE, False)
    assert not policy.may_compute(DS, CODE)


def test_algorithm_rules_are_per_dataset(
    policy: VyperContract, market: VyperContract, owner: Any
) -> None:
    _register(market, owner, OTHER_DS)
    with boa.env.prank(owner):
        policy.allow_algorithm(DS, CODE, True)
    assert policy.may_compute(DS, CODE)
    assert not policy.may_compute(OTHER_DS, CODE)


def test_allow_algorithm_refusals(
    policy: VyperContract, market: VyperContract, owner: Any, stranger: Any
) -> None:
    with boa.env.prank(stranger), boa.reverts("policy: caller is not the dataset owner"):
        policy.allow_algorithm(DS, CODE, True)
    with boa.env.prank(owner), boa.reverts("policy: unknown dataset"):
        policy.allow_algorithm(UNKNOWN_DS, CODE, True)
    with boa.env.prank(owner), boa.reverts("policy: code hash is zero"):
        policy.allow_algorithm(DS, ZERO32, True)
    # Another dataset's owner is a stranger here.
    _register(market, stranger, OTHER_DS)
    with boa.env.prank(stranger), boa.reverts("policy: caller is not the dataset owner"):
        policy.allow_algorithm(DS, CODE, True)
    assert not policy.may_compute(DS, CODE)


# ---------------------------------------------------------------- providers


def test_allow_and_deny_provider(policy: VyperContract, owner: Any, provider: Any) -> None:
    with boa.env.prank(owner):
        policy.allow_provider(DS, provider, True)
    log = _only_log(policy)
    assert type(log).__name__ == "ProviderAllowed"
    assert (log.dataset_id, log.provider, log.allowed) == (DS, provider, True)
    assert policy.may_host(DS, provider)
    assert policy.provider_allowed(DS, provider)
    assert policy.may_host(DS, owner)

    with boa.env.prank(owner):
        policy.allow_provider(DS, provider, False)
    log = _only_log(policy)
    assert (log.dataset_id, log.provider, log.allowed) == (DS, provider, False)
    assert not policy.may_host(DS, provider)
    assert policy.may_host(DS, owner)


def test_allow_provider_refusals(policy: VyperContract, owner: Any, stranger: Any) -> None:
    with boa.env.prank(stranger), boa.reverts("policy: caller is not the dataset owner"):
        policy.allow_provider(DS, stranger, True)
    with boa.env.prank(owner), boa.reverts("policy: unknown dataset"):
        policy.allow_provider(UNKNOWN_DS, stranger, True)
    with boa.env.prank(owner), boa.reverts("policy: provider is zero"):
        policy.allow_provider(DS, ZERO_ADDR, True)
    assert not policy.may_host(DS, stranger)


# ---------------------------------------------------------------- output policy


def test_set_output_policy(policy: VyperContract, owner: Any) -> None:
    with boa.env.prank(owner):
        policy.set_output_policy(DS, 4096, False, 25)
    log = _only_log(policy)
    assert type(log).__name__ == "OutputPolicySet"
    assert (log.dataset_id, log.max_output_bytes, log.aggregate_only, log.min_cell_size) == (
        DS,
        4096,
        False,
        25,
    )
    assert policy.output_policy(DS) == (4096, False, 25)
    # Replaced as a whole; the bounds themselves are accepted.
    with boa.env.prank(owner):
        policy.set_output_policy(DS, GIB, True, 1)
    assert policy.output_policy(DS) == (GIB, True, 1)
    with boa.env.prank(owner):
        policy.set_output_policy(DS, 1, True, 1_000_000)
    assert policy.output_policy(DS) == (1, True, 1_000_000)


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ((0, True, 10), "policy: output size cap is zero"),
        ((GIB + 1, True, 10), "policy: output size cap too large"),
        ((MIB, True, 0), "policy: min cell size is zero"),
        ((MIB, False, 0), "policy: min cell size is zero"),
        ((MIB, True, 1_000_001), "policy: min cell size too large"),
        ((MIB, True, 2**256 - 1), "policy: min cell size too large"),
    ],
)
def test_set_output_policy_bad_input(
    policy: VyperContract, owner: Any, args: tuple[int, bool, int], reason: str
) -> None:
    with boa.env.prank(owner), boa.reverts(reason):
        policy.set_output_policy(DS, *args)
    assert policy.output_policy(DS) == DEFAULT


def test_set_output_policy_owner_only(policy: VyperContract, owner: Any, stranger: Any) -> None:
    with boa.env.prank(stranger), boa.reverts("policy: caller is not the dataset owner"):
        policy.set_output_policy(DS, 4096, False, 10)
    with boa.env.prank(owner), boa.reverts("policy: unknown dataset"):
        policy.set_output_policy(UNKNOWN_DS, 4096, False, 10)
    assert policy.output_policy(DS) == DEFAULT


# ---------------------------------------------------------------- retirement


def test_retired_dataset_allows_nothing_and_takes_no_changes(
    policy: VyperContract, market: VyperContract, owner: Any, provider: Any
) -> None:
    with boa.env.prank(owner):
        policy.allow_algorithm(DS, CODE, True)
        policy.allow_provider(DS, provider, True)
        policy.set_output_policy(DS, 4096, False, 25)
    _retire(market, owner)

    assert not policy.may_compute(DS, CODE)
    assert not policy.may_host(DS, owner)
    assert not policy.may_host(DS, provider)
    # Stored rules are kept (and still readable), they just allow nothing.
    assert policy.algorithm_allowed(DS, CODE)
    assert policy.output_policy(DS) == (4096, False, 25)

    with boa.env.prank(owner):
        with boa.reverts("policy: dataset retired"):
            policy.allow_algorithm(DS, CODE2, True)
        with boa.reverts("policy: dataset retired"):
            policy.allow_provider(DS, provider, False)
        with boa.reverts("policy: dataset retired"):
            policy.set_output_policy(DS, MIB, True, 10)
    # A stranger is told it is not theirs before being told it is retired.
    with boa.env.prank(provider), boa.reverts("policy: caller is not the dataset owner"):
        policy.allow_algorithm(DS, CODE2, True)


# ---------------------------------------------------------------- events rebuild state


def test_events_rebuild_state(policy: VyperContract, owner: Any, provider: Any) -> None:
    """Replaying every event in order gives exactly what the views answer."""
    other = boa.env.generate_address("other-provider")
    calls: list[tuple[str, tuple[Any, ...]]] = [
        ("allow_algorithm", (DS, CODE, True)),
        ("allow_algorithm", (DS, CODE2, True)),
        ("allow_provider", (DS, provider, True)),
        ("set_output_policy", (DS, 2048, True, 15)),
        ("allow_algorithm", (DS, CODE, False)),
        ("allow_provider", (DS, other, True)),
        ("allow_provider", (DS, provider, False)),
        ("set_output_policy", (DS, 8192, False, 1)),
    ]
    algorithms: dict[bytes, bool] = {}
    providers: dict[str, bool] = {}
    output = DEFAULT
    for name, args in calls:
        with boa.env.prank(owner):
            getattr(policy, name)(*args)
        log = _only_log(policy)
        assert log.dataset_id == DS
        kind = type(log).__name__
        if kind == "AlgorithmAllowed":
            algorithms[log.code_hash] = log.allowed
        elif kind == "ProviderAllowed":
            providers[str(log.provider)] = log.allowed
        else:
            assert kind == "OutputPolicySet"
            output = (log.max_output_bytes, log.aggregate_only, log.min_cell_size)

    assert algorithms == {CODE: False, CODE2: True}
    for code_hash, allowed in algorithms.items():
        assert policy.may_compute(DS, code_hash) is allowed
    assert providers == {str(provider): False, str(other): True}
    for who, allowed in providers.items():
        assert policy.may_host(DS, who) is allowed
    assert policy.output_policy(DS) == output == (8192, False, 1)
