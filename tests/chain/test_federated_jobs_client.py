"""The FederatedJobs client on an embedded chain: a task posted, joined by two
institutions under the requester's grants, started, two rounds anchored and finished,
read back (job, members, rounds, payouts); the contract's refusals arrive as
FederatedJobsError with what to do, and bad tasks are refused before any gas."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
from tests.web.homes import embedded_chain

from ailedger.chain.contracts import (
    FederatedJobsClient,
    FederatedJobsError,
    FederatedTask,
    JobState,
    Membership,
    Policy,
)
from ailedger.chain.contracts.data_market import PURPOSES
from ailedger.errors import ConfigError

AIL = 10**18
TRAINING = PURPOSES["model-training"]
STAKE, REWARD = 2 * AIL, 30 * AIL
MODEL1, MODEL2, ROOT = b"\x01" * 32, b"\x02" * 32, b"\xcc" * 32


def _task(**changes: object) -> FederatedTask:
    now = int(time.time())
    task = FederatedTask(
        task_hash=b"\x7a" * 32,
        validation_hash=b"\x7b" * 32,
        purpose=TRAINING,
        rounds=2,
        min_participants=2,
        max_participants=3,
        stake=STAKE,
        reward=REWARD,
        join_deadline=now + 3600,
        run_deadline=now + 7200,
    )
    return replace(task, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"task_hash": b"\x00" * 32}, "task hash must be 32 nonzero bytes"),
        ({"validation_hash": b"\x01" * 31}, "validation hash must be 32 nonzero bytes"),
        ({"purpose": TRAINING | 1}, "exactly one purpose"),
        ({"purpose": 32}, "exactly one purpose"),
        ({"rounds": 0}, "rounds must be 1 .. 1000"),
        ({"min_participants": 4}, "participants: 1 <= min"),
        ({"max_participants": 33}, "participants: 1 <= min"),
        ({"stake": -1}, "stake and reward"),
        ({"run_deadline": 0}, "run deadline must come after the join deadline"),
    ],
)
def test_bad_tasks_fail_before_any_transaction(changes: dict[str, object], match: str) -> None:
    # No chain at all: the checks run before the client touches web3.
    client = object.__new__(FederatedJobsClient)
    with pytest.raises(ConfigError, match=match):
        client.post(_task(**changes))


def test_bad_rounds_and_joins_fail_before_any_transaction() -> None:
    client = object.__new__(FederatedJobsClient)
    with pytest.raises(ConfigError, match="a dataset id is 32 bytes"):
        client.join(1, b"\xd0" * 31, 1)
    one, two = "0x" + "ab" * 20, "0x" + "22" * 20
    for aggregated, scores, dropped, match in [
        ([], [], [], "aggregates someone, with one score each"),
        ([one], [1, 2], [], "aggregates someone, with one score each"),
        ([one], [10**30 + 1], [], "scores are whole numbers"),
        ([one, one.upper().replace("0X", "0x")], [1, 1], [], "once in a round"),
        ([one], [1], [two, one], "once in a round"),
    ]:
        with pytest.raises(ConfigError, match=match):
            client.anchor_round(1, 1, MODEL1, ROOT, aggregated, scores, dropped)
    with pytest.raises(ConfigError, match="model hash"):
        client.anchor_round(1, 1, b"\0" * 32, ROOT, [one], [1], [two])


def test_a_task_is_posted_joined_run_for_two_rounds_finished_and_read_back(
    tmp_path: Path, contract_cache: Path
) -> None:
    with embedded_chain(tmp_path, contract_cache) as chain:
        requester, a, b = (chain.party(n) for n in ("requester", "hospital-a", "hospital-b"))
        fl = requester.federated_jobs
        grants = {}
        for n, party in enumerate((a, b)):
            dataset = bytes([0xD0 + n]) * 32
            policy = Policy(TRAINING, False, 0, 86400, 0)
            party.data_market.register_dataset(dataset, b"\x22" * 32, b"\x33" * 32, policy)
            grants[party.address], _ = requester.data_market.request_access(dataset, TRAINING)
        for party in (requester, a, b):
            party.token.faucet(100 * AIL)
        with pytest.raises(FederatedJobsError, match="amount exceeds allowance; approve the"):
            fl.post(_task())
        for party in (requester, a, b):
            party.token.approve(fl.address, 100 * AIL)
        start_block = chain.connection.web3.eth.block_number

        task = _task()
        job_id, posted = fl.post(task)
        gas = {"post": posted.gas_used}
        with pytest.raises(FederatedJobsError, match="not the dataset's owner; join with a"):
            a.federated_jobs.join(job_id, bytes([0xD1]) * 32, grants[b.address])
        with pytest.raises(FederatedJobsError, match=r"no valid grant .* grant its access"):
            a.federated_jobs.join(job_id, bytes([0xD0]) * 32, grants[b.address])
        gas["join"] = a.federated_jobs.join(job_id, bytes([0xD0]) * 32, grants[a.address]).gas_used
        with pytest.raises(FederatedJobsError, match="not enough participants; wait for more"):
            fl.start(job_id)
        b.federated_jobs.join(job_id, bytes([0xD1]) * 32, grants[b.address])
        with pytest.raises(FederatedJobsError, match="caller is not the requester; only the"):
            a.federated_jobs.start(job_id)
        fl.start(job_id)

        who = [a.address, b.address]
        gas["anchor_round(2)"] = fl.anchor_round(job_id, 1, MODEL1, ROOT, who, [3, 1], []).gas_used
        with pytest.raises(ConfigError, match="name each institution once"):
            fl.anchor_round(job_id, 2, MODEL2, ROOT, [a.address], [1], [a.address])
        with pytest.raises(FederatedJobsError, match="rounds are anchored in order; anchor the"):
            fl.anchor_round(job_id, 3, MODEL2, ROOT, [a.address], [1], [])
        fl.anchor_round(job_id, 2, MODEL2, ROOT, [b.address], [2], [a.address])

        before = {p.address: p.token.balance_of(p.address) for p in (requester, a, b)}
        gas["finish(2)"] = fl.finish(job_id).gas_used
        print(gas)
        after = {p.address: p.token.balance_of(p.address) for p in (requester, a, b)}
        share_a, share_b = REWARD * 3 // 6, REWARD * 3 // 6
        assert after[a.address] - before[a.address] == share_a + STAKE
        assert after[b.address] - before[b.address] == share_b + STAKE
        assert after[requester.address] == before[requester.address]  # no remainder

        reader = b.federated_jobs
        job = reader.job(job_id)
        assert job is not None
        assert (job.requester, job.status, job.rounds_done, job.score_total) == (
            requester.address,
            JobState.FINISHED,
            2,
            6,
        )
        assert job.task == task
        assert reader.job(job_id + 1) is None
        assert reader.members(job_id) == [
            Membership(a.address, bytes([0xD0]) * 32, grants[a.address], 3),
            Membership(b.address, bytes([0xD1]) * 32, grants[b.address], 3),
        ]
        rounds = reader.rounds(job_id, start_block)
        assert [(r.round, r.model_hash, r.commitments_root) for r in rounds] == [
            (1, MODEL1, ROOT),
            (2, MODEL2, ROOT),
        ]
        assert [(r.aggregated, r.scores, r.dropped) for r in rounds] == [
            ((a.address, b.address), (3, 1), ()),
            ((b.address,), (2,), (a.address,)),
        ]
        assert reader.payouts(job_id, start_block) == {
            a.address: (share_a, STAKE),
            b.address: (share_b, STAKE),
        }
        with pytest.raises(FederatedJobsError, match="job not running; the job is not running"):
            fl.finish(job_id)
