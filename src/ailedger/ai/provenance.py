"""A model's provenance: its lineage read from the chain, and checked against it hop by hop.

Lineage is what a passport's signed part says a model came from: the compute jobs that
trained it (each with the hash of the output the market settled on), the datasets those
jobs read with the grant and purpose of each, and the privacy spend charged for it where
it was trained privately. :func:`jobs_lineage` builds the job and dataset parts from the
chain alone (the ``JobPosted`` event names each dataset's grant), so a passport never
states them from memory. :func:`check_lineage` re-derives every hop for a verifier:

* each job is COMPLETED, was posted by the model's owner, and settled on the output hash
  the lineage names;
* each job's grants were for model training, and each grant was granted (not pending,
  denied or cancelled) and had not expired when the job was posted;
* each privacy charge the lineage names is on the dataset's PrivacyLedger, a training
  charged to the model's owner, with the epsilon the lineage states.

A model trained by a federated job (:func:`federated_lineage`) names the job and the
global model its last round anchored; its datasets are the members whose updates were
aggregated, each with the grant it joined under, and its privacy spend the charges the
institutions' desks made for the job's rounds. The verifier checks that the job FINISHED,
was the owner's, and anchored that model last; that each dataset joined the job under a
training grant of the owner's, in force when the job's first round was anchored.

Each check answers with a reason, so ``ailedger model verify`` can say which hop failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ailedger.ai.lineage import (
    DatasetUse,
    FederatedTraining,
    Lineage,
    PrivacyCharge,
    TrainingJob,
)
from ailedger.chain.contracts.compute_market import JobStatus
from ailedger.chain.contracts.data_market import PURPOSES, GrantStatus, purpose_names
from ailedger.errors import ConfigError

if TYPE_CHECKING:
    from ailedger.chain.contracts.federated_jobs import AnchoredRound, FederatedJob
    from ailedger.session import Session

MODEL_TRAINING = PURPOSES["model-training"]
EPSILON_TOLERANCE = 1e-6


def is_job_output(model_dir: Path, job_output_hash: str) -> bool:
    """Whether ``model_dir`` holds exactly the output the market settled a job on (the
    passport's card and lineage, added since, left out)."""
    from ailedger.ai.passport import CARD_FILE, LINEAGE_FILE
    from ailedger.compute.outputs import output_hash

    found = output_hash(model_dir, without={CARD_FILE, LINEAGE_FILE})
    return "0x" + found.hex() == job_output_hash.lower()


@dataclass(frozen=True)
class Hop:
    """One lineage check: what was checked, and whether the chain agrees."""

    what: str
    ok: bool
    reason: str = ""


def jobs_lineage(
    session: Session, jobs: Sequence[int]
) -> tuple[tuple[TrainingJob, ...], tuple[DatasetUse, ...]]:
    """The training jobs and datasets of a lineage for this home's jobs, from the chain;
    refuses a job that is not this home's, not completed, or not over training grants."""
    market = session.compute_market
    posted = _posted_events(session, session.address)
    training: list[TrainingJob] = []
    datasets: list[DatasetUse] = []
    for job in jobs:
        info = market.job(job)
        if info is None or info.requester.lower() != session.address.lower():
            raise ConfigError(f"job {job} is not a job this home posted")
        if info.status != JobStatus.COMPLETED:
            raise ConfigError(
                f"job {job} is {info.status.name.lower()}, not completed: only a settled "
                "result can become a registered model"
            )
        training.append(TrainingJob(job, "0x" + info.result_hash.hex()))
        event = posted.get(job)
        if event is None:
            raise ConfigError(f"job {job}'s posting is not on this chain since its deployment")
        purpose = int(market.job_datasets(job)[1])
        if event["datasets"] and not purpose & MODEL_TRAINING:
            raise ConfigError(
                f"job {job} read its datasets for {', '.join(purpose_names(purpose))}, "
                "not model training: its output cannot become a model"
            )
        for dataset, grant in zip(event["datasets"], event["grant_ids"], strict=True):
            datasets.append(DatasetUse("0x" + bytes(dataset).hex(), int(grant)))
    return tuple(training), tuple(datasets)


@dataclass(frozen=True)
class FederatedRecord:
    """A federated job as the chain has it, read once: its anchored rounds and its
    sources (every dataset that went in, with its grant, and every privacy charge its
    desks made for the job's rounds)."""

    job: FederatedJob | None
    rounds: list[AnchoredRound]
    datasets: tuple[DatasetUse, ...]
    charges: tuple[PrivacyCharge, ...]


def federated_record(session: Session, job_id: int) -> FederatedRecord:
    """A dataset went into the job when its update was aggregated, or when its desk charged
    a round (that update left, whether or not the requester anchored it)."""
    jobs = session.federated_jobs
    job = jobs.job(job_id)
    if job is None:
        return FederatedRecord(None, [], (), ())
    rounds = jobs.rounds(job_id, session.deployment.block)
    aggregated = {a.lower() for r in rounds for a in r.aggregated}
    datasets: list[DatasetUse] = []
    charges: list[PrivacyCharge] = []
    for m in jobs.members(job_id):
        charged = _round_charges(session, job_id, job.task.rounds, m.dataset_id)
        if m.institution.lower() in aggregated or charged:
            datasets.append(DatasetUse("0x" + m.dataset_id.hex(), m.grant_id))
            charges += charged
    return FederatedRecord(job, rounds, tuple(datasets), tuple(charges))


def federated_lineage(
    session: Session, job_id: int
) -> tuple[FederatedTraining, tuple[DatasetUse, ...], tuple[PrivacyCharge, ...]]:
    """A finished federated job of this home's, from the chain: the model its last round
    anchored, and its sources (:func:`federated_record`)."""
    from ailedger.chain.contracts.federated_jobs import JobState

    record = federated_record(session, job_id)
    job = record.job
    if job is None or job.requester.lower() != session.address.lower():
        raise ConfigError(f"federated job {job_id} is not a job this home posted")
    if job.status != JobState.FINISHED:
        raise ConfigError(
            f"federated job {job_id} is {job.status.name.lower()}, not finished: only a "
            "paid-out job's model can become a registered model"
        )
    if not record.rounds:
        raise ConfigError(f"federated job {job_id} anchored no round: it trained no model")
    final = FederatedTraining(job_id, "0x" + record.rounds[-1].model_hash.hex())
    return final, record.datasets, record.charges


def _round_charges(
    session: Session, job_id: int, rounds: int, dataset_id: bytes
) -> list[PrivacyCharge]:
    """The charges an institution's desk made on ``dataset_id`` for the job's rounds (their
    ref is sha256 of ``ailedger-fl:job:round``), with each one's epsilon alone."""
    from ailedger.federated.institution import round_charge_ref
    from ailedger.privacy.accountant import spent_epsilon
    from ailedger.privacy.charges import decode_charges

    ledger = session.privacy_ledger
    budget = ledger.budget(dataset_id)
    if not budget.charges:
        return []
    refs = {round_charge_ref(job_id, r) for r in range(1, rounds + 1)}
    return [
        PrivacyCharge(
            "0x" + dataset_id.hex(),
            record.index,
            spent_epsilon([decode_charges(record.charges)], budget.delta),
        )
        for record in ledger.charges(dataset_id, session.deployment.block)
        if record.ref in refs
    ]


def _posted_events(session: Session, requester: str) -> dict[int, dict[str, Any]]:
    market = session.compute_market
    found = market.account_events(["JobPosted"], requester, session.deployment.block)
    return {int(e.args["job_id"]): {**e.args, "block": e.block_number} for e in found}


def check_lineage(
    session: Session, owner: str, lineage: Lineage, jobs_on_chain: Sequence[int]
) -> list[Hop]:
    """Every hop of ``lineage`` checked against the chain, for a model owned by ``owner``
    whose registered version names ``jobs_on_chain``."""
    hops: list[Hop] = []
    named = [j.job for j in lineage.training_jobs]
    hops.append(
        Hop(
            "the passport's jobs are the registered version's",
            sorted(named) == sorted(int(j) for j in jobs_on_chain),
            f"passport names {sorted(named)}, the chain {sorted(jobs_on_chain)}",
        )
    )
    posted = _posted_events(session, owner)
    ours = {j: posted[j] for j in named if j in posted}
    for job in lineage.training_jobs:
        hops.append(_check_job(session, owner, job, posted))
    records = {f.job: federated_record(session, f.job) for f in lineage.federated_jobs}
    for fl in lineage.federated_jobs:
        hops.append(_check_federated(owner, fl, records[fl.job]))
        hops.append(_check_complete(fl.job, records[fl.job], lineage))
    # A dataset is checked against the compute jobs that read it, else the federated jobs.
    read_by_compute = {"0x" + bytes(d).hex() for event in ours.values() for d in event["datasets"]}
    for used in lineage.datasets:
        if used.dataset.lower() in read_by_compute or not records:
            hops.append(_check_grant(session, owner, used, ours))
        else:
            hops.append(_check_membership(session, owner, used, records))
    for charge in lineage.privacy:
        hops.append(_check_privacy(session, owner, charge))
    return hops


def _check_job(
    session: Session, owner: str, job: TrainingJob, posted: dict[int, dict[str, Any]]
) -> Hop:
    job_id = job.job
    what = f"job {job_id} completed for {owner} with the named output"
    info = session.compute_market.job(job_id)
    if info is None:
        return Hop(what, False, f"there is no job {job_id} on chain")
    if info.requester.lower() != owner.lower():
        return Hop(what, False, f"job {job_id} was posted by {info.requester}, not the owner")
    if info.status != JobStatus.COMPLETED:
        return Hop(what, False, f"job {job_id} is {info.status.name.lower()}")
    if "0x" + info.result_hash.hex() != job.output_hash.lower():
        return Hop(what, False, f"job {job_id} settled on another output hash")
    if job_id not in posted:
        return Hop(what, False, f"job {job_id}'s posting is not found")
    return Hop(what, True)


def _check_grant(
    session: Session, owner: str, used: DatasetUse, posted: dict[int, dict[str, Any]]
) -> Hop:
    """``used`` must be read by one of the lineage's jobs (``posted``, its JobPosted
    events) under a grant of the owner's for model training, valid when it was posted."""
    dataset, grant_id = used.dataset.lower(), used.grant
    what = f"dataset {dataset[:18]}… granted for model training (grant {grant_id})"
    reading = [
        (job, event)
        for job, event in posted.items()
        if (dataset, grant_id)
        in {
            ("0x" + bytes(d).hex(), int(g))
            for d, g in zip(event["datasets"], event["grant_ids"], strict=True)
        }
    ]
    if not reading:
        return Hop(what, False, f"no job of the lineage read {dataset} under grant {grant_id}")
    grant = session.data_market.grant_info(grant_id)
    if grant is None or grant.requester.lower() != owner.lower():
        return Hop(what, False, f"grant {grant_id} is not the owner's")
    if not grant.purpose & MODEL_TRAINING:
        allowed = ", ".join(purpose_names(grant.purpose)) or "nothing"
        return Hop(what, False, f"grant {grant_id} was for {allowed}, not model training")
    if grant.status in (GrantStatus.PENDING, GrantStatus.DENIED, GrantStatus.CANCELLED):
        return Hop(what, False, f"grant {grant_id} was never granted")
    job, event = reading[0]
    posted_at = int(session.chain.web3.eth.get_block(int(event["block"]))["timestamp"])
    if grant.expires_at and grant.expires_at < posted_at:
        return Hop(what, False, f"grant {grant_id} had expired when job {job} was posted")
    return Hop(what, True)


def _check_federated(owner: str, fl: FederatedTraining, record: FederatedRecord) -> Hop:
    from ailedger.chain.contracts.federated_jobs import JobState

    what = f"federated job {fl.job} finished for {owner} with the named model last"
    job = record.job
    if job is None:
        return Hop(what, False, f"there is no federated job {fl.job} on chain")
    if job.requester.lower() != owner.lower():
        return Hop(what, False, f"federated job {fl.job} was posted by {job.requester}")
    if job.status != JobState.FINISHED:
        return Hop(what, False, f"federated job {fl.job} is {job.status.name.lower()}")
    rounds = record.rounds
    if not rounds or "0x" + rounds[-1].model_hash.hex() != fl.model_hash.lower():
        return Hop(what, False, f"federated job {fl.job}'s last anchored model is another")
    return Hop(what, True)


def _check_complete(job_id: int, record: FederatedRecord, lineage: Lineage) -> Hop:
    """A lineage must name all that went into the job, not only what its owner chose."""
    what = f"the lineage names every dataset and privacy charge of federated job {job_id}"
    named = {(d.dataset.lower(), d.grant) for d in lineage.datasets}
    left_out = [d.dataset for d in record.datasets if (d.dataset, d.grant) not in named]
    if left_out:
        return Hop(what, False, f"it leaves out dataset(s) {', '.join(left_out)}")
    charged = {(p.dataset.lower(), p.charge_index) for p in lineage.privacy}
    unnamed = [
        f"{c.dataset[:18]}… #{c.charge_index}"
        for c in record.charges
        if (c.dataset, c.charge_index) not in charged
    ]
    if unnamed:
        return Hop(what, False, f"it leaves out privacy charge(s) {', '.join(unnamed)}")
    return Hop(what, True)


def _check_membership(
    session: Session, owner: str, used: DatasetUse, records: dict[int, FederatedRecord]
) -> Hop:
    """``used`` must have gone into one of the lineage's federated jobs under its grant
    (:func:`federated_record`), and the grant be the owner's, for model training, in
    force when the job's first round was anchored."""
    dataset, grant_id = used.dataset.lower(), used.grant
    what = f"dataset {dataset[:18]}… joined for model training (grant {grant_id})"
    for job_id, record in sorted(records.items()):
        if (dataset, grant_id) not in {(d.dataset, d.grant) for d in record.datasets}:
            continue
        grant = session.data_market.grant_info(grant_id)
        if grant is None or grant.requester.lower() != owner.lower():
            return Hop(what, False, f"grant {grant_id} is not the owner's")
        if not grant.purpose & MODEL_TRAINING:
            return Hop(what, False, f"grant {grant_id} was not for model training")
        if grant.status in (GrantStatus.PENDING, GrantStatus.DENIED, GrantStatus.CANCELLED):
            return Hop(what, False, f"grant {grant_id} was never granted")
        if record.rounds:
            first = int(session.chain.web3.eth.get_block(record.rounds[0].block)["timestamp"])
            if grant.expires_at and grant.expires_at < first:
                return Hop(what, False, f"grant {grant_id} had expired when job {job_id} trained")
        return Hop(what, True)
    return Hop(what, False, f"no federated job of the lineage aggregated or charged {dataset}")


def _check_privacy(session: Session, owner: str, charge: PrivacyCharge) -> Hop:
    dataset, index = charge.dataset, charge.charge_index
    what = f"privacy spend on {dataset[:18]}… (charge {index})"
    try:
        records = session.privacy_ledger.charges(
            bytes.fromhex(dataset[2:]), session.deployment.block
        )
    except ValueError:
        return Hop(what, False, f"{dataset} is not a dataset id")
    record = next((r for r in records if r.index == index), None)
    if record is None:
        return Hop(what, False, f"there is no charge {index} on {dataset}")
    if record.buyer.lower() != owner.lower() or record.kind.name != "TRAINING":
        return Hop(what, False, f"charge {index} is not a training charged to the owner")
    from ailedger.privacy.accountant import spent_epsilon
    from ailedger.privacy.charges import decode_charges

    budget = session.privacy_ledger.budget(bytes.fromhex(dataset[2:]))
    epsilon = spent_epsilon([decode_charges(record.charges)], budget.delta)
    if abs(epsilon - charge.epsilon) > max(EPSILON_TOLERANCE, 1e-3 * epsilon):
        return Hop(what, False, f"charge {index} cost epsilon {epsilon:.4f}, not as stated")
    return Hop(what, True)
