"""The FederatedJobs contract: federated tasks with escrowed reward pools, institutions
joining with their dataset and grant, rounds anchored with contribution scores, and the
payout pro rata to those scores (see ``contracts/FederatedJobs.vy``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from ailedger.chain.contracts._base import ContractClient
from ailedger.chain.contracts.data_market import PURPOSES
from ailedger.chain.transactions import TxResult
from ailedger.errors import ConfigError, ContractError, TransactionRevertedError

MAX_PARTICIPANTS = 32
MAX_ROUNDS = 1000
MAX_SCORE = 10**30
_ZERO = b"\0" * 32

_ADVICE = {
    "fl: job not open": "the job has started, finished or was cancelled: read its status first",
    "fl: joining closed": "the join deadline passed: ask the requester to post again",
    "fl: already joined": "this account is in the job already",
    "fl: job is full": "the job has its maximum of participants",
    "fl: not the dataset's owner": "join with a dataset this account published",
    "fl: no valid grant for the purpose": (
        "the requester needs a valid grant of this dataset for the job's purpose: grant "
        "its access request first (`ailedger data grant`)"
    ),
    "fl: not enough participants": "wait for more institutions to join",
    "fl: caller is not the requester": "only the job's requester may do this",
    "fl: a participant's grant is no longer valid": (
        "leave out institutions whose grant was revoked or expired"
    ),
    "fl: job not running": "the job is not running (not started, or ended): read its status",
    "fl: rounds are anchored in order": "anchor the round after the job's rounds_done",
    "fl: all rounds already anchored": "every round of the task is anchored: finish the job",
    "fl: institution listed twice": "name each institution once per round",
    "fl: not a participant": "aggregate only institutions that joined the job",
    "fl: dropped one is not a participant": "list as dropped only institutions that joined",
    "fl: dropped one was aggregated": "an institution is either aggregated or dropped",
    "fl: only the requester, before the join deadline": (
        "others may cancel only once the join deadline passed"
    ),
    "fl: only the requester, before the run deadline": (
        "others may finish only once the run deadline passed"
    ),
    # The pool (post) and the stake (join) are pulled from the caller.
    "transferFrom: amount exceeds allowance": (
        "approve the FederatedJobs contract for the reward or stake first"
    ),
    "transfer: amount exceeds balance": "the account lacks the tokens for the reward or stake",
}


class JobState(IntEnum):
    NONE = 0
    OPEN = 1
    RUNNING = 2
    FINISHED = 3
    CANCELLED = 4


@dataclass(frozen=True)
class FederatedTask:
    """What a requester posts."""

    task_hash: bytes
    validation_hash: bytes
    purpose: int
    rounds: int
    min_participants: int
    max_participants: int
    stake: int
    reward: int
    join_deadline: int
    run_deadline: int


@dataclass(frozen=True)
class FederatedJob:
    job_id: int
    requester: str
    task: FederatedTask
    status: JobState
    rounds_done: int
    score_total: int


@dataclass(frozen=True)
class Membership:
    institution: str
    dataset_id: bytes
    grant_id: int
    score: int


@dataclass(frozen=True)
class AnchoredRound:
    job_id: int
    round: int
    model_hash: bytes
    commitments_root: bytes
    aggregated: tuple[str, ...]
    scores: tuple[int, ...]
    dropped: tuple[str, ...]
    block: int


class FederatedJobsError(TransactionRevertedError):
    """The FederatedJobs contract refused; the message says why and what to do."""


def check_task(task: FederatedTask) -> None:
    """Refuse, before any gas, a task the contract would refuse."""
    for name, value in (("task hash", task.task_hash), ("validation hash", task.validation_hash)):
        if len(value) != 32 or value == _ZERO:
            raise ConfigError(f"the {name} must be 32 nonzero bytes")
    if task.purpose not in PURPOSES.values():
        # A bit the DataMarket does not know would be posted, and nobody could join.
        raise ConfigError(
            f"a federated task names exactly one purpose of {sorted(PURPOSES.values())}, "
            f"not {task.purpose}"
        )
    if not 1 <= task.rounds <= MAX_ROUNDS:
        raise ConfigError(f"rounds must be 1 .. {MAX_ROUNDS}, not {task.rounds}")
    if not 1 <= task.min_participants <= task.max_participants <= MAX_PARTICIPANTS:
        raise ConfigError(
            f"participants: 1 <= min ({task.min_participants}) <= max "
            f"({task.max_participants}) <= {MAX_PARTICIPANTS}"
        )
    if task.stake < 0 or task.reward < 0:
        raise ConfigError("stake and reward are 0 or more base units")
    if task.run_deadline <= task.join_deadline:
        raise ConfigError("the run deadline must come after the join deadline")


class FederatedJobsClient(ContractClient):
    """Post, join, start, anchor rounds, finish or cancel; read jobs and their rounds."""

    contract_name = "FederatedJobs"

    def post(self, task: FederatedTask) -> tuple[int, TxResult]:
        """Post ``task`` and escrow its reward (approve the tokens first); the job id."""
        from web3.logs import DISCARD

        check_task(task)
        result = self._refusing(
            "post",
            task.task_hash,
            task.validation_hash,
            task.purpose,
            task.rounds,
            task.min_participants,
            task.max_participants,
            task.stake,
            task.reward,
            task.join_deadline,
            task.run_deadline,
        )
        events = self._contract.events.JobPosted().process_receipt(result.receipt, errors=DISCARD)
        if not events:
            raise ContractError(f"post {result.tx_hash} emitted no JobPosted")
        return int(events[0]["args"]["job_id"]), result

    def join(self, job_id: int, dataset_id: bytes, grant_id: int) -> TxResult:
        """Join with a dataset this account owns under the requester's grant (stakes)."""
        if len(dataset_id) != 32:
            raise ConfigError(f"a dataset id is 32 bytes, not {len(dataset_id)}")
        return self._refusing("join", job_id, dataset_id, grant_id)

    def start(self, job_id: int) -> TxResult:
        return self._refusing("start", job_id)

    def cancel(self, job_id: int) -> TxResult:
        return self._refusing("cancel", job_id)

    def anchor_round(
        self,
        job_id: int,
        round_no: int,
        model_hash: bytes,
        commitments_root: bytes,
        aggregated: Sequence[str],
        scores: Sequence[int],
        dropped: Sequence[str],
    ) -> TxResult:
        """Anchor round ``round_no`` (requester only): the global model's hash, the
        commitments' root, the institutions aggregated with their scores, the dropped."""
        if len(aggregated) != len(scores) or not aggregated:
            raise ConfigError("a round aggregates someone, with one score each")
        if any(not 0 <= s <= MAX_SCORE for s in scores):
            raise ConfigError(f"scores are whole numbers 0 .. {MAX_SCORE}")
        if len(model_hash) != 32 or model_hash == _ZERO or len(commitments_root) != 32:
            raise ConfigError("the model hash (nonzero) and the commitments root are 32 bytes")
        named = [a.lower() for a in (*aggregated, *dropped)]
        if len(set(named)) != len(named) or len(dropped) > MAX_PARTICIPANTS:
            raise ConfigError("name each institution once in a round: aggregated or dropped")
        checksum = self.web3.to_checksum_address
        return self._refusing(
            "anchor_round",
            job_id,
            round_no,
            model_hash,
            commitments_root,
            [checksum(a) for a in aggregated],
            list(scores),
            [checksum(a) for a in dropped],
        )

    def finish(self, job_id: int) -> TxResult:
        return self._refusing("finish", job_id)

    # ---------------------------------------------------------------- views

    def count(self) -> int:
        """How many jobs were ever posted: ids run from 1 to this, none is deleted."""
        return int(self._read("job_count"))

    def job(self, job_id: int) -> FederatedJob | None:
        raw = self._read("job", job_id)
        fields = _fields(raw, _JOB_FIELDS)
        if int(fields["status"]) == JobState.NONE:
            return None
        task = FederatedTask(
            task_hash=bytes(fields["task_hash"]),
            validation_hash=bytes(fields["validation_hash"]),
            purpose=int(fields["purpose"]),
            rounds=int(fields["rounds"]),
            min_participants=int(fields["min_participants"]),
            max_participants=int(fields["max_participants"]),
            stake=int(fields["stake"]),
            reward=int(fields["reward"]),
            join_deadline=int(fields["join_deadline"]),
            run_deadline=int(fields["run_deadline"]),
        )
        return FederatedJob(
            job_id,
            str(fields["requester"]),
            task,
            JobState(int(fields["status"])),
            int(fields["rounds_done"]),
            int(fields["score_total"]),
        )

    def members(self, job_id: int) -> list[Membership]:
        found = []
        for who in self._read("members", job_id):
            raw = _fields(self._read("member", job_id, who), _MEMBER_FIELDS)
            found.append(
                Membership(
                    str(who), bytes(raw["dataset_id"]), int(raw["grant_id"]), int(raw["score"])
                )
            )
        return found

    def rounds(self, job_id: int, from_block: int = 0) -> list[AnchoredRound]:
        """The job's anchored rounds, in order, from the events."""
        try:
            logs = self._contract.events.RoundAnchored().get_logs(
                from_block=from_block, argument_filters={"job_id": job_id}
            )
        except Exception as exc:
            raise ContractError(f"reading FederatedJobs events failed: {exc}") from exc
        found = [
            AnchoredRound(
                job_id,
                int(e["args"]["round"]),
                bytes(e["args"]["model_hash"]),
                bytes(e["args"]["commitments_root"]),
                tuple(str(a) for a in e["args"]["aggregated"]),
                tuple(int(s) for s in e["args"]["scores"]),
                tuple(str(a) for a in e["args"]["dropped"]),
                int(e["blockNumber"]),
            )
            for e in logs
        ]
        return sorted(found, key=lambda r: r.round)

    def payouts(self, job_id: int, from_block: int = 0) -> dict[str, tuple[int, int]]:
        """(reward, stake) paid to each institution when the job finished or was cancelled."""
        try:
            logs = self._contract.events.Paid().get_logs(
                from_block=from_block, argument_filters={"job_id": job_id}
            )
        except Exception as exc:
            raise ContractError(f"reading FederatedJobs events failed: {exc}") from exc
        return {
            str(e["args"]["institution"]): (int(e["args"]["reward"]), int(e["args"]["stake"]))
            for e in logs
        }

    def _refusing(self, function: str, *args: Any) -> TxResult:
        try:
            return self._write(function, *args)
        except TransactionRevertedError as exc:
            raise _refusal(exc) from exc


_JOB_FIELDS = [
    "requester",
    "task_hash",
    "validation_hash",
    "purpose",
    "rounds",
    "min_participants",
    "max_participants",
    "stake",
    "reward",
    "join_deadline",
    "run_deadline",
    "status",
    "rounds_done",
    "score_total",
]
_MEMBER_FIELDS = ["dataset_id", "grant_id", "score", "joined"]


def _fields(raw: Any, names: list[str]) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    return dict(zip(names, raw, strict=True))


def _refusal(exc: TransactionRevertedError) -> FederatedJobsError:
    text = str(exc)
    for reason, advice in _ADVICE.items():
        if reason in text:
            return FederatedJobsError(
                f"the federated jobs contract refused: {reason.removeprefix('fl: ')}; {advice}"
            )
    return FederatedJobsError(f"the federated jobs contract refused: {text}")
