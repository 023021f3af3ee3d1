"""PrivacyLedger.vy: one differential-privacy budget per dataset of DataMarket: owner-only
caps and charges, the permanent private flag, delta fixed after the first charge, the
compare-and-swap charge index, monotone spend under the cap, the events and the running
digest, and a stateful test against a small model of the rules.

Contracts are loaded from the very files ``ailedger.chain.compiler`` compiles, with the
same EVM version, so what is tested here is what gets deployed.
"""

from __future__ import annotations

import functools
from typing import Any

import boa
import pytest
from boa.contracts.vyper.vyper_contract import VyperContract, VyperDeployer
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from ailedger.chain.compiler import EVM_VERSION, source_path
from ailedger.chain.contracts.privacy_ledger import ChargeKind, ChargeRecord, charges_digest

UNIT = 10**18
DAY = 86400
MICRO = 10**6
ZERO_ADDR = "0x" + "00" * 20
ZERO32 = b"\x00" * 32

DS = b"\x11" * 32
OTHER_DS = b"\x12" * 32
UNKNOWN_DS = b"\x99" * 32
REF = b"\x7e" * 32
CHARGES = b'{"laplace": [1.0, 0.5]}'
DELTA = 10**13  # 1e-5


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
def buyer() -> Any:
    return boa.env.generate_address("buyer")


@pytest.fixture
def ledger(market: VyperContract, owner: Any) -> VyperContract:
    """A PrivacyLedger over `market`, in which `owner` registered DS and OTHER_DS."""
    _register(market, owner, DS)
    _register(market, owner, OTHER_DS)
    return _deployer("PrivacyLedger").deploy(market.address)


@pytest.fixture
def capped(ledger: VyperContract, owner: Any) -> VyperContract:
    """The ledger with a cap of epsilon 1, delta 1e-5 on DS."""
    _set_cap(ledger, owner, DS, 1 * MICRO, DELTA)
    return ledger


def _register(market: VyperContract, owner: Any, dataset_id: bytes) -> None:
    with boa.env.prank(owner):
        market.register_dataset(dataset_id, b"\x22" * 32, b"\x33" * 32, 1, False, 0, 30 * DAY, 0)


def _set_cap(
    ledger: VyperContract, who: Any, dataset_id: bytes, epsilon_micro: int, delta: int
) -> list[Any]:
    with boa.env.prank(who):
        ledger.set_cap(dataset_id, epsilon_micro, delta)
    logs: list[Any] = ledger.get_logs()
    return logs


def _charge(
    ledger: VyperContract,
    who: Any,
    buyer: Any,
    spent: int,
    index: int,
    *,
    dataset_id: bytes = DS,
    kind: int = 1,
    charges: bytes = CHARGES,
    ref: bytes = REF,
) -> list[Any]:
    with boa.env.prank(who):
        ledger.charge(dataset_id, buyer, ref, kind, charges, spent, index)
    logs: list[Any] = ledger.get_logs()
    return logs


def _record(log: Any, block: int = 0) -> ChargeRecord:
    return ChargeRecord(
        dataset_id=log.dataset_id,
        buyer=str(log.buyer),
        ref=log.ref,
        kind=ChargeKind(log.kind),
        charges=log.charges,
        spent_after=log.spent_after_micro / MICRO,
        index=log.index,
        block=block,
        tx_hash="",
    )


# ---------------------------------------------------------------- construction and caps


def test_constructor_and_constants(ledger: VyperContract, market: VyperContract) -> None:
    assert ledger.DATA_MARKET() == market.address
    assert ledger.MAX_EPSILON_MICRO() == 100 * MICRO
    assert ledger.MAX_DELTA_E18() == 10**17
    assert ledger.MAX_CHARGE_BYTES() == 2048


def test_constructor_rejects_non_contract_market() -> None:
    with boa.reverts("init: data market is not a contract"):
        _deployer("PrivacyLedger").deploy(boa.env.generate_address("eoa"))


def test_a_fresh_dataset_has_no_budget(ledger: VyperContract) -> None:
    assert ledger.budget(DS) == (0, 0, 0, 0, False)
    assert not ledger.is_private(DS)
    assert ledger.charges_digest(DS) == ZERO32


def test_set_cap_stores_logs_and_makes_private(ledger: VyperContract, owner: Any) -> None:
    [log] = _set_cap(ledger, owner, DS, 2 * MICRO, DELTA)
    assert type(log).__name__ == "CapSet"
    assert (log.dataset_id, log.epsilon_micro, log.delta_e18, log.previous_epsilon_micro) == (
        DS,
        2 * MICRO,
        DELTA,
        0,
    )
    assert ledger.budget(DS) == (2 * MICRO, DELTA, 0, 0, True)
    assert ledger.is_private(DS)
    assert not ledger.is_private(OTHER_DS)  # per dataset


def test_cap_may_move_and_private_stays(capped: VyperContract, owner: Any) -> None:
    [log] = _set_cap(capped, owner, DS, 3 * MICRO, 2 * DELTA)  # delta free before a charge
    assert log.previous_epsilon_micro == MICRO
    [log] = _set_cap(capped, owner, DS, 1, 2 * DELTA)
    assert log.previous_epsilon_micro == 3 * MICRO
    assert capped.budget(DS) == (1, 2 * DELTA, 0, 0, True)
    assert capped.is_private(DS)


@pytest.mark.parametrize(
    ("epsilon", "delta", "reason"),
    [
        (0, DELTA, "privacy: epsilon cap is zero"),
        (100 * MICRO + 1, DELTA, "privacy: epsilon cap too large"),
        (MICRO, 0, "privacy: delta is zero"),
        (MICRO, 10**17 + 1, "privacy: delta too large"),
    ],
)
def test_cap_bounds(
    ledger: VyperContract, owner: Any, epsilon: int, delta: int, reason: str
) -> None:
    with boa.reverts(reason):
        _set_cap(ledger, owner, DS, epsilon, delta)
    assert not ledger.is_private(DS)


def test_cap_bounds_inclusive(ledger: VyperContract, owner: Any) -> None:
    _set_cap(ledger, owner, DS, 100 * MICRO, 10**17)
    _set_cap(ledger, owner, OTHER_DS, 1, 1)
    assert ledger.budget(DS)[:2] == (100 * MICRO, 10**17)
    assert ledger.budget(OTHER_DS)[:2] == (1, 1)


def test_set_cap_owner_only(
    ledger: VyperContract, market: VyperContract, owner: Any, stranger: Any
) -> None:
    with boa.reverts("privacy: caller is not the dataset owner"):
        _set_cap(ledger, stranger, DS, MICRO, DELTA)
    with boa.reverts("privacy: unknown dataset"):
        _set_cap(ledger, owner, UNKNOWN_DS, MICRO, DELTA)
    with boa.env.prank(owner):
        market.retire_dataset(DS)
    with boa.reverts("privacy: dataset retired"):
        _set_cap(ledger, owner, DS, MICRO, DELTA)
    assert not ledger.is_private(DS)


def test_delta_is_fixed_after_the_first_charge(
    capped: VyperContract, owner: Any, buyer: Any
) -> None:
    _charge(capped, owner, buyer, 100_000, 0)
    with boa.reverts("privacy: delta is fixed after the first charge"):
        _set_cap(capped, owner, DS, MICRO, DELTA + 1)
    # The epsilon cap may still move, with the same delta.
    _set_cap(capped, owner, DS, 2 * MICRO, DELTA)
    assert capped.budget(DS) == (2 * MICRO, DELTA, 100_000, 1, True)


def test_lowering_the_cap_under_the_spend_closes_the_budget(
    capped: VyperContract, owner: Any, buyer: Any
) -> None:
    _charge(capped, owner, buyer, 500_000, 0)
    _set_cap(capped, owner, DS, 400_000, DELTA)
    assert capped.is_private(DS)
    with boa.reverts("privacy: spend would exceed the cap"):
        _charge(capped, owner, buyer, 500_000, 1)


# ---------------------------------------------------------------- charges


def test_charge_stores_counts_and_logs_everything(
    capped: VyperContract, owner: Any, buyer: Any
) -> None:
    [log] = _charge(capped, owner, buyer, 250_000, 0, kind=2)
    assert type(log).__name__ == "Charged"
    assert (log.dataset_id, log.buyer, log.ref, log.kind) == (DS, buyer, REF, 2)
    assert (log.charges, log.spent_after_micro, log.index) == (CHARGES, 250_000, 0)
    assert capped.budget(DS) == (MICRO, DELTA, 250_000, 1, True)
    assert capped.buyer_charge_count(DS, buyer) == 1
    assert capped.charges_digest(DS) == charges_digest([_record(log)])


def test_charge_owner_only(
    capped: VyperContract, market: VyperContract, owner: Any, stranger: Any, buyer: Any
) -> None:
    # Not even the buyer may charge (or refuse to charge) its own release.
    for who in (stranger, buyer):
        with boa.reverts("privacy: caller is not the dataset owner"):
            _charge(capped, who, buyer, 1, 0)
    with boa.reverts("privacy: unknown dataset"):
        _charge(capped, owner, buyer, 1, 0, dataset_id=UNKNOWN_DS)
    with boa.env.prank(owner):
        market.retire_dataset(DS)
    with boa.reverts("privacy: dataset retired"):
        _charge(capped, owner, buyer, 1, 0)
    assert capped.budget(DS) == (MICRO, DELTA, 0, 0, True)


def test_charge_needs_a_cap(ledger: VyperContract, owner: Any, buyer: Any) -> None:
    with boa.reverts("privacy: no cap set"):
        _charge(ledger, owner, buyer, 0, 0)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"kind": 0}, "privacy: unknown charge kind"),
        ({"kind": 4}, "privacy: unknown charge kind"),
        ({"charges": b""}, "privacy: charges are empty"),
    ],
)
def test_charge_input_refusals(
    capped: VyperContract, owner: Any, buyer: Any, kwargs: dict[str, Any], reason: str
) -> None:
    with boa.reverts(reason):
        _charge(capped, owner, buyer, 1, 0, **kwargs)
    assert capped.budget(DS)[2:4] == (0, 0)


def test_charge_refuses_a_zero_buyer(capped: VyperContract, owner: Any) -> None:
    with boa.reverts("privacy: buyer is zero"):
        _charge(capped, owner, ZERO_ADDR, 1, 0)


def test_a_stale_index_reverts(capped: VyperContract, owner: Any, buyer: Any) -> None:
    """Two releases computed over the same old total: the second loses the race."""
    _charge(capped, owner, buyer, 300_000, 0)
    with boa.reverts("privacy: stale charge index"):
        _charge(capped, owner, buyer, 300_000, 0)
    with boa.reverts("privacy: stale charge index"):
        _charge(capped, owner, buyer, 600_000, 2)  # nor may one skip ahead
    _charge(capped, owner, buyer, 600_000, 1)
    assert capped.budget(DS)[2:4] == (600_000, 2)


def test_spend_never_decreases(capped: VyperContract, owner: Any, buyer: Any) -> None:
    _charge(capped, owner, buyer, 300_000, 0)
    with boa.reverts("privacy: spend would decrease"):
        _charge(capped, owner, buyer, 299_999, 1)
    _charge(capped, owner, buyer, 300_000, 1)  # a release that costs nothing more is logged
    assert capped.budget(DS)[2:4] == (300_000, 2)


def test_spend_over_the_cap_reverts(capped: VyperContract, owner: Any, buyer: Any) -> None:
    with boa.reverts("privacy: spend would exceed the cap"):
        _charge(capped, owner, buyer, MICRO + 1, 0)
    _charge(capped, owner, buyer, MICRO, 0)  # the cap itself may be spent
    with boa.reverts("privacy: spend would exceed the cap"):
        _charge(capped, owner, buyer, MICRO + 1, 1)
    assert capped.budget(DS)[2:4] == (MICRO, 1)


def test_events_rebuild_the_list_and_the_digest(
    capped: VyperContract, owner: Any, buyer: Any, stranger: Any
) -> None:
    _set_cap(capped, owner, OTHER_DS, MICRO, DELTA)
    steps = [
        (buyer, 100_000, 1, b"a"),
        (stranger, 150_000, 2, b"b" * 2048),
        (buyer, 150_000, 3, b"c"),
    ]
    logs: list[Any] = []
    for i, (who, spent, kind, charges) in enumerate(steps):
        logs += _charge(capped, owner, who, spent, i, kind=kind, charges=charges)
    other = _charge(capped, owner, buyer, 100_000, 0, dataset_id=OTHER_DS, charges=b"a")
    records = [_record(log) for log in logs]
    assert [(r.buyer, r.spent_after_micro, r.kind, r.charges) for r in records] == [
        (str(who), spent, kind, charges) for who, spent, kind, charges in steps
    ]
    assert capped.charges_digest(DS) == charges_digest(records)
    # The digest binds each step: drop, reorder or alter one and it no longer matches.
    assert capped.charges_digest(DS) != charges_digest(records[:2])
    assert capped.charges_digest(DS) != charges_digest([records[1], records[0], records[2]])
    # Same buyer, spend and bytes on another dataset: another digest.
    assert capped.charges_digest(OTHER_DS) == charges_digest([_record(other[0])])
    assert capped.charges_digest(OTHER_DS) != charges_digest(records[:1])
    assert capped.buyer_charge_count(DS, buyer) == 2
    assert capped.buyer_charge_count(DS, stranger) == 1


# ---------------------------------------------------------------- stateful


class LedgerMachine(RuleBasedStateMachine):
    """Random caps and charges, some by a stranger, some stale, against a model."""

    @initialize()
    def deploy(self) -> None:
        token = _deployer("Token").deploy(1_000 * UNIT)
        market = _deployer("DataMarket").deploy(token.address)
        self.owner = boa.env.generate_address("pl-owner")
        self.stranger = boa.env.generate_address("pl-stranger")
        self.buyers = [boa.env.generate_address(f"pl-buyer{i}") for i in range(2)]
        _register(market, self.owner, DS)
        self.ledger = _deployer("PrivacyLedger").deploy(market.address)
        self.cap = self.delta = self.spent = self.count = 0
        self.private = False
        self.records: list[ChargeRecord] = []

    @rule(
        epsilon=st.sampled_from([1, 500_000, MICRO, 100 * MICRO]),
        delta=st.sampled_from([DELTA, DELTA, 1, 10**17]),
    )
    def set_valid_cap(self, epsilon: int, delta: int) -> None:
        """Mostly the owner moving the cap within bounds, so charges get to run."""
        self.set_cap(False, epsilon, delta)

    @rule(
        stranger=st.booleans(),
        epsilon=st.sampled_from([0, 1, MICRO, 100 * MICRO + 1]),
        delta=st.sampled_from([0, DELTA, 10**17 + 1]),
    )
    def set_cap(self, stranger: bool, epsilon: int, delta: int) -> None:
        who = self.stranger if stranger else self.owner
        if epsilon == 0:
            reason: str | None = "privacy: epsilon cap is zero"
        elif epsilon > 100 * MICRO:
            reason = "privacy: epsilon cap too large"
        elif delta == 0:
            reason = "privacy: delta is zero"
        elif delta > 10**17:
            reason = "privacy: delta too large"
        elif stranger:
            reason = "privacy: caller is not the dataset owner"
        elif self.count and delta != self.delta:
            reason = "privacy: delta is fixed after the first charge"
        else:
            reason = None
        if reason is not None:
            with boa.reverts(reason):
                _set_cap(self.ledger, who, DS, epsilon, delta)
            return
        [log] = _set_cap(self.ledger, who, DS, epsilon, delta)
        assert log.previous_epsilon_micro == self.cap
        self.cap, self.delta, self.private = epsilon, delta, True

    @rule(
        stranger=st.sampled_from([False, False, False, True]),
        buyer=st.integers(0, 1),
        kind=st.integers(1, 3),
        step=st.integers(-2, 400_000),
        index_offset=st.sampled_from([0, 0, 0, -1, 1]),
        charges=st.binary(min_size=1, max_size=40),
    )
    def charge(
        self,
        stranger: bool,
        buyer: int,
        kind: int,
        step: int,
        index_offset: int,
        charges: bytes,
    ) -> None:
        who = self.stranger if stranger else self.owner
        spent, index = max(0, self.spent + step), max(0, self.count + index_offset)
        if stranger:
            reason: str | None = "privacy: caller is not the dataset owner"
        elif not self.private:
            reason = "privacy: no cap set"
        elif index != self.count:
            reason = "privacy: stale charge index"
        elif spent < self.spent:
            reason = "privacy: spend would decrease"
        elif spent > self.cap:
            reason = "privacy: spend would exceed the cap"
        else:
            reason = None
        args = (who, self.buyers[buyer], spent, index)
        if reason is not None:
            with boa.reverts(reason):
                _charge(self.ledger, *args, kind=kind, charges=charges)
            return
        [log] = _charge(self.ledger, *args, kind=kind, charges=charges)
        self.records.append(_record(log))
        self.spent, self.count = spent, self.count + 1

    @invariant()
    def matches_model(self) -> None:
        assert self.ledger.budget(DS) == (
            self.cap,
            self.delta,
            self.spent,
            self.count,
            self.private,
        )
        assert self.ledger.is_private(DS) == self.private
        assert self.ledger.charges_digest(DS) == charges_digest(self.records)
        for b in self.buyers:
            mine = sum(1 for r in self.records if r.buyer == str(b))
            assert self.ledger.buyer_charge_count(DS, b) == mine


LedgerMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=20, deadline=None)
TestLedger = LedgerMachine.TestCase
