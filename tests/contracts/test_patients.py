"""The Patients contract: links a patient accepts, consent per purpose, and the patients'
share of a dataset's sales, paid by the DataMarket and claimed by each patient.

Contracts are loaded from the very files ``ailedger.chain.compiler`` compiles. The
stateful test drives links, consent changes, cohorts, sales and claims at random against
a small Python model of the rules: tokens are conserved, nobody is paid twice, and a
patient who withdrew a purpose gets nothing of a later sale for it."""

from __future__ import annotations

from typing import Any

import boa
import pytest
from boa.contracts.vyper.vyper_contract import VyperDeployer
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from ailedger.chain.compiler import EVM_VERSION, source_path

UNIT = 10**18
PRICE = 10 * UNIT
DAY = 86_400
RARE, TRAINING, COMMERCIAL, MATCHING = 1, 2, 16, 32
DS = b"\x0d" * 32
SCALE = 10**18


def _deployer(name: str) -> VyperDeployer:
    return boa.load_partial(str(source_path(name)), compiler_args={"evm_version": EVM_VERSION})


def _link_id(n: int) -> bytes:
    return n.to_bytes(32, "big")


class World:
    """Token, DataMarket bound to Patients, a hospital with one dataset, a buyer."""

    def __init__(self, prefix: str, purposes: int = RARE | TRAINING | COMMERCIAL) -> None:
        self.token = _deployer("Token").deploy(10**9 * UNIT)
        self.market = _deployer("DataMarket").deploy(self.token.address)
        self.patients = _deployer("Patients").deploy(self.token.address, self.market.address)
        self.market.bind_patients(self.patients.address)
        self.hospital = boa.env.generate_address(f"{prefix}-hospital")
        self.buyer = boa.env.generate_address(f"{prefix}-buyer")
        self.token.transfer(self.buyer, 10**6 * UNIT)
        with boa.env.prank(self.buyer):
            self.token.approve(self.market.address, 10**6 * UNIT)
        with boa.env.prank(self.hospital):
            self.market.register_dataset(
                DS, b"\x01" * 32, b"\x02" * 32, purposes, False, PRICE, 30 * DAY, 0
            )

    def link(self, n: int, patient: Any) -> bytes:
        with boa.env.prank(self.hospital):
            self.patients.propose_link(_link_id(n), patient)
        with boa.env.prank(patient):
            self.patients.accept_link(_link_id(n))
        return _link_id(n)

    def buy(self, purpose: int) -> None:
        with boa.env.prank(self.buyer):
            self.market.request_access(DS, purpose)


@pytest.fixture
def world() -> World:
    return World("p")


def test_a_sale_pays_the_consenting_patients_pro_rata_and_the_owner_the_rest(
    world: World,
) -> None:
    alice, bob, carol = (boa.env.generate_address(n) for n in ("alice", "bob", "carol"))
    world.link(1, alice)
    world.link(2, bob)
    with boa.env.prank(world.hospital):
        world.patients.propose_link(_link_id(3), carol)  # carol never accepts
    for who in (alice, bob):
        with boa.env.prank(who):
            world.patients.set_consent(RARE | TRAINING)
    with boa.env.prank(world.hospital):
        world.patients.add_to_cohort(DS, [_link_id(1), _link_id(2), _link_id(3)], [1, 3, 5])
        world.patients.set_share(DS, 2_000)  # 20% to the patients

    world.buy(RARE)
    assert world.token.balanceOf(world.hospital) == PRICE * 8 // 10
    assert world.patients.claimable(alice) == PRICE * 2 // 10 * 1 // 4
    assert world.patients.claimable(bob) == PRICE * 2 // 10 * 3 // 4
    assert world.patients.claimable(carol) == 0  # not linked: her records earn nothing

    world.buy(TRAINING)
    assert world.patients.claimable(alice) == 2 * (PRICE // 20)
    with boa.env.prank(alice):
        paid = world.patients.claim()
    assert paid == 2 * (PRICE // 20) == world.token.balanceOf(alice)
    with boa.env.prank(alice), boa.reverts("claim: nothing owed"):
        world.patients.claim()  # nobody is paid twice


def test_records_whose_patient_never_accepted_neither_earn_nor_object(world: World) -> None:
    """Taken under the consent the hospital holds: the sale pays the owner in full."""
    alice = boa.env.generate_address("alice")
    with boa.env.prank(world.hospital):
        world.patients.propose_link(_link_id(1), alice)
        world.patients.add_to_cohort(DS, [_link_id(1)], [2])
        world.patients.set_share(DS, 5_000)
    world.buy(COMMERCIAL)
    assert world.token.balanceOf(world.hospital) == PRICE
    assert world.token.balanceOf(world.patients.address) == 0
    assert world.patients.objecting_weight(DS, COMMERCIAL) == 0


def test_a_withdrawal_stops_sales_and_reads_at_once_and_keeps_what_was_earned(
    world: World,
) -> None:
    alice, bob = boa.env.generate_address("alice"), boa.env.generate_address("bob")
    world.link(1, alice)
    world.link(2, bob)
    for who in (alice, bob):
        with boa.env.prank(who):
            world.patients.set_consent(RARE)
    with boa.env.prank(world.hospital):
        world.patients.add_to_cohort(DS, [_link_id(1), _link_id(2)], [1, 1])
        world.patients.set_share(DS, 1_000)
    with boa.env.prank(world.buyer):
        grant = world.market.request_access(DS, RARE)
    assert world.market.check_access(grant, world.buyer, DS, RARE) is True
    with boa.env.prank(alice):
        world.patients.set_consent(0)
    assert world.patients.consents_to(_link_id(1), RARE) is False
    assert world.patients.objecting_weight(DS, RARE) == 1
    # The grant already paid for reads no more, and no new one is sold.
    assert world.market.check_access(grant, world.buyer, DS, RARE) is False
    with boa.env.prank(world.buyer), boa.reverts("request: a patient withdrew consent"):
        world.market.request_access(DS, RARE)
    assert world.patients.claimable(alice) == PRICE // 10 // 2  # earned before: kept

    # The hospital publishes the records again without alice's: bob's alone earn.
    again = b"\x0f" * 32
    with boa.env.prank(world.hospital):
        world.market.register_dataset(again, b"\x01" * 32, b"\x02" * 32, RARE, False, PRICE, DAY, 0)
        world.patients.add_to_cohort(again, [_link_id(2)], [1])
        world.patients.set_share(again, 1_000)
    with boa.env.prank(world.buyer):
        world.market.request_access(again, RARE)
    assert world.patients.claimable(alice) == PRICE // 10 // 2
    assert world.patients.claimable(bob) == PRICE // 10 // 2 + PRICE // 10


def test_only_the_named_patient_accepts_and_only_the_hospital_names_its_cohort(
    world: World,
) -> None:
    alice, mallory = boa.env.generate_address("alice"), boa.env.generate_address("mallory")
    with boa.env.prank(world.hospital):
        world.patients.propose_link(_link_id(1), alice)
        with boa.reverts("link: id in use"):
            world.patients.propose_link(_link_id(1), mallory)
    with boa.env.prank(mallory), boa.reverts("link: caller is not the patient named"):
        world.patients.accept_link(_link_id(1))
    # Another hospital cannot add this hospital's link to its own dataset, nor set shares.
    with boa.env.prank(mallory):
        world.market.register_dataset(
            b"\x0e" * 32, b"\x01" * 32, b"\x02" * 32, RARE, False, PRICE, DAY, 0
        )
        with boa.reverts("cohort: not this hospital's link"):
            world.patients.add_to_cohort(b"\x0e" * 32, [_link_id(1)], [1])
        with boa.reverts("share: caller is not the owner"):
            world.patients.set_share(DS, 10_000)
    with boa.env.prank(world.hospital), boa.reverts("share: above 100%"):
        world.patients.set_share(DS, 10_001)
    with boa.reverts("credit: caller is not the data market"):
        world.patients.credit(DS, RARE, UNIT)


def test_an_ended_link_consents_to_nothing_and_holds_its_datasets_until_republished(
    world: World,
) -> None:
    alice, bob = boa.env.generate_address("alice"), boa.env.generate_address("bob")
    world.link(1, alice)
    with boa.env.prank(alice):
        world.patients.set_consent(RARE | MATCHING)
    assert world.patients.consents_to(_link_id(1), MATCHING) is True
    with boa.env.prank(world.hospital):
        world.patients.add_to_cohort(DS, [_link_id(1)], [1])
        world.patients.set_share(DS, 1_000)
        world.patients.propose_link(_link_id(2), bob)
        world.patients.end_link(_link_id(2))  # never accepted: ending it blocks nothing
    world.buy(RARE)
    with boa.env.prank(alice):
        world.patients.end_link(_link_id(1))  # either party may end it
    assert world.patients.consents_to(_link_id(1), MATCHING) is False
    assert world.patients.objecting_weight(DS, RARE) == 1
    with boa.env.prank(world.buyer), boa.reverts("request: a patient withdrew consent"):
        world.market.request_access(DS, RARE)
    assert world.patients.claimable(alice) == PRICE // 10


def test_the_market_is_bound_to_patients_once_by_its_deployer() -> None:
    token = _deployer("Token").deploy(UNIT)
    market = _deployer("DataMarket").deploy(token.address)
    patients = _deployer("Patients").deploy(token.address, market.address)
    with (
        boa.env.prank(boa.env.generate_address("x")),
        boa.reverts("bind: caller is not the deployer"),
    ):
        market.bind_patients(patients.address)
    market.bind_patients(patients.address)
    with boa.reverts("bind: already bound"):
        market.bind_patients(patients.address)


class PatientsMachine(RuleBasedStateMachine):
    """Links, consent changes, cohort additions, sales and claims at random, against a
    model that pays each sale's share to the weights consenting at that moment."""

    PEOPLE = 4

    @initialize(
        # Mostly wide consent, so that sales go through as often as withdrawals stop them.
        consent=st.lists(st.sampled_from([63, 63, 19, 3, 1]), min_size=PEOPLE, max_size=PEOPLE),
        weights=st.lists(st.integers(1, 1000), min_size=PEOPLE, max_size=PEOPLE),
        bps=st.sampled_from([1, 2_500, 10_000]),
    )
    def deploy(self, consent: list[int], weights: list[int], bps: int) -> None:
        """Every patient linked, with some consent, in the cohort, and a share set: the
        rules then change one thing at a time, so sales meet every kind of change."""
        self.w = World("m")
        self.people = [boa.env.generate_address(f"m-patient{i}") for i in range(self.PEOPLE)]
        self.status: dict[int, int] = {}  # link n -> 1 proposed, 2 active, 3 ended
        self.owner_of: dict[int, int] = {}  # link n -> person index
        self.weights: dict[int, int] = {}  # link n -> weight in DS
        self.consent = [0] * self.PEOPLE
        self.earned = [0] * self.PEOPLE  # the model: each sale's share, split by weight
        self.paid = [0] * self.PEOPLE
        self.sales_share = 0  # everything the market sent to Patients
        self.bps = 0
        self.ended_active: set[int] = set()  # links ended after their patient accepted
        for person in range(self.PEOPLE):
            self.link(person, True)
            self.set_consent(person, consent[person])
        with boa.env.prank(self.w.hospital):
            self.w.patients.add_to_cohort(DS, [_link_id(n) for n in self.status], weights)
        self.weights = dict(zip(self.status, weights, strict=True))
        self.set_share(bps)

    @rule(person=st.integers(0, PEOPLE - 1), accept=st.booleans())
    def link(self, person: int, accept: bool) -> None:
        n = len(self.status) + 1
        with boa.env.prank(self.w.hospital):
            self.w.patients.propose_link(_link_id(n), self.people[person])
        self.status[n], self.owner_of[n] = 1, person
        active = sum(1 for k, s in self.status.items() if s == 2 and self.owner_of[k] == person)
        if accept and active < 4:
            with boa.env.prank(self.people[person]):
                self.w.patients.accept_link(_link_id(n))
            self.status[n] = 2

    @rule(data=st.data())
    def end(self, data: st.DataObject) -> None:
        open_links = [n for n, s in self.status.items() if s in (1, 2)]
        if not open_links:
            return
        n = data.draw(st.sampled_from(open_links))
        by = self.w.hospital if data.draw(st.booleans()) else self.people[self.owner_of[n]]
        with boa.env.prank(by):
            self.w.patients.end_link(_link_id(n))
        if self.status[n] == 2:
            self.ended_active.add(n)
        self.status[n] = 3

    @rule(
        person=st.integers(0, PEOPLE - 1),
        purposes=st.one_of(st.just(63), st.integers(0, 63)),
    )
    def set_consent(self, person: int, purposes: int) -> None:
        with boa.env.prank(self.people[person]):
            self.w.patients.set_consent(purposes)
        self.consent[person] = purposes

    @rule(weight=st.integers(1, 1000), data=st.data())
    def add(self, weight: int, data: st.DataObject) -> None:
        fresh = [n for n, s in self.status.items() if s in (1, 2) and n not in self.weights]
        if not fresh:
            return
        n = data.draw(st.sampled_from(fresh))
        with boa.env.prank(self.w.hospital):
            self.w.patients.add_to_cohort(DS, [_link_id(n)], [weight])
        self.weights[n] = weight

    @rule(bps=st.sampled_from([0, 1, 2_500, 10_000]))
    def set_share(self, bps: int) -> None:
        with boa.env.prank(self.w.hospital):
            self.w.patients.set_share(DS, bps)
        self.bps = bps

    @rule(purpose=st.sampled_from([RARE, TRAINING, COMMERCIAL]))
    def sell(self, purpose: int) -> None:
        consenting = {
            n: w
            for n, w in self.weights.items()
            if self.status[n] == 2 and self.consent[self.owner_of[n]] & purpose
        }
        objecting = sum(
            w
            for n, w in self.weights.items()
            if (self.status[n] == 2 and n not in consenting) or n in self.ended_active
        )
        assert self.w.patients.objecting_weight(DS, purpose) == objecting
        if objecting:  # a withdrawal stops the sale: the owner publishes again without it
            with boa.env.prank(self.w.buyer), boa.reverts("request: a patient withdrew consent"):
                self.w.market.request_access(DS, purpose)
            return
        before = self.w.token.balanceOf(self.w.hospital)
        self.w.buy(purpose)
        share = PRICE * self.bps // 10_000 if consenting else 0
        assert self.w.token.balanceOf(self.w.hospital) - before == PRICE - share
        total = sum(consenting.values())
        for n, w in consenting.items():
            self.earned[self.owner_of[n]] += share * SCALE // total * w // SCALE
        self.sales_share += share

    @rule(person=st.integers(0, PEOPLE - 1))
    def claim(self, person: int) -> None:
        due = self.w.patients.claimable(self.people[person])
        with boa.env.prank(self.people[person]):
            if due == 0:
                with boa.reverts("claim: nothing owed"):
                    self.w.patients.claim()
                return
            assert self.w.patients.claim() == due
        self.paid[person] += due

    @invariant()
    def nobody_is_paid_more_than_their_share(self) -> None:
        if not hasattr(self, "w"):
            return
        for i, person in enumerate(self.people):
            owed = self.w.patients.claimable(person)
            # per-link rounding differs from the model's by at most one unit a sale
            assert self.paid[i] + owed <= self.earned[i] + 64
            assert self.earned[i] - (self.paid[i] + owed) <= 64
            assert self.w.token.balanceOf(person) == self.paid[i]

    @invariant()
    def tokens_are_conserved(self) -> None:
        if not hasattr(self, "w"):
            return
        held = self.w.token.balanceOf(self.w.patients.address)
        assert held + sum(self.paid) == self.sales_share
        assert held >= sum(self.w.patients.claimable(p) for p in self.people)
        assert self.w.patients.claimed() == sum(self.paid)


PatientsMachine.TestCase.settings = settings(max_examples=12, stateful_step_count=20, deadline=None)
TestPatients = PatientsMachine.TestCase
