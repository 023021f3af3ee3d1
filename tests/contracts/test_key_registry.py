"""KeyRegistry.vy: register, rotate, per-account versions, and who may change a key.

Loaded from the file ``ailedger.chain.compiler`` compiles, for the same EVM version.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

import boa
import pytest
from boa.contracts.vyper.vyper_contract import VyperContract, VyperDeployer
from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.chain.compiler import EVM_VERSION, source_path

ZERO_KEY = b"\x00" * 32
KEY_A = bytes(range(1, 33))
KEY_B = bytes(range(101, 133))


@functools.cache
def _deployer() -> VyperDeployer:
    return boa.load_partial(
        str(source_path("KeyRegistry")), compiler_args={"evm_version": EVM_VERSION}
    )


# Its own address, not the default sender's first CREATE address: boa decodes the storage
# writes it traced at an address with the layout of the contract now there, and a Token
# deployed there by another test would make a revert's error rendering crash.
REGISTRY_ADDRESS = "0x" + hashlib.sha256(b"ailedger tests: KeyRegistry").hexdigest()[:40]


def _deploy() -> VyperContract:
    return _deployer().deploy(override_address=REGISTRY_ADDRESS)


@pytest.fixture
def registry() -> VyperContract:
    return _deploy()


@pytest.fixture
def alice() -> Any:
    return boa.env.generate_address("alice")


@pytest.fixture
def bob() -> Any:
    return boa.env.generate_address("bob")


def test_unregistered_account_has_no_key(registry: VyperContract, alice: Any) -> None:
    assert registry.keys(alice) == ZERO_KEY
    assert registry.versions(alice) == 0


def test_register_sets_key_and_emits_event(registry: VyperContract, alice: Any) -> None:
    with boa.env.prank(alice):
        registry.register(KEY_A)
    [event] = registry.get_logs()
    assert type(event).__name__ == "KeyRegistered"
    assert (event.account, event.key, event.version) == (alice, KEY_A, 1)
    assert registry.keys(alice) == KEY_A
    assert registry.versions(alice) == 1


def test_rotation_replaces_key_and_increments_version(registry: VyperContract, alice: Any) -> None:
    with boa.env.prank(alice):
        registry.register(KEY_A)
        registry.register(KEY_B)
        [event] = registry.get_logs()
        assert (event.account, event.key, event.version) == (alice, KEY_B, 2)
        # Re-registering the same key is still a rotation: holders must re-check it.
        registry.register(KEY_B)
    assert registry.keys(alice) == KEY_B
    assert registry.versions(alice) == 3


def test_zero_key_is_rejected(registry: VyperContract, alice: Any) -> None:
    with boa.env.prank(alice):
        registry.register(KEY_A)
        with boa.reverts("register: key is zero"):
            registry.register(ZERO_KEY)
    assert registry.keys(alice) == KEY_A
    assert registry.versions(alice) == 1


def test_accounts_only_change_their_own_key(registry: VyperContract, alice: Any, bob: Any) -> None:
    with boa.env.prank(alice):
        registry.register(KEY_A)
    # register() has no account argument: bob's call can only ever write bob's entry.
    with boa.env.prank(bob):
        registry.register(KEY_B)
    assert registry.keys(alice) == KEY_A
    assert registry.versions(alice) == 1
    assert registry.keys(bob) == KEY_B
    assert registry.versions(bob) == 1


def test_register_abi_takes_only_the_key(registry: VyperContract) -> None:
    # The guarantee above rests on this signature; adding an account parameter would
    # need an authorisation check, so make such a change fail loudly here.
    [register] = [f for f in registry.abi if f.get("name") == "register"]
    assert [i["type"] for i in register["inputs"]] == ["bytes32"]


@settings(max_examples=30, deadline=None)
@given(
    calls=st.lists(
        st.tuples(st.integers(0, 2), st.binary(min_size=32, max_size=32)),
        max_size=12,
    )
)
def test_versions_count_registrations(calls: list[tuple[int, bytes]]) -> None:
    registry = _deploy()
    accounts = [boa.env.generate_address(f"acct{i}") for i in range(3)]
    keys: dict[Any, bytes] = {}
    versions: dict[Any, int] = {}
    for index, key in calls:
        account = accounts[index]
        with boa.env.prank(account):
            if key == ZERO_KEY:
                with boa.reverts("register: key is zero"):
                    registry.register(key)
                continue
            registry.register(key)
        keys[account] = key
        versions[account] = versions.get(account, 0) + 1
    for account in accounts:
        assert registry.keys(account) == keys.get(account, ZERO_KEY)
        assert registry.versions(account) == versions.get(account, 0)
