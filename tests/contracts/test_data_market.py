"""DataMarket.vy: datasets, purpose-bound requests and grants, escrow, reentrancy, and a
stateful model check.

Contracts are loaded from the very files ``ailedger.chain.compiler`` compiles, with the
same EVM version (Shanghai: the reentrancy lock lives in storage), so what is tested here
is what gets deployed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boa
import pytest
from boa.contracts.vyper.vyper_contract import VyperContract, VyperDeployer
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from ailedger.chain.compiler import EVM_VERSION, source_path

UNIT = 10**18
SUPPLY = 1_000_000 * UNIT
PRICE = 5 * UNIT
DAY = 86400
ZERO_ADDR = "0x" + "00" * 20
ZERO32 = b"\x00" * 32

RARE, TRAINING, PUBLIC_HEALTH, CLINICAL, COMMERCIAL = 1, 2, 4, 8, 16
ALL_PURPOSES = 31
NONE, PENDING, GRANTED, DENIED, CANCELLED, REVOKED, EXPIRED = range(7)

DS = b"\x11" * 32
CT_HASH = b"\x22" * 32
META_HASH = b"\x33" * 32


@functools.cache
def _deployer(name: str) -> VyperDeployer:
    return boa.load_partial(str(source_path(name)), compiler_args={"evm_version": EVM_VERSION})


def _now() -> int:
    return int(boa.env.evm.patch.timestamp)


@pytest.fixture
def token() -> VyperContract:
    return _deployer("Token").deploy(SUPPLY)


@pytest.fixture
def market(token: VyperContract) -> VyperContract:
    return _deployer("DataMarket").deploy(token.address)


@pytest.fixture
def owner() -> Any:
    return boa.env.generate_address("owner")


@pytest.fixture
def alice(token: VyperContract, market: VyperContract) -> Any:
    """A funded requester who has approved the market for 10 prices."""
    account = boa.env.generate_address("alice")
    token.transfer(account, 100 * UNIT)
    with boa.env.prank(account):
        token.approve(market.address, 10 * PRICE)
    return account


@pytest.fixture
def bob() -> Any:
    return boa.env.generate_address("bob")


def _register(
    market: VyperContract,
    owner: Any,
    dataset_id: bytes = DS,
    purposes: int = RARE | PUBLIC_HEALTH,
    needs_approval: bool = True,
    price: int = PRICE,
    duration: int = 30 * DAY,
    max_reads: int = 3,
) -> None:
    with boa.env.prank(owner):
        market.register_dataset(
            dataset_id, CT_HASH, META_HASH, purposes, needs_approval, price, duration, max_reads
        )


def _request(market: VyperContract, who: Any, purpose: int = RARE, ds: bytes = DS) -> int:
    with boa.env.prank(who):
        rid: int = market.request_access(ds, purpose)
    return rid


def _by_name(logs: list[Any]) -> dict[str, Any]:
    return {type(log).__name__: log for log in logs}


# ---------------------------------------------------------------- construction and vocabulary


def test_constructor_and_vocabulary(market: VyperContract, token: VyperContract) -> None:
    assert market.TOKEN() == token.address
    assert [
        market.PURPOSE_RARE_DISEASE_RESEARCH(),
        market.PURPOSE_MODEL_TRAINING(),
        market.PURPOSE_PUBLIC_HEALTH(),
        market.PURPOSE_CLINICAL_CARE(),
        market.PURPOSE_COMMERCIAL_DEVELOPMENT(),
    ] == [1, 2, 4, 8, 16]
    assert market.ALL_PURPOSES() == ALL_PURPOSES
    assert market.request_count() == 0
    assert market.escrowed() == 0


def test_constructor_rejects_non_contract_token() -> None:
    with boa.reverts("init: token is not a contract"):
        _deployer("DataMarket").deploy(boa.env.generate_address("eoa"))


# ---------------------------------------------------------------- datasets


def test_register_dataset_stores_and_logs(market: VyperContract, owner: Any) -> None:
    _register(market, owner)
    [log] = market.get_logs()
    assert type(log).__name__ == "DatasetRegistered"
    assert (log.dataset_id, log.owner, log.ciphertext_hash, log.metadata_hash) == (
        DS,
        owner,
        CT_HASH,
        META_HASH,
    )
    assert (log.purposes, log.needs_approval, log.price, log.duration, log.max_reads) == (
        RARE | PUBLIC_HEALTH,
        True,
        PRICE,
        30 * DAY,
        3,
    )
    ds = market.datasets(DS)
    assert ds.owner == owner
    assert (ds.ciphertext_hash, ds.metadata_hash, ds.purposes) == (CT_HASH, META_HASH, 5)
    assert (ds.needs_approval, ds.price, ds.duration, ds.max_reads, ds.retired) == (
        True,
        PRICE,
        30 * DAY,
        3,
        False,
    )
    assert ds.registered_at == _now()


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"dataset_id": ZERO32}, "register: dataset id is zero"),
        ({"purposes": 0}, "policy: no purpose allowed"),
        ({"purposes": 32}, "policy: unknown purpose bit"),
        ({"purposes": ALL_PURPOSES | 64}, "policy: unknown purpose bit"),
        ({"duration": 0}, "policy: duration is zero"),
        ({"duration": 100 * 365 * DAY + 1}, "policy: duration too long"),
    ],
)
def test_register_dataset_refusals(
    market: VyperContract, owner: Any, kwargs: dict[str, Any], reason: str
) -> None:
    with boa.reverts(reason):
        _register(market, owner, **kwargs)


def test_register_rejects_zero_ciphertext_hash(market: VyperContract, owner: Any) -> None:
    with boa.env.prank(owner), boa.reverts("register: ciphertext hash is zero"):
        market.register_dataset(DS, ZERO32, META_HASH, RARE, True, PRICE, DAY, 0)


def test_register_rejects_used_id_even_by_another_owner(
    market: VyperContract, owner: Any, bob: Any
) -> None:
    _register(market, owner)
    with boa.reverts("register: dataset id in use"):
        _register(market, owner)
    with boa.reverts("register: dataset id in use"):
        _register(market, bob)
    assert market.datasets(DS).owner == owner


def test_update_policy_by_owner_only(market: VyperContract, owner: Any, bob: Any) -> None:
    _register(market, owner)
    with boa.env.prank(bob), boa.reverts("policy: caller is not the owner"):
        market.update_policy(DS, TRAINING, False, 1, DAY, 0)
    with boa.env.prank(owner), boa.reverts("policy: unknown dataset"):
        market.update_policy(b"\x99" * 32, TRAINING, False, 1, DAY, 0)
    with boa.env.prank(owner), boa.reverts("policy: unknown purpose bit"):
        market.update_policy(DS, 32, False, 1, DAY, 0)
    with boa.env.prank(owner):
        market.update_policy(DS, TRAINING | CLINICAL, False, 7, 2 * DAY, 9)
    [log] = market.get_logs()
    assert type(log).__name__ == "PolicyUpdated"
    assert (log.dataset_id, log.owner, log.purposes, log.needs_approval) == (DS, owner, 10, False)
    assert (log.price, log.duration, log.max_reads) == (7, 2 * DAY, 9)
    ds = market.datasets(DS)
    assert (ds.purposes, ds.needs_approval, ds.price, ds.duration, ds.max_reads) == (
        10,
        False,
        7,
        2 * DAY,
        9,
    )
    assert (ds.ciphertext_hash, ds.metadata_hash) == (CT_HASH, META_HASH)


def test_policy_update_affects_only_future_requests(
    market: VyperContract, token: VyperContract, owner: Any, alice: Any
) -> None:
    _register(market, owner, price=PRICE, duration=DAY, max_reads=3)
    first = _request(market, alice)
    with boa.env.prank(owner):
        market.update_policy(DS, RARE, True, 2 * PRICE, 2 * DAY, 7)
    second = _request(market, alice)
    assert market.grant_info(first).amount == PRICE
    assert market.grant_info(second).amount == 2 * PRICE
    assert market.escrowed() == 3 * PRICE
    with boa.env.prank(owner):
        market.grant(first)
        market.grant(second)
    g1, g2 = market.grant_info(first), market.grant_info(second)
    assert (g1.duration, g1.max_reads, g1.expires_at) == (DAY, 3, _now() + DAY)
    assert (g2.duration, g2.max_reads, g2.expires_at) == (2 * DAY, 7, _now() + 2 * DAY)
    assert token.balanceOf(owner) == 3 * PRICE


def test_retire_dataset(market: VyperContract, owner: Any, bob: Any, alice: Any) -> None:
    _register(market, owner)
    pending = _request(market, alice)
    with boa.env.prank(bob), boa.reverts("retire: caller is not the owner"):
        market.retire_dataset(DS)
    with boa.env.prank(owner), boa.reverts("retire: unknown dataset"):
        market.retire_dataset(b"\x99" * 32)
    with boa.env.prank(owner):
        market.retire_dataset(DS)
    [log] = market.get_logs()
    assert (type(log).__name__, log.dataset_id, log.owner) == ("DatasetRetired", DS, owner)
    assert market.datasets(DS).retired is True
    with boa.env.prank(owner), boa.reverts("retire: dataset already retired"):
        market.retire_dataset(DS)
    with boa.env.prank(owner), boa.reverts("policy: dataset retired"):
        market.update_policy(DS, RARE, True, 1, DAY, 0)
    with boa.reverts("request: dataset retired"):
        _request(market, alice)
    with boa.reverts("register: dataset id in use"):
        _register(market, owner)
    # A request made before retirement can still be decided.
    with boa.env.prank(owner):
        market.grant(pending)
    assert market.check_access(pending, alice, DS, RARE) is True


# ---------------------------------------------------------------- requests


def test_request_with_approval_escrows(
    market: VyperContract, token: VyperContract, owner: Any, alice: Any
) -> None:
    _register(market, owner)
    before = token.balanceOf(alice)
    rid = _request(market, alice, PUBLIC_HEALTH)
    assert rid == 1
    logs = _by_name(market.get_logs())
    created = logs["RequestCreated"]
    assert (created.request_id, created.dataset_id, created.requester, created.owner) == (
        1,
        DS,
        alice,
        owner,
    )
    assert (created.purpose, created.amount, created.needs_approval) == (PUBLIC_HEALTH, PRICE, True)
    assert "AccessGranted" not in logs
    assert token.balanceOf(alice) == before - PRICE
    assert token.balanceOf(market.address) == PRICE
    assert market.escrowed() == PRICE
    g = market.grant_info(rid)
    assert (g.dataset_id, g.requester, g.purpose, g.status, g.amount) == (
        DS,
        alice,
        PUBLIC_HEALTH,
        PENDING,
        PRICE,
    )
    assert (g.duration, g.max_reads, g.expires_at) == (30 * DAY, 3, 0)
    assert market.access_status(rid) == PENDING
    assert market.check_access(rid, alice, DS, PUBLIC_HEALTH) is False
    assert _request(market, alice) == 2
    assert market.request_count() == 2


def test_request_without_approval_is_granted_at_once(
    market: VyperContract, token: VyperContract, owner: Any, alice: Any
) -> None:
    _register(market, owner, needs_approval=False, duration=DAY, max_reads=0)
    rid = _request(market, alice)
    logs = _by_name(market.get_logs())
    granted = logs["AccessGranted"]
    assert (granted.request_id, granted.dataset_id, granted.requester, granted.owner) == (
        rid,
        DS,
        alice,
        owner,
    )
    assert (granted.purpose, granted.amount, granted.expires_at, granted.max_reads) == (
        RARE,
        PRICE,
        _now() + DAY,
        0,
    )
    assert logs["RequestCreated"].needs_approval is False
    transfer = logs["Transfer"]
    assert (transfer.sender, transfer.receiver, transfer.value) == (alice, owner, PRICE)
    assert token.balanceOf(owner) == PRICE
    assert token.balanceOf(market.address) == 0
    assert market.escrowed() == 0
    assert market.grant_info(rid).status == GRANTED
    assert market.check_access(rid, alice, DS, RARE) is True


def test_free_dataset_makes_no_token_call(
    market: VyperContract, token: VyperContract, owner: Any, bob: Any
) -> None:
    # bob has no tokens and no allowance: a free dataset still works.
    _register(market, owner, price=0)
    rid = _request(market, bob)
    assert "Transfer" not in _by_name(market.get_logs())
    with boa.env.prank(owner):
        market.grant(rid)
    assert market.check_access(rid, bob, DS, RARE) is True
    rid2 = _request(market, bob)
    with boa.env.prank(owner):
        market.deny(rid2)
    assert token.balanceOf(bob) == 0


@pytest.mark.parametrize(
    ("purpose", "reason"),
    [
        (0, "request: not a single purpose"),
        (RARE | PUBLIC_HEALTH, "request: not a single purpose"),
        (3, "request: not a single purpose"),
        (TRAINING, "request: purpose not allowed"),
        (COMMERCIAL, "request: purpose not allowed"),
        (32, "request: purpose not allowed"),
        (2**255, "request: purpose not allowed"),
    ],
)
def test_request_wrong_purpose(
    market: VyperContract, token: VyperContract, owner: Any, alice: Any, purpose: int, reason: str
) -> None:
    _register(market, owner, purposes=RARE | PUBLIC_HEALTH)
    before = token.balanceOf(alice)
    with boa.reverts(reason):
        _request(market, alice, purpose)
    assert token.balanceOf(alice) == before
    assert market.request_count() == 0


def test_request_unknown_dataset(market: VyperContract, alice: Any) -> None:
    with boa.reverts("request: unknown dataset"):
        _request(market, alice, RARE, b"\x99" * 32)


def test_request_insufficient_allowance(
    market: VyperContract, token: VyperContract, owner: Any, alice: Any
) -> None:
    _register(market, owner)
    with boa.env.prank(alice):
        token.approve(market.address, PRICE - 1)
    with boa.reverts("transferFrom: amount exceeds allowance"):
        _request(market, alice)
    assert market.request_count() == 0
    assert market.escrowed() == 0


def test_request_insufficient_balance(
    market: VyperContract, token: VyperContract, owner: Any, bob: Any
) -> None:
    _register(market, owner, needs_approval=False)
    token.transfer(bob, PRICE - 1)
    with boa.env.prank(bob):
        token.approve(market.address, PRICE)
    with boa.reverts("transfer: amount exceeds balance"):
        _request(market, bob)
    assert market.request_count() == 0


# ---------------------------------------------------------------- grant / deny / cancel / revoke


def test_grant_pays_owner_and_sets_expiry(
    market: VyperContract, token: VyperContract, owner: Any, alice: Any
) -> None:
    _register(market, owner, duration=7 * DAY)
    rid = _request(market, alice)
    boa.env.time_travel(seconds=100)
    with boa.env.prank(owner):
        market.grant(rid)
    logs = _by_name(market.get_logs())
    granted = logs["AccessGranted"]
    assert (granted.request_id, granted.dataset_id, granted.requester, granted.owner) == (
        rid,
        DS,
        alice,
        owner,
    )
    assert (granted.purpose, granted.amount, granted.expires_at, granted.max_reads) == (
        RARE,
        PRICE,
        _now() + 7 * DAY,
        3,
    )
    assert (logs["Transfer"].receiver, logs["Transfer"].value) == (owner, PRICE)
    assert token.balanceOf(owner) == PRICE
    assert token.balanceOf(market.address) == 0
    assert market.escrowed() == 0
    g = market.grant_info(rid)
    assert (g.status, g.expires_at, g.max_reads) == (GRANTED, _now() + 7 * DAY, 3)
    assert market.check_access(rid, alice, DS, RARE) is True


def test_grant_refusals(market: VyperContract, owner: Any, alice: Any, bob: Any) -> None:
    _register(market, owner)
    rid = _request(market, alice)
    with boa.env.prank(owner), boa.reverts("grant: unknown request"):
        market.grant(rid + 1)
    with boa.env.prank(alice), boa.reverts("grant: caller is not the owner"):
        market.grant(rid)
    with boa.env.prank(bob), boa.reverts("grant: caller is not the owner"):
        market.grant(rid)
    with boa.env.prank(owner):
        market.grant(rid)
    with boa.env.prank(owner), boa.reverts("grant: request not pending"):
        market.grant(rid)


def test_deny_refunds(market: VyperContract, token: VyperContract, owner: Any, alice: Any) -> None:
    _register(market, owner)
    before = token.balanceOf(alice)
    rid = _request(market, alice, PUBLIC_HEALTH)
    with boa.env.prank(alice), boa.reverts("deny: caller is not the owner"):
        market.deny(rid)
    with boa.env.prank(owner), boa.reverts("deny: unknown request"):
        market.deny(99)
    with boa.env.prank(owner):
        market.deny(rid)
    logs = _by_name(market.get_logs())
    denied = logs["AccessDenied"]
    assert (denied.request_id, denied.dataset_id, denied.requester, denied.owner) == (
        rid,
        DS,
        alice,
        owner,
    )
    assert (denied.purpose, denied.refund) == (PUBLIC_HEALTH, PRICE)
    assert (logs["Transfer"].receiver, logs["Transfer"].value) == (alice, PRICE)
    assert token.balanceOf(alice) == before
    assert token.balanceOf(owner) == 0
    assert market.escrowed() == 0
    assert market.grant_info(rid).status == DENIED
    with boa.env.prank(owner), boa.reverts("deny: request not pending"):
        market.deny(rid)
    with boa.env.prank(owner), boa.reverts("grant: request not pending"):
        market.grant(rid)
    assert market.check_access(rid, alice, DS, PUBLIC_HEALTH) is False


def test_cancel_refunds(
    market: VyperContract, token: VyperContract, owner: Any, alice: Any, bob: Any
) -> None:
    _register(market, owner)
    before = token.balanceOf(alice)
    rid = _request(market, alice)
    with boa.env.prank(bob), boa.reverts("cancel: caller is not the requester"):
        market.cancel_request(rid)
    with boa.env.prank(owner), boa.reverts("cancel: caller is not the requester"):
        market.cancel_request(rid)
    with boa.env.prank(alice), boa.reverts("cancel: unknown request"):
        market.cancel_request(rid + 1)
    with boa.env.prank(alice):
        market.cancel_request(rid)
    logs = _by_name(market.get_logs())
    cancelled = logs["RequestCancelled"]
    assert (cancelled.request_id, cancelled.dataset_id, cancelled.requester) == (rid, DS, alice)
    assert (cancelled.owner, cancelled.purpose, cancelled.refund) == (owner, RARE, PRICE)
    assert token.balanceOf(alice) == before
    assert market.escrowed() == 0
    assert market.grant_info(rid).status == CANCELLED
    # grant after cancel, cancel twice
    with boa.env.prank(owner), boa.reverts("grant: request not pending"):
        market.grant(rid)
    with boa.env.prank(alice), boa.reverts("cancel: request not pending"):
        market.cancel_request(rid)


def test_cancel_after_grant_is_refused(market: VyperContract, owner: Any, alice: Any) -> None:
    _register(market, owner)
    rid = _request(market, alice)
    with boa.env.prank(owner):
        market.grant(rid)
    with boa.env.prank(alice), boa.reverts("cancel: request not pending"):
        market.cancel_request(rid)
    with boa.env.prank(owner), boa.reverts("deny: request not pending"):
        market.deny(rid)


def test_revoke_stops_access_without_refund(
    market: VyperContract, token: VyperContract, owner: Any, alice: Any, bob: Any
) -> None:
    _register(market, owner, needs_approval=False, duration=DAY)
    rid = _request(market, alice)
    assert market.check_access(rid, alice, DS, RARE) is True
    with boa.env.prank(bob), boa.reverts("revoke: caller is not the owner"):
        market.revoke(rid)
    with boa.env.prank(alice), boa.reverts("revoke: caller is not the owner"):
        market.revoke(rid)
    with boa.env.prank(owner), boa.reverts("revoke: unknown request"):
        market.revoke(rid + 1)
    alice_before = token.balanceOf(alice)
    boa.env.time_travel(seconds=60)
    with boa.env.prank(owner):
        market.revoke(rid)
    [log] = market.get_logs()
    assert type(log).__name__ == "AccessRevoked"
    assert (log.request_id, log.dataset_id, log.requester, log.owner, log.purpose) == (
        rid,
        DS,
        alice,
        owner,
        RARE,
    )
    assert (log.expires_at, log.revoked_at) == (_now() - 60 + DAY, _now())
    assert market.check_access(rid, alice, DS, RARE) is False
    assert market.grant_info(rid).status == REVOKED
    assert market.access_status(rid) == REVOKED
    assert token.balanceOf(alice) == alice_before
    assert token.balanceOf(owner) == PRICE
    with boa.env.prank(owner), boa.reverts("revoke: request not granted"):
        market.revoke(rid)
    with boa.env.prank(owner), boa.reverts("grant: request not pending"):
        market.grant(rid)


def test_revoke_pending_is_refused(market: VyperContract, owner: Any, alice: Any) -> None:
    _register(market, owner)
    rid = _request(market, alice)
    with boa.env.prank(owner), boa.reverts("revoke: request not granted"):
        market.revoke(rid)


def test_expiry(market: VyperContract, owner: Any, alice: Any) -> None:
    _register(market, owner, needs_approval=False, duration=DAY)
    rid = _request(market, alice)
    expires_at = market.grant_info(rid).expires_at
    boa.env.time_travel(seconds=expires_at - _now() - 1)
    assert market.check_access(rid, alice, DS, RARE) is True
    assert market.access_status(rid) == GRANTED
    boa.env.time_travel(seconds=1)  # now == expires_at: expired
    assert market.check_access(rid, alice, DS, RARE) is False
    assert market.access_status(rid) == EXPIRED
    assert market.grant_info(rid).status == GRANTED  # expiry is derived, never stored
    # An expired grant may still be revoked (only recorded).
    with boa.env.prank(owner):
        market.revoke(rid)
    assert market.access_status(rid) == REVOKED


def test_check_access_matches_every_field(
    market: VyperContract, owner: Any, alice: Any, bob: Any
) -> None:
    other = b"\x44" * 32
    _register(market, owner, purposes=RARE | PUBLIC_HEALTH, needs_approval=False)
    _register(market, owner, dataset_id=other, purposes=RARE, needs_approval=False)
    rid = _request(market, alice, RARE)
    assert market.check_access(rid, alice, DS, RARE) is True
    assert market.check_access(rid, bob, DS, RARE) is False
    assert market.check_access(rid, alice, other, RARE) is False
    assert market.check_access(rid, alice, DS, PUBLIC_HEALTH) is False
    assert market.check_access(rid, alice, DS, RARE | PUBLIC_HEALTH) is False
    assert market.check_access(rid + 1, alice, DS, RARE) is False
    assert market.check_access(0, ZERO_ADDR, ZERO32, 0) is False


def test_unknown_request_views_are_zero(market: VyperContract) -> None:
    g = market.grant_info(42)
    assert (g.requester, g.status, g.amount, g.expires_at) == (ZERO_ADDR, NONE, 0, 0)
    assert market.access_status(42) == NONE


# ---------------------------------------------------------------- hostile, reentrant token

HOSTILE_TOKEN = (Path(__file__).parent / "hostile_token.vy").read_text()


@pytest.fixture
def hostile() -> VyperContract:
    deployer = boa.loads_partial(HOSTILE_TOKEN, compiler_args={"evm_version": EVM_VERSION})
    return deployer.deploy(SUPPLY)


@pytest.fixture
def hostile_market(hostile: VyperContract) -> VyperContract:
    return _deployer("DataMarket").deploy(hostile.address)


def test_hostile_token_cannot_double_refund(
    hostile: VyperContract, hostile_market: VyperContract, owner: Any
) -> None:
    """The token is itself the requester; on the deny refund it reenters cancel_request."""
    market = hostile_market
    hostile.transfer(hostile.address, 10 * PRICE)
    hostile.act(hostile.address, hostile.approve.prepare_calldata(market.address, 10 * PRICE))
    _register(market, owner)
    hostile.act(market.address, market.request_access.prepare_calldata(DS, RARE))
    rid = market.request_count()
    assert market.grant_info(rid).requester == hostile.address
    assert hostile.balanceOf(market.address) == PRICE

    hostile.arm(market.address, market.cancel_request.prepare_calldata(rid))
    with boa.env.prank(owner):
        market.deny(rid)
    assert hostile.attempts() == 1
    assert hostile.successes() == 0  # the reentrant cancel was refused
    assert hostile.balanceOf(hostile.address) == 10 * PRICE  # refunded exactly once
    assert hostile.balanceOf(market.address) == 0
    assert market.escrowed() == 0
    assert market.grant_info(rid).status == DENIED


def test_hostile_token_cannot_double_pay_owner(
    hostile: VyperContract, hostile_market: VyperContract, alice: Any
) -> None:
    """The token is itself the data owner; on the grant payout it reenters grant, then deny."""
    market = hostile_market
    hostile.transfer(alice, 10 * PRICE)
    with boa.env.prank(alice):
        hostile.approve(market.address, 10 * PRICE)
    register = market.register_dataset.prepare_calldata(
        DS, CT_HASH, META_HASH, RARE, True, PRICE, DAY, 0
    )
    hostile.act(market.address, register)
    assert market.datasets(DS).owner == hostile.address
    first = _request(market, alice)
    second = _request(market, alice)
    assert market.escrowed() == 2 * PRICE

    # grant(second) pays the owner (the token), which reenters grant(first): refused.
    hostile.arm(market.address, market.grant.prepare_calldata(first))
    hostile.act(market.address, market.grant.prepare_calldata(second))
    assert (hostile.attempts(), hostile.successes()) == (1, 0)
    assert hostile.balanceOf(hostile.address) == PRICE
    assert market.escrowed() == PRICE
    assert market.grant_info(first).status == PENDING

    # grant(first) pays, and reenters grant(second) to be paid for it a second time: refused.
    hostile.arm(market.address, market.grant.prepare_calldata(second))
    hostile.act(market.address, market.grant.prepare_calldata(first))
    assert (hostile.attempts(), hostile.successes()) == (2, 0)
    assert hostile.balanceOf(hostile.address) == 2 * PRICE  # each request paid exactly once
    assert hostile.balanceOf(market.address) == 0
    assert market.escrowed() == 0
    assert market.grant_info(first).status == GRANTED
    assert market.grant_info(second).status == GRANTED


def test_hostile_token_reentry_during_request_is_refused(
    hostile: VyperContract, hostile_market: VyperContract, alice: Any, owner: Any
) -> None:
    market = hostile_market
    hostile.transfer(alice, 10 * PRICE)
    with boa.env.prank(alice):
        hostile.approve(market.address, 10 * PRICE)
    _register(market, owner, needs_approval=False)
    hostile.arm(market.address, market.request_access.prepare_calldata(DS, RARE))
    rid = _request(market, alice)
    assert (hostile.attempts(), hostile.successes()) == (1, 0)
    assert market.request_count() == 1
    assert hostile.balanceOf(owner) == PRICE
    assert market.check_access(rid, alice, DS, RARE) is True


# ---------------------------------------------------------------- stateful model check

LEGAL = {
    (PENDING, GRANTED),
    (PENDING, DENIED),
    (PENDING, CANCELLED),
    (GRANTED, REVOKED),
}


class MarketMachine(RuleBasedStateMachine):
    """Random sequences of market calls against a plain-Python model of balances, escrow
    and request states."""

    market: VyperContract
    token: VyperContract

    owners_i = st.integers(0, 1)
    # people 0-1 own the datasets, 2-4 request; 5-7 pick the right caller for the request
    callers = st.integers(0, 7)
    datasets_i = st.integers(0, 2)
    purposes = st.sampled_from([0, 1, 2, 4, 8, 16, 3, 32])
    prices = st.sampled_from([0, 1, 3 * UNIT])

    @initialize()
    def deploy(self) -> None:
        self.people = [boa.env.generate_address(f"person{i}") for i in range(5)]
        self.token = _deployer("Token").deploy(SUPPLY)
        self.market = _deployer("DataMarket").deploy(self.token.address)
        self.holders = [*self.people, self.market.address, boa.env.eoa]
        self.allowance = {p: 0 for p in self.people}
        for p in self.people[2:]:
            self.token.transfer(p, 10 * UNIT)
            with boa.env.prank(p):
                self.token.approve(self.market.address, 8 * UNIT)
            self.allowance[p] = 8 * UNIT
        self.balances = {h: self.token.balanceOf(h) for h in self.holders}
        self.ids = [bytes([i + 1]) * 32 for i in range(3)]
        # dataset id -> [owner index, purposes, needs_approval, price, duration, retired]
        self.ds: dict[bytes, list[Any]] = {}
        for i, (purposes, approval, price) in enumerate(
            [(RARE | TRAINING, True, 2 * UNIT), (PUBLIC_HEALTH, False, UNIT), (31, True, 0)]
        ):
            owner = self.people[i % 2]
            with boa.env.prank(owner):
                self.market.register_dataset(
                    self.ids[i], CT_HASH, META_HASH, purposes, approval, price, DAY, 0
                )
            self.ds[self.ids[i]] = [i % 2, purposes, approval, price, DAY, False]
        # request id -> dict(requester, dataset, purpose, status, amount, expires_at, payouts)
        self.reqs: dict[int, dict[str, Any]] = {}
        self.seen_status: dict[int, int] = {}

    def _move(self, src: Any, dst: Any, amount: int) -> None:
        self.balances[src] -= amount
        self.balances[dst] += amount

    def _expect_revert(self, reason: str, call: Callable[[], object]) -> None:
        with boa.reverts(reason):
            call()

    @rule(who=st.integers(2, 4), amount=st.sampled_from([0, 1, 2 * UNIT, 100 * UNIT]))
    def approve(self, who: int, amount: int) -> None:
        with boa.env.prank(self.people[who]):
            self.token.approve(self.market.address, amount)
        self.allowance[self.people[who]] = amount

    @rule(d=datasets_i, caller=owners_i, purposes=purposes, approval=st.booleans(), price=prices)
    def update_policy(self, d: int, caller: int, purposes: int, approval: bool, price: int) -> None:
        dsid = self.ids[d]
        model = self.ds[dsid]
        call = functools.partial(
            self.market.update_policy, dsid, purposes, approval, price, 2 * DAY, 0
        )
        with boa.env.prank(self.people[caller]):
            if model[0] != caller:
                self._expect_revert("policy: caller is not the owner", call)
            elif model[5]:
                self._expect_revert("policy: dataset retired", call)
            elif purposes == 0:
                self._expect_revert("policy: no purpose allowed", call)
            elif purposes & ~31:
                self._expect_revert("policy: unknown purpose bit", call)
            else:
                call()
                model[1:5] = [purposes, approval, price, 2 * DAY]

    @rule(d=datasets_i, caller=owners_i)
    def retire(self, d: int, caller: int) -> None:
        dsid = self.ids[d]
        model = self.ds[dsid]
        call = functools.partial(self.market.retire_dataset, dsid)
        with boa.env.prank(self.people[caller]):
            if model[0] != caller:
                self._expect_revert("retire: caller is not the owner", call)
            elif model[5]:
                self._expect_revert("retire: dataset already retired", call)
            else:
                call()
                model[5] = True

    @rule(who=st.integers(2, 4), d=datasets_i, raw=purposes, pick=st.integers(0, 4))
    def request(self, who: int, d: int, raw: int, pick: int) -> None:
        dsid = self.ids[d]
        owner_i, allowed, approval, price, duration, retired = self.ds[dsid]
        # Mostly an allowed purpose (so requests succeed often), sometimes any value.
        bits = [b for b in (1, 2, 4, 8, 16) if allowed & b]
        purpose = raw if pick == 0 else bits[pick % len(bits)]
        requester = self.people[who]
        call = functools.partial(self.market.request_access, dsid, purpose)
        with boa.env.prank(requester):
            if retired:
                self._expect_revert("request: dataset retired", call)
            elif purpose == 0 or purpose & (purpose - 1):
                self._expect_revert("request: not a single purpose", call)
            elif not purpose & allowed:
                self._expect_revert("request: purpose not allowed", call)
            elif price and self.allowance[requester] < price:
                self._expect_revert("transferFrom: amount exceeds allowance", call)
            elif price and self.balances[requester] < price:
                self._expect_revert("transfer: amount exceeds balance", call)
            else:
                rid = call()
                assert rid == len(self.reqs) + 1
                if price:
                    self.allowance[requester] -= price
                owner = self.people[owner_i]
                entry = {
                    "requester": requester,
                    "dataset": dsid,
                    "owner": owner,
                    "purpose": purpose,
                    "amount": price,
                    "status": PENDING,
                    "expires_at": 0,
                    "payouts": 0,
                    "refunds": 0,
                }
                if approval:
                    self._move(requester, self.market.address, price)
                else:
                    self._move(requester, owner, price)
                    entry.update(status=GRANTED, expires_at=_now() + duration, payouts=1)
                self.reqs[rid] = entry

    def _caller(self, caller: int, rid: int, role: str) -> Any:
        # caller 5 (and up) means "the right one", so authorised calls come up often.
        req = self.reqs.get(rid)
        if caller >= 5 and req is not None:
            return req[role]
        return self.people[caller % 5]

    def _target(self, r: int) -> int:
        # Mostly existing ids, sometimes one past the end (unknown).
        return r % (len(self.reqs) + 1) + 1

    @rule(r=st.integers(0, 50), caller=callers, action=st.sampled_from(["grant", "deny"]))
    def decide(self, r: int, caller: int, action: str) -> None:
        rid = self._target(r)
        req = self.reqs.get(rid)
        who = self._caller(caller, rid, "owner")
        call = functools.partial(getattr(self.market, action), rid)
        with boa.env.prank(who):
            if req is None:
                self._expect_revert(f"{action}: unknown request", call)
            elif req["owner"] != who:
                self._expect_revert(f"{action}: caller is not the owner", call)
            elif req["status"] != PENDING:
                self._expect_revert(f"{action}: request not pending", call)
            else:
                call()
                if action == "grant":
                    self._move(self.market.address, req["owner"], req["amount"])
                    req.update(status=GRANTED, expires_at=_now() + self._duration(rid))
                    req["payouts"] += 1
                else:
                    self._move(self.market.address, req["requester"], req["amount"])
                    req["status"] = DENIED
                    req["refunds"] += 1

    def _duration(self, rid: int) -> int:
        duration: int = self.market.grant_info(rid).duration
        return duration

    @rule(r=st.integers(0, 50), caller=callers)
    def cancel(self, r: int, caller: int) -> None:
        rid = self._target(r)
        req = self.reqs.get(rid)
        who = self._caller(caller, rid, "requester")
        call = functools.partial(self.market.cancel_request, rid)
        with boa.env.prank(who):
            if req is None:
                self._expect_revert("cancel: unknown request", call)
            elif req["requester"] != who:
                self._expect_revert("cancel: caller is not the requester", call)
            elif req["status"] != PENDING:
                self._expect_revert("cancel: request not pending", call)
            else:
                call()
                self._move(self.market.address, req["requester"], req["amount"])
                req["status"] = CANCELLED
                req["refunds"] += 1

    @rule(r=st.integers(0, 50), caller=callers)
    def revoke(self, r: int, caller: int) -> None:
        rid = self._target(r)
        req = self.reqs.get(rid)
        who = self._caller(caller, rid, "owner")
        call = functools.partial(self.market.revoke, rid)
        with boa.env.prank(who):
            if req is None:
                self._expect_revert("revoke: unknown request", call)
            elif req["owner"] != who:
                self._expect_revert("revoke: caller is not the owner", call)
            elif req["status"] != GRANTED:
                self._expect_revert("revoke: request not granted", call)
            else:
                call()
                req["status"] = REVOKED

    @rule(seconds=st.sampled_from([1, 3600, DAY, 3 * DAY]))
    def wait(self, seconds: int) -> None:
        boa.env.time_travel(seconds=seconds)

    @invariant()
    def balances_match_and_are_conserved(self) -> None:
        actual = {h: self.token.balanceOf(h) for h in self.holders}
        assert actual == self.balances
        assert sum(actual.values()) == SUPPLY
        pending = sum(r["amount"] for r in self.reqs.values() if r["status"] == PENDING)
        assert self.market.escrowed() == pending == actual[self.market.address]

    @invariant()
    def requests_match_model(self) -> None:
        now = _now()
        assert self.market.request_count() == len(self.reqs)
        for rid, req in self.reqs.items():
            assert req["payouts"] + req["refunds"] <= 1
            g = self.market.grant_info(rid)
            assert g.status == req["status"]
            assert (g.requester, g.dataset_id, g.purpose, g.amount) == (
                req["requester"],
                req["dataset"],
                req["purpose"],
                req["amount"],
            )
            assert g.expires_at == req["expires_at"]
            previous = self.seen_status.get(rid, PENDING)
            # An instant grant is first seen as GRANTED, i.e. PENDING -> GRANTED in one call.
            assert previous == g.status or (previous, g.status) in LEGAL
            self.seen_status[rid] = g.status
            live = req["status"] == GRANTED and now < req["expires_at"]
            assert (
                self.market.check_access(rid, req["requester"], req["dataset"], req["purpose"])
                is live
            )


MarketMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
TestMarket = MarketMachine.TestCase
