"""FederatedJobs.vy: federated tasks over a real DataMarket and Token. Joining needs the
institution's own dataset and the requester's grant for the task's purpose; rounds count
only members whose grant is still valid (a revocation takes effect at the next round);
the pool is paid pro rata to the anchored scores, stakes come back, and the remainder (or
everything, when no round counted) goes back to the requester. Every refusal, the
deadlines, gas, an overflow attack on the payout, and a stateful model check of the
token balances and the status transitions.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import boa
import pytest
from boa.contracts.vyper.vyper_contract import VyperContract, VyperDeployer
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from ailedger.chain.compiler import EVM_VERSION, source_path

UNIT = 10**18
MAX_UINT = 2**256 - 1
DAY = 86400
RARE, TRAINING = 1, 2
TASK, VALIDATION = b"\x7a" * 32, b"\x7b" * 32
MODEL, ROOT = b"\x3d" * 32, b"\x4e" * 32
STAKE, REWARD = 5 * UNIT, 90 * UNIT
OPEN, RUNNING, FINISHED, CANCELLED = 1, 2, 3, 4
MAX_SCORE = 10**30
ZERO_ADDRESS = "0x" + "00" * 20


@functools.cache
def _deployer(name: str) -> VyperDeployer:
    return boa.load_partial(str(source_path(name)), compiler_args={"evm_version": EVM_VERSION})


def _dataset(i: int) -> bytes:
    return (0xD000 + i).to_bytes(32, "big")


def _now() -> int:
    return int(boa.env.evm.patch.timestamp)


@dataclass
class World:
    """A Token, a DataMarket, FederatedJobs over both; a requester, a stranger and
    ``n`` institutions, each owning dataset i and having granted the requester access to
    it for model training (``grants[i]``) and for rare-disease research (``rare[i]``)."""

    token: VyperContract
    data: VyperContract
    fl: VyperContract
    requester: Any
    stranger: Any
    institutions: list[Any]
    grants: list[int]
    rare: list[int]

    def post(self, **changes: int) -> int:
        terms = {
            "purpose": TRAINING,
            "rounds": 3,
            "min_participants": 2,
            "max_participants": 4,
            "stake": STAKE,
            "reward": REWARD,
            "join_deadline": _now() + DAY,
            "run_deadline": _now() + 10 * DAY,
        }
        terms.update(changes)
        with boa.env.prank(self.requester):
            job_id: int = self.fl.post(TASK, VALIDATION, *terms.values())
        return job_id

    def join(
        self, job_id: int, i: int, dataset: int | None = None, grant: int | None = None
    ) -> None:
        ds = _dataset(i if dataset is None else dataset)
        with boa.env.prank(self.institutions[i]):
            self.fl.join(job_id, ds, self.grants[i] if grant is None else grant)

    def running(self, n: int, **changes: int) -> int:
        """A job joined by institutions 0 .. n-1 and started."""
        job_id = self.post(**changes)
        for i in range(n):
            self.join(job_id, i)
        with boa.env.prank(self.requester):
            self.fl.start(job_id)
        return job_id

    def anchor(
        self,
        job_id: int,
        round_no: int,
        who: list[int],
        scores: list[int],
        dropped: tuple[int, ...] = (),
        sender: Any = None,
    ) -> None:
        with boa.env.prank(sender or self.requester):
            self.fl.anchor_round(
                job_id,
                round_no,
                MODEL,
                ROOT,
                [self.institutions[i] for i in who],
                scores,
                [self.institutions[i] for i in dropped],
            )

    def balance(self, who: Any) -> int:
        return int(self.token.balanceOf(who))


def _world(n: int = 5, supply: int = 10_000_000 * UNIT, funds: int = 1_000 * UNIT) -> World:
    token = _deployer("Token").deploy(supply)
    data = _deployer("DataMarket").deploy(token.address)
    fl = _deployer("FederatedJobs").deploy(token.address, data.address)
    requester = boa.env.generate_address("requester")
    stranger = boa.env.generate_address("stranger")
    institutions = [boa.env.generate_address(f"institution{i}") for i in range(n)]
    for who in [requester, stranger, *institutions]:
        token.transfer(who, funds)
        with boa.env.prank(who):
            token.approve(fl.address, MAX_UINT)
    grants, rare = [], []
    for i, who in enumerate(institutions):
        with boa.env.prank(who):
            data.register_dataset(
                _dataset(i), b"\x22" * 32, b"\x33" * 32, RARE | TRAINING, False, 0, 365 * DAY, 0
            )
        with boa.env.prank(requester):
            grants.append(data.request_access(_dataset(i), TRAINING))
            rare.append(data.request_access(_dataset(i), RARE))
    return World(token, data, fl, requester, stranger, institutions, grants, rare)


@pytest.fixture
def world() -> World:
    return _world()


def _logs(world: World) -> list[Any]:
    """The last call's FederatedJobs events, without the token's Transfers."""
    return [e for e in world.fl.get_logs() if type(e).__name__ != "Transfer"]


def _status(world: World, job_id: int) -> int:
    return int(world.fl.job(job_id).status)


# ---------------------------------------------------------------- construction and posting


def test_constructor_binds_the_token_and_the_data_market(world: World) -> None:
    fl = world.fl
    assert (fl.TOKEN(), fl.DATA_MARKET()) == (world.token.address, world.data.address)
    assert (fl.MAX_PARTICIPANTS(), fl.MAX_ROUNDS(), fl.MAX_SCORE()) == (32, 1000, MAX_SCORE)
    eoa = boa.env.generate_address("eoa")
    with boa.reverts("init: token is not a contract"):
        _deployer("FederatedJobs").deploy(eoa, world.data.address)
    with boa.reverts("init: data market is not a contract"):
        _deployer("FederatedJobs").deploy(world.token.address, eoa)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"purpose": 0}, "fl: name exactly one purpose"),
        ({"purpose": RARE | TRAINING}, "fl: name exactly one purpose"),
        ({"rounds": 0}, "fl: rounds out of range"),
        ({"rounds": 1001}, "fl: rounds out of range"),
        ({"min_participants": 0}, "fl: at least one participant"),
        ({"min_participants": 5, "max_participants": 4}, "fl: min over max participants"),
        ({"min_participants": 2, "max_participants": 33}, "fl: too many participants"),
        ({"join_deadline": 0}, "fl: join deadline passed"),
        ({"run_deadline": 0}, "fl: run deadline before join deadline"),
    ],
)
def test_bad_tasks_are_refused(world: World, changes: dict[str, int], reason: str) -> None:
    if changes.get("join_deadline") == 0:
        changes["join_deadline"] = _now()
    if changes.get("run_deadline") == 0:
        changes["run_deadline"] = _now() + DAY  # equal to the join deadline
    with boa.reverts(reason):
        world.post(**changes)
    assert world.fl.job_count() == 0


def test_zero_hashes_are_refused(world: World) -> None:
    later = _now() + DAY
    with boa.env.prank(world.requester):
        with boa.reverts("fl: task hash is zero"):
            world.fl.post(b"\0" * 32, VALIDATION, TRAINING, 1, 1, 1, 0, 0, later, later + 1)
        with boa.reverts("fl: validation hash is zero"):
            world.fl.post(TASK, b"\0" * 32, TRAINING, 1, 1, 1, 0, 0, later, later + 1)


def test_posting_escrows_the_pool_and_the_event_carries_everything(world: World) -> None:
    before = world.balance(world.requester)
    join_at, run_at = _now() + DAY, _now() + 9 * DAY
    job_id = world.post(join_deadline=join_at, run_deadline=run_at)
    [log] = _logs(world)
    assert job_id == 1 and world.fl.job_count() == 1
    assert type(log).__name__ == "JobPosted"
    assert (log.job_id, log.requester, log.task_hash, log.validation_hash) == (
        1,
        world.requester,
        TASK,
        VALIDATION,
    )
    assert (log.purpose, log.rounds, log.min_participants, log.max_participants) == (
        TRAINING,
        3,
        2,
        4,
    )
    assert (log.stake, log.reward, log.join_deadline, log.run_deadline) == (
        STAKE,
        REWARD,
        join_at,
        run_at,
    )
    assert world.balance(world.requester) == before - REWARD
    assert world.balance(world.fl.address) == REWARD
    job = world.fl.job(1)
    assert (job.requester, job.status, job.rounds_done, job.score_total) == (
        world.requester,
        OPEN,
        0,
        0,
    )
    assert world.fl.job(2).status == 0  # unknown: all zero


# ---------------------------------------------------------------- the happy path


def test_a_job_runs_from_post_to_payout_and_every_event_carries_everything(
    world: World,
) -> None:
    fl, inst = world.fl, world.institutions
    job_id = world.post()
    world.join(job_id, 0)
    [log] = _logs(world)
    assert type(log).__name__ == "Joined"
    assert (log.job_id, log.institution, log.dataset_id, log.grant_id, log.stake) == (
        job_id,
        inst[0],
        _dataset(0),
        world.grants[0],
        STAKE,
    )
    world.join(job_id, 1)
    world.join(job_id, 2)
    assert fl.members(job_id) == inst[:3]
    member = fl.member(job_id, inst[1])
    assert (member.dataset_id, member.grant_id, member.score, member.joined) == (
        _dataset(1),
        world.grants[1],
        0,
        True,
    )
    assert world.balance(fl.address) == REWARD + 3 * STAKE

    with boa.env.prank(world.requester):
        fl.start(job_id)
    [log] = _logs(world)
    assert (type(log).__name__, log.job_id, log.participants) == ("Started", job_id, 3)
    assert _status(world, job_id) == RUNNING

    world.anchor(job_id, 1, [0, 1], [600, 300], dropped=(2,))
    [log] = _logs(world)
    assert type(log).__name__ == "RoundAnchored"
    assert (log.job_id, log.round, log.model_hash, log.commitments_root) == (
        job_id,
        1,
        MODEL,
        ROOT,
    )
    assert (log.aggregated, log.scores, log.dropped) == (inst[:2], [600, 300], [inst[2]])
    world.anchor(job_id, 2, [1, 0, 2], [300, 0, 300])
    job = fl.job(job_id)
    assert (job.rounds_done, job.score_total) == (2, 1500)
    assert [fl.member(job_id, inst[i]).score for i in range(3)] == [600, 600, 300]

    balances = [world.balance(w) for w in (*inst[:3], world.requester)]
    with boa.env.prank(world.requester):
        fl.finish(job_id)
    logs = _logs(world)
    assert [type(e).__name__ for e in logs] == ["Paid", "Paid", "Paid", "Finished"]
    shares = [36 * UNIT, 36 * UNIT, 18 * UNIT]  # 90 AIL split 600 : 600 : 300
    for e, who, share in zip(logs, inst, shares, strict=False):
        assert (e.job_id, e.institution, e.reward, e.stake) == (job_id, who, share, STAKE)
    assert (logs[-1].job_id, logs[-1].rounds_done, logs[-1].refunded) == (job_id, 2, 0)
    after = [world.balance(w) for w in (*inst[:3], world.requester)]
    assert after == [b + s + STAKE for b, s in zip(balances, shares, strict=False)] + [balances[3]]
    assert world.balance(fl.address) == 0
    assert _status(world, job_id) == FINISHED


# ---------------------------------------------------------------- joining


def test_joining_needs_the_requesters_grant_for_the_tasks_purpose(world: World) -> None:
    job_id = world.post()
    with boa.reverts("fl: no valid grant for the purpose"):
        world.join(job_id, 0, grant=999)  # no such grant
    with boa.reverts("fl: no valid grant for the purpose"):
        world.join(job_id, 0, grant=world.rare[0])  # granted for rare-disease research
    with boa.reverts("fl: no valid grant for the purpose"):
        world.join(job_id, 0, grant=world.grants[1])  # the grant of another dataset
    # The stranger's own grant on dataset 0, for the right purpose: not the requester's.
    with boa.env.prank(world.stranger):
        strangers = world.data.request_access(_dataset(0), TRAINING)
    with boa.reverts("fl: no valid grant for the purpose"):
        world.join(job_id, 0, grant=strangers)
    # Revoked before joining: refused too.
    with boa.env.prank(world.institutions[0]):
        world.data.revoke(world.grants[0])
    with boa.reverts("fl: no valid grant for the purpose"):
        world.join(job_id, 0)
    assert world.fl.members(job_id) == []


def test_joining_needs_ones_own_dataset_once_while_open_and_not_full(world: World) -> None:
    job_id = world.post(max_participants=2)
    with boa.reverts("fl: not the dataset's owner"):
        world.join(job_id, 1, dataset=0, grant=world.grants[0])  # institution 0's dataset
    with boa.reverts("fl: not the dataset's owner"):
        world.join(job_id, 1, dataset=99)  # nobody's dataset
    world.join(job_id, 0)
    with boa.reverts("fl: already joined"):
        world.join(job_id, 0)
    world.join(job_id, 1)
    with boa.reverts("fl: job is full"):
        world.join(job_id, 2)
    with boa.reverts("fl: job not open"):
        world.join(job_id + 1, 2)  # no such job
    late = world.post()
    boa.env.time_travel(seconds=DAY)
    with boa.reverts("fl: joining closed"):
        world.join(late, 2)
    with boa.env.prank(world.requester):
        world.fl.start(job_id)
    with boa.reverts("fl: job not open"):
        world.join(job_id, 3)


def test_start_needs_the_requester_an_open_job_and_enough_members(world: World) -> None:
    job_id = world.post(min_participants=2)
    world.join(job_id, 0)
    with boa.env.prank(world.requester), boa.reverts("fl: not enough participants"):
        world.fl.start(job_id)
    world.join(job_id, 1)
    with boa.env.prank(world.stranger), boa.reverts("fl: caller is not the requester"):
        world.fl.start(job_id)
    with boa.env.prank(world.requester):
        world.fl.start(job_id)
        with boa.reverts("fl: job not open"):
            world.fl.start(job_id)


# ---------------------------------------------------------------- rounds


def test_anchoring_refusals(world: World) -> None:
    job_id = world.post(rounds=2)
    world.join(job_id, 0)
    world.join(job_id, 1)
    with boa.reverts("fl: job not running"):
        world.anchor(job_id, 1, [0], [1])
    with boa.env.prank(world.requester):
        world.fl.start(job_id)
    with boa.reverts("fl: caller is not the requester"):
        world.anchor(job_id, 1, [0], [1], sender=world.stranger)
    with boa.reverts("fl: caller is not the requester"):
        world.anchor(job_id, 1, [0], [1], sender=world.institutions[0])
    with boa.reverts("fl: rounds are anchored in order"):
        world.anchor(job_id, 2, [0], [1])
    with boa.reverts("fl: rounds are anchored in order"):
        world.anchor(job_id, 0, [0], [1])
    with boa.reverts("fl: a round aggregates someone"):
        world.anchor(job_id, 1, [], [])
    with boa.reverts("fl: one score per institution"):
        world.anchor(job_id, 1, [0, 1], [1])
    with boa.reverts("fl: institution listed twice"):
        world.anchor(job_id, 1, [0, 1, 0], [1, 1, 1])
    with boa.reverts("fl: not a participant"):
        world.anchor(job_id, 1, [0, 2], [1, 1])  # institution 2 never joined
    with boa.reverts("fl: score too large"):
        world.anchor(job_id, 1, [0, 1], [1, MAX_SCORE + 1])
    with boa.reverts("fl: dropped one is not a participant"):
        world.anchor(job_id, 1, [0], [1], dropped=(2,))
    with boa.reverts("fl: dropped one was aggregated"):
        world.anchor(job_id, 1, [0], [1], dropped=(0,))
    with boa.reverts("fl: institution listed twice"):
        world.anchor(job_id, 1, [0], [1], dropped=(1, 1))
    with boa.env.prank(world.requester), boa.reverts("fl: model hash is zero"):
        world.fl.anchor_round(job_id, 1, b"\0" * 32, ROOT, [world.institutions[0]], [1], [])
    world.anchor(job_id, 1, [0, 1], [MAX_SCORE, 0])
    world.anchor(job_id, 2, [1], [5])
    with boa.reverts("fl: all rounds already anchored"):
        world.anchor(job_id, 3, [0], [1])
    assert world.fl.job(job_id).rounds_done == 2


def test_a_revoked_grant_cannot_be_counted_from_the_next_round(world: World) -> None:
    job_id = world.running(3)
    world.anchor(job_id, 1, [0, 1, 2], [100, 100, 100])
    with boa.env.prank(world.institutions[2]):
        world.data.revoke(world.grants[2])  # consent withdrawn after round 1
    with boa.reverts("fl: a participant's grant is no longer valid"):
        world.anchor(job_id, 2, [0, 1, 2], [100, 100, 100])
    world.anchor(job_id, 2, [0, 1], [100, 100], dropped=(2,))
    # Still a member: round 1's score and its stake are paid out.
    before = world.balance(world.institutions[2])
    with boa.env.prank(world.requester):
        world.fl.finish(job_id)
    assert world.balance(world.institutions[2]) == before + REWARD // 5 + STAKE


def test_an_expired_grant_cannot_be_counted(world: World) -> None:
    job_id = world.running(2, run_deadline=_now() + 400 * DAY)
    boa.env.time_travel(seconds=366 * DAY)  # the grants last 365 days
    with boa.reverts("fl: a participant's grant is no longer valid"):
        world.anchor(job_id, 1, [0], [1])


# ---------------------------------------------------------------- finish and cancel


def test_payouts_are_pro_rata_with_the_remainder_to_the_requester(world: World) -> None:
    reward = 10 * UNIT + 1  # 2 more than a multiple of 3
    job_id = world.running(4, reward=reward)
    world.anchor(job_id, 1, [0, 1, 2], [1, 1, 0])
    world.anchor(job_id, 2, [2, 0], [1, 0], dropped=(3,))
    who = [*world.institutions[:4], world.requester]
    before = [world.balance(w) for w in who]
    with (
        boa.env.prank(world.stranger),
        boa.reverts("fl: only the requester, before the run deadline"),
    ):
        world.fl.finish(job_id)
    with boa.env.prank(world.requester):
        world.fl.finish(job_id)
    share = reward // 3
    gained = [world.balance(w) - b for w, b in zip(who, before, strict=True)]
    # Institution 3, a free rider with no score, gets back its stake only.
    assert gained == [share + STAKE, share + STAKE, share + STAKE, STAKE, reward - 3 * share]
    assert _logs(world)[-1].refunded == reward - 3 * share == 2
    assert world.balance(world.fl.address) == 0
    with boa.env.prank(world.requester), boa.reverts("fl: job not running"):
        world.fl.finish(job_id)
    with boa.env.prank(world.requester), boa.reverts("fl: job not open"):
        world.fl.cancel(job_id)


def test_nobody_is_paid_for_a_round_that_did_not_happen(world: World) -> None:
    job_id = world.running(3)
    who = [*world.institutions[:3], world.requester]
    before = [world.balance(w) for w in who]
    boa.env.time_travel(seconds=10 * DAY)  # the run deadline: anyone may finish
    with boa.env.prank(world.stranger):
        world.fl.finish(job_id)
    assert [world.balance(w) - b for w, b in zip(who, before, strict=True)] == [
        STAKE,
        STAKE,
        STAKE,
        REWARD,
    ]
    logs = _logs(world)
    assert [(e.reward, e.stake) for e in logs[:-1]] == [(0, STAKE)] * 3
    assert (logs[-1].rounds_done, logs[-1].refunded) == (0, REWARD)


def test_rounds_with_only_zero_scores_refund_the_whole_pool(world: World) -> None:
    job_id = world.running(2)
    world.anchor(job_id, 1, [0, 1], [0, 0])
    before = world.balance(world.requester)
    with boa.env.prank(world.requester):
        world.fl.finish(job_id)
    assert world.balance(world.requester) - before == REWARD


def test_finish_by_anyone_only_after_the_run_deadline(world: World) -> None:
    job_id = world.running(2, run_deadline=_now() + 5 * DAY)
    world.anchor(job_id, 1, [0], [7])
    boa.env.time_travel(seconds=5 * DAY - 2)
    for who in (world.stranger, world.institutions[0]):
        with boa.env.prank(who), boa.reverts("fl: only the requester, before the run deadline"):
            world.fl.finish(job_id)
    boa.env.time_travel(seconds=2)
    before = world.balance(world.institutions[0])
    with boa.env.prank(world.institutions[1]):
        world.fl.finish(job_id)
    assert world.balance(world.institutions[0]) - before == REWARD + STAKE
    assert _status(world, job_id) == FINISHED
    open_job = world.post()
    with boa.env.prank(world.requester), boa.reverts("fl: job not running"):
        world.fl.finish(open_job)


def test_cancel_refunds_the_pool_and_every_stake(world: World) -> None:
    job_id = world.post()
    world.join(job_id, 0)
    world.join(job_id, 1)
    who = [*world.institutions[:2], world.requester]
    before = [world.balance(w) for w in who]
    with (
        boa.env.prank(world.institutions[0]),
        boa.reverts("fl: only the requester, before the join deadline"),
    ):
        world.fl.cancel(job_id)
    with boa.env.prank(world.requester):
        world.fl.cancel(job_id)
    logs = _logs(world)
    assert [type(e).__name__ for e in logs] == ["Paid", "Paid", "Cancelled"]
    assert [(e.institution, e.reward, e.stake) for e in logs[:2]] == [
        (world.institutions[0], 0, STAKE),
        (world.institutions[1], 0, STAKE),
    ]
    assert (logs[-1].job_id, logs[-1].refunded) == (job_id, REWARD)
    assert [world.balance(w) - b for w, b in zip(who, before, strict=True)] == [
        STAKE,
        STAKE,
        REWARD,
    ]
    assert _status(world, job_id) == CANCELLED
    with boa.env.prank(world.requester):
        with boa.reverts("fl: job not open"):
            world.fl.cancel(job_id)
        with boa.reverts("fl: job not open"):
            world.fl.start(job_id)


def test_anyone_cancels_once_the_join_deadline_passed_without_a_start(world: World) -> None:
    job_id = world.post(join_deadline=_now() + DAY)
    world.join(job_id, 0)
    running = world.running(2, join_deadline=_now() + DAY)
    boa.env.time_travel(seconds=DAY)
    with boa.env.prank(world.stranger):
        world.fl.cancel(job_id)
        with boa.reverts("fl: job not open"):
            world.fl.cancel(running)  # started: only finish ends it
    assert _status(world, job_id) == CANCELLED


def test_a_huge_pool_cannot_overflow_the_payout_and_lock_the_funds() -> None:
    """reward * score would overflow uint256 here; the split must not form it, or
    finish reverts for good and the pool and every stake stay locked."""
    big = 2**250
    world = _world(n=2, supply=4 * big, funds=big)
    job_id = world.running(2, reward=big - 10 * STAKE)
    world.anchor(job_id, 1, [0, 1], [MAX_SCORE, MAX_SCORE // 3])
    world.anchor(job_id, 2, [0, 1], [MAX_SCORE, 7])
    with boa.env.prank(world.requester):
        world.fl.finish(job_id)
    reward, scores = big - 10 * STAKE, [2 * MAX_SCORE, MAX_SCORE // 3 + 7]
    shares = [reward * s // sum(scores) for s in scores]
    assert [(e.reward, e.stake) for e in _logs(world)[:2]] == [(s, STAKE) for s in shares]
    assert _logs(world)[-1].refunded == reward - sum(shares)
    assert world.balance(world.fl.address) == 0


# ---------------------------------------------------------------- gas


def test_gas_of_main_calls() -> None:
    """Gas of the main calls (printed with -s; bounded so regressions show). titanoboa
    keeps storage warm from one call to the next; the access counters are reset before
    each measured call so the figures pay for cold reads as a transaction does (the
    21,000 of a transaction and its calldata are not counted). The reset breaks the
    test's own snapshot, so the measurement runs in an environment of its own."""
    with boa.swap_env(boa.Env()):
        _measure_gas()


def _measure_gas() -> None:
    world = _world(n=32)
    fl = world.fl
    figures: dict[str, int] = {}

    def measure(name: str, call: Any) -> None:
        boa.env.evm.reset_access_counters()
        call()
        figures[name] = fl._computation.get_gas_used()

    measure("post", lambda: world.post(max_participants=3))
    small = world.post(max_participants=3)
    world.join(small, 0)
    world.join(small, 1)
    measure("join", lambda: world.join(small, 2))
    with boa.env.prank(world.requester):
        fl.start(small)
    measure("anchor_round(3)", lambda: world.anchor(small, 1, [0, 1, 2], [10, 20, 30]))
    big = world.post(min_participants=32, max_participants=32)
    for i in range(32):
        world.join(big, i)
    with boa.env.prank(world.requester):
        fl.start(big)
    everyone, scores = list(range(32)), [10**6 + i for i in range(32)]
    measure("anchor_round(32), first", lambda: world.anchor(big, 1, everyone, scores))
    measure("anchor_round(32)", lambda: world.anchor(big, 2, everyone, scores))
    with boa.env.prank(world.requester):
        measure("finish(32)", lambda: fl.finish(big))
    print(figures)
    assert figures["post"] < 400_000  # the job's fourteen fields, each a fresh slot
    assert figures["join"] < 250_000
    # Each aggregated institution costs a member read, the DataMarket's grant check and
    # a score write; the first round sets every score from zero.
    assert figures["anchor_round(3)"] < 300_000
    assert figures["anchor_round(32), first"] < 2_200_000
    assert figures["anchor_round(32)"] < 1_300_000
    assert figures["finish(32)"] < 700_000  # 33 token transfers


# ---------------------------------------------------------------- stateful


@dataclass
class JobModel:
    job_id: int
    stake: int
    reward: int
    rounds: int
    min_participants: int
    max_participants: int
    join_deadline: int
    run_deadline: int
    status: int = OPEN
    rounds_done: int = 0
    members: list[int] = field(default_factory=list)
    scores: dict[int, int] = field(default_factory=dict)  # by institution, join order


PICK = st.integers(0, 4)
LEGAL = {OPEN: {OPEN, RUNNING, CANCELLED}, RUNNING: {RUNNING, FINISHED}}
INSTITUTIONS = 4


class FederatedMachine(RuleBasedStateMachine):
    """Random posts, joins, starts, rounds, revocations, cancels, finishes and time
    travel by the requester, the institutions and a stranger, against a Python model of
    every balance: the tokens are conserved, nobody is paid twice, every status change is
    a legal one."""

    @initialize()
    def deploy(self) -> None:
        self.world = _world(n=INSTITUTIONS)
        w = self.world
        self.jobs: list[JobModel] = []
        self.revoked: set[int] = set()
        self.people = [w.requester, w.stranger, *w.institutions]
        self.expected = {p: w.balance(p) for p in self.people}
        self.paid: set[tuple[int, Any]] = set()
        self.post(2, 1, 1, STAKE, REWARD, DAY, DAY)  # a job from the first step on

    def _job(self, index: int) -> JobModel | None:
        """Mostly a job still open or running, so that jobs get far enough to pay out;
        now and then (index 4) an ended one, whose refusals are checked too."""
        active = [j for j in self.jobs if j.status in (OPEN, RUNNING)]
        if index == 4 or not active:
            return self.jobs[index % len(self.jobs)] if self.jobs else None
        return active[index % len(active)]

    @precondition(lambda self: sum(j.status in (OPEN, RUNNING) for j in self.jobs) < 2)
    @rule(
        rounds=st.integers(1, 3),
        low=st.integers(1, 2),
        extra=st.integers(0, 2),
        stake=st.sampled_from([STAKE, 1, 0]),
        reward=st.sampled_from([REWARD + 1, 7, 0]),
        join_s=st.integers(3600, 3 * DAY),
        run_s=st.integers(1, 5 * DAY),
    )
    def post(
        self, rounds: int, low: int, extra: int, stake: int, reward: int, join_s: int, run_s: int
    ) -> None:
        join_at = _now() + join_s
        job_id = self.world.post(
            rounds=rounds,
            min_participants=low,
            max_participants=low + extra,
            stake=stake,
            reward=reward,
            join_deadline=join_at,
            run_deadline=join_at + run_s,
        )
        assert job_id == len(self.jobs) + 1
        self.jobs.append(
            JobModel(job_id, stake, reward, rounds, low, low + extra, join_at, join_at + run_s)
        )
        self.expected[self.world.requester] -= reward

    @rule(
        index=PICK,
        joiners=st.lists(st.integers(0, INSTITUTIONS - 1), min_size=1, max_size=3),
    )
    def join(self, index: int, joiners: list[int]) -> None:
        job = self._job(index)
        if job is None:
            return
        for i in joiners:  # several in a row: jobs fill up often enough to run
            self._join(job, i)

    def _join(self, job: JobModel, i: int) -> None:
        if job.status != OPEN:
            reason: str | None = "fl: job not open"
        elif _now() >= job.join_deadline:
            reason = "fl: joining closed"
        elif i in job.members:
            reason = "fl: already joined"
        elif len(job.members) >= job.max_participants:
            reason = "fl: job is full"
        elif i in self.revoked:
            reason = "fl: no valid grant for the purpose"
        else:
            reason = None
        if reason is not None:
            with boa.reverts(reason):
                self.world.join(job.job_id, i)
            return
        self.world.join(job.job_id, i)
        job.members.append(i)
        job.scores[i] = 0
        self.expected[self.world.institutions[i]] -= job.stake

    @rule(index=PICK, by_stranger=st.sampled_from([False, False, True]))
    def start(self, index: int, by_stranger: bool) -> None:
        job = self._job(index)
        if job is not None:
            self._start(job, self.world.stranger if by_stranger else self.world.requester)

    def _start(self, job: JobModel, who: Any) -> None:
        if who != self.world.requester:
            reason: str | None = "fl: caller is not the requester"
        elif job.status != OPEN:
            reason = "fl: job not open"
        elif len(job.members) < job.min_participants:
            reason = "fl: not enough participants"
        else:
            reason = None
        with boa.env.prank(who):
            if reason is not None:
                with boa.reverts(reason):
                    self.world.fl.start(job.job_id)
                return
            self.world.fl.start(job.job_id)
        self._move(job, RUNNING)

    @rule(
        index=PICK,
        picks=st.lists(st.integers(0, INSTITUTIONS - 1), min_size=1, max_size=3, unique=True),
        scores=st.lists(st.sampled_from([3, 1, 10**6, 0]), min_size=3, max_size=3),
    )
    def anchor(self, index: int, picks: list[int], scores: list[int]) -> None:
        job = self._job(index)
        if job is not None:
            self._anchor(job, picks, scores[: len(picks)])

    def _anchor(self, job: JobModel, picks: list[int], scores: list[int]) -> None:
        if job.status != RUNNING:
            reason: str | None = "fl: job not running"
        elif job.rounds_done == job.rounds:
            reason = "fl: all rounds already anchored"
        else:
            reason = self._round_refusal(job, picks)
        if reason is not None:
            with boa.reverts(reason):
                self.world.anchor(job.job_id, job.rounds_done + 1, picks, scores)
            return
        self.world.anchor(job.job_id, job.rounds_done + 1, picks, scores)
        job.rounds_done += 1
        for i, score in zip(picks, scores, strict=True):
            job.scores[i] += score

    def _round_refusal(self, job: JobModel, picks: list[int]) -> str | None:
        for i in picks:  # the contract checks each institution in turn
            if i not in job.members:
                return "fl: not a participant"
            if i in self.revoked:
                return "fl: a participant's grant is no longer valid"
        return None

    @rule(i=st.integers(0, INSTITUTIONS - 1))
    def revoke(self, i: int) -> None:
        if i in self.revoked or i < INSTITUTIONS - 1:
            return  # only the last institution ever withdraws: the others keep joining
        with boa.env.prank(self.world.institutions[i]):
            self.world.data.revoke(self.world.grants[i])
        self.revoked.add(i)

    @rule(index=PICK, caller=st.sampled_from([0, 1, 1, 2, 2]))
    def cancel(self, index: int, caller: int) -> None:
        job = self._job(index)
        if job is not None:
            self._cancel(job, self.people[caller])

    def _cancel(self, job: JobModel, who: Any) -> None:
        if job.status != OPEN:
            reason: str | None = "fl: job not open"
        elif who != self.world.requester and _now() < job.join_deadline:
            reason = "fl: only the requester, before the join deadline"
        else:
            reason = None
        with boa.env.prank(who):
            if reason is not None:
                with boa.reverts(reason):
                    self.world.fl.cancel(job.job_id)
                return
            self.world.fl.cancel(job.job_id)
        self._move(job, CANCELLED)
        self._pay(job, {i: 0 for i in job.members}, job.reward)

    @rule(index=PICK, caller=st.integers(0, 2))
    def finish(self, index: int, caller: int) -> None:
        job = self._job(index)
        if job is not None:
            self._finish(job, self.people[caller])

    def _finish(self, job: JobModel, who: Any) -> None:
        if job.status != RUNNING:
            reason: str | None = "fl: job not running"
        elif who != self.world.requester and _now() < job.run_deadline:
            reason = "fl: only the requester, before the run deadline"
        else:
            reason = None
        with boa.env.prank(who):
            if reason is not None:
                with boa.reverts(reason):
                    self.world.fl.finish(job.job_id)
                return
            self.world.fl.finish(job.job_id)
        self._move(job, FINISHED)
        total = sum(job.scores.values())
        shares = {i: job.reward * s // total if total else 0 for i, s in job.scores.items()}
        self._pay(job, shares, job.reward - sum(shares.values()))

    @rule(
        index=PICK,
        scores=st.lists(
            st.sampled_from([3, 1, 10**6, 0]), min_size=INSTITUTIONS, max_size=INSTITUTIONS
        ),
    )
    def advance(self, index: int, scores: list[int]) -> None:
        """The job's natural next step by the requester or the next free institution, so
        that jobs run to their payout whichever rules an example leaves out."""
        job, requester = self._job(index), self.world.requester
        if job is None or job.status not in (OPEN, RUNNING):
            if not any(j.status in (OPEN, RUNNING) for j in self.jobs):
                self.post(2, 1, 2, STAKE, REWARD + 1, DAY, DAY)
            return
        if job.status == RUNNING:
            valid = [i for i in job.members if i not in self.revoked]
            if valid and job.rounds_done < job.rounds:
                self._anchor(job, valid, scores[: len(valid)])
            else:
                self._finish(job, requester)
            return
        free = [i for i in range(INSTITUTIONS) if i not in job.members and i not in self.revoked]
        if free and len(job.members) < job.max_participants and _now() < job.join_deadline:
            self._join(job, free[0])
        elif len(job.members) >= job.min_participants:
            self._start(job, requester)
        else:
            self._cancel(job, requester)

    @rule(seconds=st.sampled_from([60, 3600, DAY // 2, 3 * DAY]))
    def wait(self, seconds: int) -> None:
        boa.env.time_travel(seconds=seconds)

    def _move(self, job: JobModel, status: int) -> None:
        assert status in LEGAL[job.status], (job.status, status)
        job.status = status

    def _pay(self, job: JobModel, shares: dict[int, int], refund: int) -> None:
        logs = _logs(self.world)
        paid = [e for e in logs if type(e).__name__ == "Paid"]
        assert [e.institution for e in paid] == [self.world.institutions[i] for i in shares]
        for e, (i, share) in zip(paid, shares.items(), strict=True):
            key = (job.job_id, e.institution)
            assert key not in self.paid, "paid twice"
            self.paid.add(key)
            assert (e.reward, e.stake) == (share, job.stake)
            self.expected[self.world.institutions[i]] += share + job.stake
        assert logs[-1].refunded == refund
        self.expected[self.world.requester] += refund

    @invariant()
    def tokens_are_conserved(self) -> None:
        if not hasattr(self, "world"):
            return
        w = self.world
        held = sum(
            j.reward + j.stake * len(j.members) for j in self.jobs if j.status in (OPEN, RUNNING)
        )
        assert w.balance(w.fl.address) == held
        for person, balance in self.expected.items():
            assert w.balance(person) == balance
        for job in self.jobs:
            on_chain = w.fl.job(job.job_id)
            assert (on_chain.status, on_chain.rounds_done) == (job.status, job.rounds_done)
            assert on_chain.score_total == sum(job.scores.values())


FederatedMachine.TestCase.settings = settings(
    max_examples=15, stateful_step_count=30, deadline=None
)
TestFederatedJobs = FederatedMachine.TestCase
