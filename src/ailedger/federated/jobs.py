"""Posting, joining and reading federated jobs: the on-chain acts around the rounds.

- :func:`post_job` hashes the task and the validation set, approves and escrows the
  reward pool, and posts the job;
- :func:`join_job` checks before any gas that the dataset is this home's and that the
  requester's grant covers the job's purpose, approves the stake and joins;
- :func:`job_report` reads a job back: members, anchored rounds, payouts;
- :func:`job_result` is what the job made: the model its last round anchored (and
  whether a model file is it), each institution's share of the scores and its pay.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ailedger.errors import ConfigError
from ailedger.federated.task import Task, read_task, validation_digest

if TYPE_CHECKING:
    from ailedger.chain.contracts.federated_jobs import (
        AnchoredRound,
        FederatedJob,
        Membership,
    )
    from ailedger.session import Session


SECURE_MINIMUM = 3  # institutions a job under secure aggregation needs each round


@dataclass(frozen=True)
class Posted:
    job_id: int
    tx_hash: str


@dataclass(frozen=True)
class JobReport:
    job: FederatedJob
    members: list[Membership]
    rounds: list[AnchoredRound]
    payouts: dict[str, tuple[int, int]]

    def as_json(self) -> dict[str, Any]:
        from ailedger.chain.contracts.data_market import purpose_names

        task = self.job.task
        return {
            "job": self.job.job_id,
            "requester": self.job.requester,
            "status": self.job.status.name.lower(),
            "purpose": purpose_names(task.purpose),
            "rounds": task.rounds,
            "rounds_done": self.job.rounds_done,
            "participants": {"min": task.min_participants, "max": task.max_participants},
            "reward": str(task.reward),
            "stake": str(task.stake),
            "members": [
                {
                    "institution": m.institution,
                    "dataset": "0x" + m.dataset_id.hex(),
                    "grant": m.grant_id,
                    "score": m.score,
                }
                for m in self.members
            ],
            "anchored": [
                {
                    "round": r.round,
                    "model_hash": "0x" + r.model_hash.hex(),
                    "aggregated": list(r.aggregated),
                    "scores": list(r.scores),
                    "dropped": list(r.dropped),
                }
                for r in self.rounds
            ],
            "payouts": {
                who: {"reward": str(reward), "stake": str(stake)}
                for who, (reward, stake) in self.payouts.items()
            },
        }


def post_job(
    session: Session,
    task_file: Path,
    validation: Path,
    *,
    purpose: int,
    rounds: int,
    min_participants: int,
    max_participants: int,
    reward: int,
    stake: int,
    join_window_s: int,
    run_window_s: int,
) -> Posted:
    """Post a federated job over ``task_file`` and ``validation``, escrowing ``reward``."""
    from ailedger.chain.contracts.federated_jobs import FederatedTask, check_task
    from ailedger.units import format_amount

    task = read_task(task_file)
    if task.secure_aggregation and min_participants < SECURE_MINIMUM:
        raise ConfigError(
            f"secure aggregation hides an update among the others: a job under it needs "
            f"--min {SECURE_MINIMUM} or more (one left alone, or one of two, is not hidden)"
        )
    now = int(time.time())
    posted = FederatedTask(
        task.digest(),
        validation_digest(validation),
        purpose,
        rounds,
        min_participants,
        max_participants,
        stake,
        reward,
        now + join_window_s,
        now + join_window_s + run_window_s,
    )
    check_task(posted)
    held = session.token.balance_of(session.address)
    if held < reward:
        raise ConfigError(
            f"the reward pool is {format_amount(reward)} and the account holds "
            f"{format_amount(held)}; get tokens first"
        )
    _approve(session, reward)
    job_id, result = session.federated_jobs.post(posted)
    return Posted(job_id, result.tx_hash)


def check_posted_task(session: Session, job_id: int, task_file: Path) -> Task:
    """The task in ``task_file``, if it is the one job ``job_id`` posted (by hash)."""
    job = session.federated_jobs.job(job_id)
    if job is None:
        raise ConfigError(f"there is no federated job {job_id} on chain")
    task = read_task(task_file)
    if task.digest() != job.task.task_hash:
        raise ConfigError(
            f"{task_file} is not the task job {job_id} posted (its hash differs): ask the "
            "requester for the file it posted"
        )
    return task


def join_job(session: Session, job_id: int, dataset_id: bytes, grant_id: int) -> str:
    """Join ``job_id`` with this home's ``dataset_id`` under the requester's ``grant_id``;
    refused before any gas when the chain would refuse it; returns the tx hash."""
    from ailedger.chain.contracts.federated_jobs import JobState
    from ailedger.units import format_amount

    jobs = session.federated_jobs
    job = jobs.job(job_id)
    if job is None or job.status != JobState.OPEN:
        state = job.status.name.lower() if job else "unknown"
        raise ConfigError(f"federated job {job_id} is {state}: it takes no one")
    record = session.data_market.dataset(dataset_id)
    if record is None or record.owner.lower() != session.address.lower():
        raise ConfigError(f"dataset 0x{dataset_id.hex()} is not this home's: join with your own")
    if not session.data_market.check_access(grant_id, job.requester, dataset_id, job.task.purpose):
        raise ConfigError(
            f"grant {grant_id} does not let {job.requester} use this dataset for the job's "
            "purpose now: grant the requester's access request for that purpose first"
        )
    held = session.token.balance_of(session.address)
    if held < job.task.stake:
        raise ConfigError(
            f"the job's stake is {format_amount(job.task.stake)} and the account holds "
            f"{format_amount(held)}; get tokens first"
        )
    _approve(session, job.task.stake)
    return jobs.join(job_id, dataset_id, grant_id).tx_hash


def job_report(session: Session, job_id: int) -> JobReport:
    jobs = session.federated_jobs
    job = jobs.job(job_id)
    if job is None:
        raise ConfigError(f"there is no federated job {job_id} on chain")
    start = session.deployment.block
    return JobReport(
        job, jobs.members(job_id), jobs.rounds(job_id, start), jobs.payouts(job_id, start)
    )


@dataclass(frozen=True)
class Contribution:
    institution: str
    dataset: str
    grant: int
    score: int
    share: float  # of all members' scores; the reward pool is paid out in this proportion
    reward: int | None  # paid on chain; None before the job is paid out


@dataclass(frozen=True)
class JobResult:
    report: JobReport
    final_model: str | None  # 0x hash of the model the last round anchored
    contributions: list[Contribution]
    model_matches: bool | None  # the given model file is the final model (None: none given)

    def as_json(self) -> dict[str, Any]:
        return {
            "job": self.report.job.job_id,
            "status": self.report.job.status.name.lower(),
            "rounds_anchored": len(self.report.rounds),
            "final_model": self.final_model,
            "model_matches": self.model_matches,
            "contributions": [
                {
                    "institution": c.institution,
                    "dataset": c.dataset,
                    "grant": c.grant,
                    "score": c.score,
                    "share": c.share,
                    "reward": None if c.reward is None else str(c.reward),
                }
                for c in self.contributions
            ],
        }


def job_result(session: Session, job_id: int, model_dir: Path | None = None) -> JobResult:
    """What job ``job_id`` made, from the chain; with ``model_dir``, whether its
    ``model.json`` is the model the last round anchored."""
    from ailedger.federated.model_file import is_anchored_model

    report = job_report(session, job_id)
    final = "0x" + report.rounds[-1].model_hash.hex() if report.rounds else None
    total = sum(m.score for m in report.members)
    paid = {who.lower(): reward for who, (reward, _) in report.payouts.items()}
    contributions = [
        Contribution(
            m.institution,
            "0x" + m.dataset_id.hex(),
            m.grant_id,
            m.score,
            m.score / total if total else 0.0,
            paid.get(m.institution.lower()) if paid else None,
        )
        for m in report.members
    ]
    matches = None
    if model_dir is not None:
        if final is None:
            raise ConfigError(f"federated job {job_id} anchored no round: there is no model")
        matches = is_anchored_model(model_dir, final, report.job.task.task_hash)
    return JobResult(report, final, contributions, matches)


def _approve(session: Session, amount: int) -> None:
    if amount == 0:
        return
    spender = session.deployment.address("FederatedJobs")
    if session.token.allowance(session.address, spender) < amount:
        session.token.approve(spender, amount)
