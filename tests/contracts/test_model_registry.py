"""ModelRegistry.vy: versions of a model with on-chain lineage checks (forged, unfinished,
wrongly purposed and reused jobs refused), passport uniqueness, owner-only versions and
retirement, events that carry everything, gas, and a stateful model check.

The jobs are real ComputeMarket jobs, run to COMPLETED (k = 1, accepted) over a real
DataMarket, loaded from the files ``ailedger.chain.compiler`` compiles.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import boa
import pytest
from boa.contracts.vyper.vyper_contract import VyperContract, VyperDeployer
from eth_utils.crypto import keccak
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from ailedger.chain.compiler import EVM_VERSION, source_path

UNIT = 10**18
MAX_UINT = 2**256 - 1
MIN_STAKE = 100 * UNIT
PRICE = 2 * UNIT
DAY = 86400
BUNDLE = b"\xbb" * 32
OUT = b"\x0a" * 32
SALT = b"\x5a" * 32
RARE, TRAINING = 1, 2
DS1, DS2 = b"\xd1" * 32, b"\xd2" * 32
M1, M2 = b"\x01" * 32, b"\x02" * 32
CARD, EVAL, METRICS = b"\xca" * 32, b"\xe7" * 32, b"\x3e" * 32
COMPLETED = 4


@functools.cache
def _deployer(name: str) -> VyperDeployer:
    return boa.load_partial(str(source_path(name)), compiler_args={"evm_version": EVM_VERSION})


def _passport(n: int) -> bytes:
    return n.to_bytes(32, "big")


@dataclass
class World:
    """A ComputeMarket over a DataMarket, a staked provider allowed to host DS1 and DS2,
    two funded requesters, and alice's grants on both datasets."""

    market: VyperContract
    data: VyperContract
    registry: VyperContract
    provider: Any
    alice: Any
    bob: Any
    grants: dict[tuple[bytes, int], int]

    def job(
        self, who: Any, datasets: tuple[bytes, ...] = (), purpose: int = 0, finish: bool = True
    ) -> int:
        """A job by ``who`` over ``datasets`` (alice's grants for ``purpose``), run to
        COMPLETED unless ``finish`` is False (then it stays OPEN)."""
        grants = [self.grants[(ds, purpose)] for ds in datasets]
        deadline = int(boa.env.evm.patch.timestamp) + DAY
        with boa.env.prank(who):
            job_id: int = self.market.post_job(
                BUNDLE, 1, 1024, 0, 3 * UNIT, 2, deadline, 1, 0, True, list(datasets), grants,
                purpose,
            )  # fmt: skip
        if not finish:
            return job_id
        with boa.env.prank(self.provider):
            self.market.bid(job_id, PRICE)
        with boa.env.prank(who):
            self.market.close_auction(job_id)
        boa.env.time_travel(seconds=60)
        with boa.env.prank(self.provider):
            self.market.commit_result(job_id, keccak(OUT + SALT))
            self.market.reveal_result(job_id, OUT, SALT, 60)
        with boa.env.prank(who):
            self.market.accept(job_id)
        assert self.market.job_info(job_id).status == COMPLETED
        return job_id


def _world() -> World:
    token = _deployer("Token").deploy(10_000_000 * UNIT)
    data = _deployer("DataMarket").deploy(token.address)
    policy = _deployer("ComputePolicy").deploy(data.address)
    providers = _deployer("ComputeProviders").deploy(token.address, MIN_STAKE, 5000)
    market = _deployer("ComputeMarket").deploy(
        token.address, data.address, policy.address, providers.address, 600, 3600, DAY
    )
    providers.bind_market(market.address)
    registry = _deployer("ModelRegistry").deploy(data.address, market.address)
    accounts = {n: boa.env.generate_address(n) for n in ("provider", "alice", "bob", "owner")}
    for who in ("provider", "alice", "bob"):
        token.transfer(accounts[who], 10_000 * UNIT)
        with boa.env.prank(accounts[who]):
            token.approve(market.address, MAX_UINT)
            token.approve(providers.address, MAX_UINT)
    with boa.env.prank(accounts["provider"]):
        providers.register_provider(MIN_STAKE)
        providers.post_offer(16, 65536, "H100", 81920, PRICE, True)
    grants = {}
    for ds in (DS1, DS2):
        with boa.env.prank(accounts["owner"]):
            data.register_dataset(ds, b"\x22" * 32, b"\x33" * 32, RARE | TRAINING, False, 0, DAY, 3)
            policy.allow_algorithm(ds, BUNDLE, True)
            policy.allow_provider(ds, accounts["provider"], True)
        for purpose in (RARE, TRAINING):
            with boa.env.prank(accounts["alice"]):
                grants[(ds, purpose)] = data.request_access(ds, purpose)
    return World(
        market, data, registry, accounts["provider"], accounts["alice"], accounts["bob"], grants
    )


@pytest.fixture
def world() -> World:
    return _world()


def _register(
    registry: VyperContract,
    who: Any,
    model_id: bytes,
    passport: bytes,
    jobs: list[int],
    price: int = 0,
    period: int = 0,
) -> int:
    with boa.env.prank(who):
        version: int = registry.register_version(
            model_id, passport, CARD, EVAL, METRICS, jobs, price, period
        )
    return version


# ---------------------------------------------------------------- construction


def test_constructor_binds_both_markets_and_reads_the_training_bit(world: World) -> None:
    r = world.registry
    assert (r.DATA_MARKET(), r.COMPUTE_MARKET()) == (world.data.address, world.market.address)
    assert r.MODEL_TRAINING() == world.data.PURPOSE_MODEL_TRAINING() == TRAINING
    assert (r.MAX_JOBS(), r.MAX_LINEAGE_DATASETS()) == (8, 32)


def test_constructor_refusals(world: World) -> None:
    eoa = boa.env.generate_address("eoa")
    with boa.reverts("init: data market is not a contract"):
        _deployer("ModelRegistry").deploy(eoa, world.market.address)
    with boa.reverts("init: compute market is not a contract"):
        _deployer("ModelRegistry").deploy(world.data.address, eoa)
    other = _deployer("DataMarket").deploy(world.market.TOKEN())
    with boa.reverts("init: compute market uses another data market"):
        _deployer("ModelRegistry").deploy(other.address, world.market.address)


# ---------------------------------------------------------------- lineage


def test_a_version_with_lineage_is_recorded_and_its_event_carries_everything(
    world: World,
) -> None:
    r = world.registry
    j1 = world.job(world.alice, (DS1, DS2), TRAINING)
    j2 = world.job(world.alice, (DS2,), TRAINING)
    j3 = world.job(world.alice)  # no data: nothing to check but the job itself
    assert _register(r, world.alice, M1, _passport(1), [j1, j2, j3], 5 * UNIT, 30 * DAY) == 1
    [log] = r.get_logs()
    assert type(log).__name__ == "VersionRegistered"
    assert (log.model_id, log.version, log.owner) == (M1, 1, world.alice)
    assert (log.passport_hash, log.card_hash, log.eval_hash, log.metrics_hash) == (
        _passport(1),
        CARD,
        EVAL,
        METRICS,
    )
    assert (log.jobs, log.datasets) == ([j1, j2, j3], [DS1, DS2])  # the union, in order
    assert (log.price, log.period) == (5 * UNIT, 30 * DAY)
    assert r.model(M1) == (world.alice, 1)
    record = r.version(M1, 1)
    assert (record.passport_hash, record.price, record.period, record.retired) == (
        _passport(1),
        5 * UNIT,
        30 * DAY,
        False,
    )
    assert record.registered_at == boa.env.evm.patch.timestamp
    assert r.version_jobs(M1, 1) == [j1, j2, j3]
    assert [r.job_model(j) for j in (j1, j2, j3)] == [M1, M1, M1]
    assert r.passport_version(_passport(1)) == (M1, 1)
    assert r.passport_used(_passport(1)) and not r.passport_used(_passport(2))


def test_a_version_without_jobs_has_an_empty_lineage(world: World) -> None:
    r = world.registry
    assert _register(r, world.bob, M2, _passport(7), []) == 1
    [log] = r.get_logs()
    assert (log.jobs, log.datasets, log.owner) == ([], [], world.bob)
    assert r.version_jobs(M2, 1) == []


def test_a_forged_job_of_someone_else_is_refused(world: World) -> None:
    alices = world.job(world.alice)
    with boa.reverts("models: job of another requester"):
        _register(world.registry, world.bob, M2, _passport(1), [alices])
    with boa.reverts("models: unknown job"):
        _register(world.registry, world.bob, M2, _passport(1), [alices + 1])
    assert world.registry.job_model(alices) == b"\x00" * 32
    assert world.registry.model(M2) == ("0x" + "00" * 20, 0)


def test_a_job_not_completed_is_refused(world: World) -> None:
    open_job = world.job(world.alice, finish=False)
    with boa.reverts("models: job not completed"):
        _register(world.registry, world.alice, M1, _passport(1), [open_job])
    with boa.env.prank(world.alice):
        world.market.cancel_job(open_job)
    with boa.reverts("models: job not completed"):
        _register(world.registry, world.alice, M1, _passport(1), [open_job])


def test_a_job_over_data_granted_for_another_purpose_is_refused(world: World) -> None:
    rare = world.job(world.alice, (DS1,), RARE)
    ok = world.job(world.alice, (DS1,), TRAINING)
    with boa.reverts("models: job data not for model training"):
        _register(world.registry, world.alice, M1, _passport(1), [ok, rare])


def test_a_job_backs_one_model_only_but_its_later_versions_may_cite_it_again(
    world: World,
) -> None:
    r = world.registry
    job = world.job(world.alice, (DS1,), TRAINING)
    _register(r, world.alice, M1, _passport(1), [job])
    with boa.reverts("models: job backs another model"):
        _register(r, world.alice, M2, _passport(2), [job])
    newer = world.job(world.alice)
    assert _register(r, world.alice, M1, _passport(2), [job, newer]) == 2
    assert r.version_jobs(M1, 2) == [job, newer]
    with boa.reverts("models: job listed twice"):
        _register(r, world.alice, M1, _passport(3), [newer, job, newer])


def test_passport_hashes_are_unique_and_nonzero(world: World) -> None:
    r = world.registry
    _register(r, world.alice, M1, _passport(1), [])
    for model_id, who in ((M1, world.alice), (M2, world.bob)):
        with boa.reverts("models: passport already registered"):
            _register(r, who, model_id, _passport(1), [])
    with boa.reverts("models: passport hash is zero"):
        _register(r, world.bob, M2, b"\x00" * 32, [])
    with boa.reverts("models: model id is zero"):
        _register(r, world.bob, b"\x00" * 32, _passport(9), [])


@pytest.mark.parametrize(
    ("price", "period", "reason"),
    [
        (0, 1, "models: a free licence has no period"),
        (1, 0, "models: licence period out of range"),
        (1, 10 * 365 * DAY + 1, "models: licence period out of range"),
    ],
)
def test_licence_terms_are_checked(world: World, price: int, period: int, reason: str) -> None:
    with boa.reverts(reason):
        _register(world.registry, world.alice, M1, _passport(1), [], price, period)


# ---------------------------------------------------------------- ownership


def test_only_the_owner_adds_versions_and_retires(world: World) -> None:
    r = world.registry
    _register(r, world.alice, M1, _passport(1), [])
    with boa.reverts("models: caller is not the model owner"):
        _register(r, world.bob, M1, _passport(2), [])
    with boa.env.prank(world.bob), boa.reverts("models: caller is not the model owner"):
        r.retire_version(M1, 1)
    with boa.env.prank(world.alice):
        with boa.reverts("models: unknown version"):
            r.retire_version(M1, 2)
        with boa.reverts("models: unknown version"):
            r.retire_version(M1, 0)
        with boa.reverts("models: unknown model"):
            r.retire_version(M2, 1)
        r.retire_version(M1, 1)
        [log] = r.get_logs()
        assert type(log).__name__ == "VersionRetired"
        assert (log.model_id, log.version, log.owner) == (M1, 1, world.alice)
        with boa.reverts("models: version already retired"):
            r.retire_version(M1, 1)
    assert r.version(M1, 1).retired
    # Retired, the passport stays used; the model takes new versions.
    with boa.reverts("models: passport already registered"):
        _register(r, world.alice, M1, _passport(1), [])
    assert _register(r, world.alice, M1, _passport(2), []) == 2


# ---------------------------------------------------------------- gas


def test_gas_of_main_calls(world: World) -> None:
    """Gas of the main calls (printed with -s; bounded so regressions show)."""
    r = world.registry
    jobs = [world.job(world.alice, (DS1, DS2), TRAINING) for _ in range(8)]
    figures: dict[str, int] = {}
    _register(r, world.alice, M1, _passport(1), [])
    figures["register_version(0 jobs)"] = r._computation.get_gas_used()
    _register(r, world.alice, M1, _passport(2), jobs[:1])
    figures["register_version(1 job, 2 datasets)"] = r._computation.get_gas_used()
    _register(r, world.alice, M1, _passport(3), jobs)
    figures["register_version(8 jobs, 16 datasets)"] = r._computation.get_gas_used()
    with boa.env.prank(world.alice):
        r.retire_version(M1, 1)
    figures["retire_version"] = r._computation.get_gas_used()
    print(figures)
    assert figures["register_version(0 jobs)"] < 250_000
    assert figures["register_version(8 jobs, 16 datasets)"] < 1_200_000
    assert figures["retire_version"] < 60_000


# ---------------------------------------------------------------- stateful


class RegistryMachine(RuleBasedStateMachine):
    """Random registrations (own, foreign, unfinished and reused jobs, reused passports)
    and retirements by two requesters over two models, against a Python model."""

    @initialize()
    def deploy(self) -> None:
        self.world = _world()
        self.people = [self.world.alice, self.world.bob]
        # Completed jobs: alice's over training data, alice's over rare-disease data,
        # bob's without data; and alice's open job.
        w = self.world
        self.jobs = [w.job(w.alice, (DS1,), TRAINING), w.job(w.alice, (DS2,), TRAINING)]
        self.jobs += [w.job(w.alice, (DS1,), RARE), w.job(w.bob), w.job(w.alice, finish=False)]
        self.requester = [w.alice, w.alice, w.alice, w.bob, w.alice]
        self.owners: dict[bytes, Any] = {}
        self.versions: dict[bytes, list[bool]] = {M1: [], M2: []}  # retired flags
        self.bound: dict[int, bytes] = {}
        self.passports: set[bytes] = set()

    @rule(
        person=st.integers(0, 1),
        model=st.sampled_from([M1, M2]),
        passport=st.integers(1, 6),
        picks=st.lists(st.integers(0, 4), max_size=3, unique=True),
    )
    def register(self, person: int, model: bytes, passport: int, picks: list[int]) -> None:
        who, p = self.people[person], _passport(passport)
        jobs = [self.jobs[i] for i in picks]
        reason = self._refusal(who, model, p, picks)
        if reason is not None:
            with boa.reverts(reason):
                _register(self.world.registry, who, model, p, jobs)
            return
        version = _register(self.world.registry, who, model, p, jobs)
        self.owners[model] = who
        self.versions[model].append(False)
        assert version == len(self.versions[model])
        self.passports.add(p)
        for i in picks:
            self.bound[i] = model

    def _refusal(self, who: Any, model: bytes, p: bytes, picks: list[int]) -> str | None:
        if p in self.passports:
            return "models: passport already registered"
        if self.owners.get(model, who) != who:
            return "models: caller is not the model owner"
        for i in picks:
            if self.requester[i] != who:
                return "models: job of another requester"
            if i == 4:
                return "models: job not completed"
            if self.bound.get(i, model) != model:
                return "models: job backs another model"
            if i == 2:
                return "models: job data not for model training"
        return None

    @rule(person=st.integers(0, 1), model=st.sampled_from([M1, M2]), version=st.integers(0, 3))
    def retire(self, person: int, model: bytes, version: int) -> None:
        who, flags = self.people[person], self.versions[model]
        if model not in self.owners:
            reason: str | None = "models: unknown model"
        elif self.owners[model] != who:
            reason = "models: caller is not the model owner"
        elif not 1 <= version <= len(flags):
            reason = "models: unknown version"
        elif flags[version - 1]:
            reason = "models: version already retired"
        else:
            reason = None
        with boa.env.prank(who):
            if reason is not None:
                with boa.reverts(reason):
                    self.world.registry.retire_version(model, version)
                return
            self.world.registry.retire_version(model, version)
        flags[version - 1] = True

    @invariant()
    def matches_model(self) -> None:
        r = self.world.registry
        for model, flags in self.versions.items():
            owner = self.owners.get(model, "0x" + "00" * 20)
            assert r.model(model) == (owner, len(flags))
            for v, retired in enumerate(flags, start=1):
                assert r.version(model, v).retired == retired
        for i, job in enumerate(self.jobs):
            assert r.job_model(job) == self.bound.get(i, b"\x00" * 32)


RegistryMachine.TestCase.settings = settings(max_examples=10, stateful_step_count=12, deadline=None)
TestRegistry = RegistryMachine.TestCase
