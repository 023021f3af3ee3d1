"""Running a federated job: the requester's rounds and an institution's SuperNode.

:func:`coordinate` is `ailedger fl run`: it starts the job on chain (when enough
institutions joined), serves the coordinator's loopback desk, starts a SuperLink, submits
the Flower app, follows the rounds (each anchored by the coordinator), then finishes the
job on chain (the pool paid out by the anchored scores) and writes the final model.

:func:`institution_running` is what `ailedger fl serve` holds open: the institution's
desk and its SuperNode, connected to the requester's SuperLink. The requester's ClientApp
only relays each round's order to the desk, which checks consent and privacy terms, trains
in this process on the decrypted table and answers the update alone
(:mod:`ailedger.federated.institution`): the data never reaches the requester's code.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ailedger.errors import ConfigError
from ailedger.federated.coordinator import Coordinator, RoundOutcome
from ailedger.federated.model_file import write_model
from ailedger.federated.task import Task, read_task

if TYPE_CHECKING:
    from ailedger.federated.flower import RunStatus, SuperNode
    from ailedger.session import Session

Say = Callable[[str], None]
POLL_S = 2.0
MODEL_DIR = "model"  # under the workdir: model.json alone, ready for `fl result --register`


@dataclass(frozen=True)
class Coordinated:
    job_id: int
    rounds: list[RoundOutcome]
    accuracy: float
    model: Path
    status: RunStatus
    payouts: dict[str, tuple[int, int]]


def coordinate(
    session: Session,
    job_id: int,
    task_file: Path,
    validation: Path,
    workdir: Path,
    say: Say,
    *,
    round_timeout: float = 120.0,
    institutions: Callable[[str], AbstractContextManager[Any]] | None = None,
) -> Coordinated:
    """Run job ``job_id``'s rounds and pay them out. ``institutions(superlink_address)``
    is entered once the SuperLink listens (the demo and tests start their institutions'
    SuperNodes there); institutions elsewhere connect within ``round_timeout``."""
    from ailedger.chain.contracts.federated_jobs import JobState
    from ailedger.federated.flower import start_superlink, submit_run, wait_run
    from ailedger.federated.http import coordinator_app, new_token
    from ailedger.peer.background import BackgroundServer

    task = read_task(task_file)
    coordinator = Coordinator(session, job_id, task, validation, say)
    job = coordinator.job
    if job.status == JobState.OPEN:
        session.federated_jobs.start(job_id)
        say(f"job {job_id} started on chain: joining is closed")
    elif job.status != JobState.RUNNING:
        raise ConfigError(f"job {job_id} is {job.status.name.lower()}: nothing to run")
    token = new_token()
    workdir.mkdir(parents=True, exist_ok=True)
    with (
        BackgroundServer(coordinator_app(coordinator, token)) as url,
        start_superlink(workdir) as link,
    ):
        say(
            f"SuperLink listening at {link.address}: institutions run "
            f"`ailedger fl serve {job_id} --superlink {link.address}`"
        )
        with institutions(link.address) if institutions else nullcontext():
            config = _run_config(url, token, job_id, task, job.task, round_timeout)
            run_id = submit_run(link, config)
            status = wait_run(link, run_id, timeout=_run_timeout(job.task.rounds, round_timeout))
    model = write_model(
        workdir / MODEL_DIR,
        task,
        list(coordinator.weights),
        coordinator.accuracy(),
        len(coordinator.outcomes),
    )
    session.federated_jobs.finish(job_id)
    payouts = session.federated_jobs.payouts(job_id, session.deployment.block)
    return Coordinated(job_id, coordinator.outcomes, coordinator.accuracy(), model, status, payouts)


def _run_config(
    url: str, token: str, job_id: int, task: Task, posted: Any, round_timeout: float
) -> dict[str, str | int | float]:
    return {
        "coordinator-url": url,
        "coordinator-token": token,
        "job": job_id,
        "rounds": posted.rounds,
        "round-timeout": float(round_timeout),
        "min-nodes": posted.min_participants,
        "task": json.dumps(task.as_json()),
    }


def _run_timeout(rounds: int, round_timeout: float) -> float:
    # Waiting for nodes, then each round's training and its anchoring, with room to spare.
    return round_timeout * (rounds + 2) + 60.0


@contextmanager
def institution_running(
    session: Session,
    job_id: int,
    superlink: str,
    workdir: Path,
    say: Say = lambda _: None,
) -> Iterator[SuperNode]:
    """This institution's consent desk and SuperNode for ``job_id``, while open."""
    from ailedger.federated.flower import start_supernode
    from ailedger.federated.http import institution_app, new_token
    from ailedger.federated.institution import InstitutionDesk
    from ailedger.peer.background import BackgroundServer
    from ailedger.sharing.owner import OwnerNode

    token = new_token()
    with OwnerNode(session) as node:
        desk = InstitutionDesk(node, job_id, say)
        try:
            with BackgroundServer(institution_app(desk, token)) as url:
                config = {
                    "institution": session.address,
                    "dataset": "0x" + desk.member.dataset_id.hex(),
                    "consent-url": url,
                    "consent-token": token,
                }
                with start_supernode(superlink, config, workdir) as supernode:
                    yield supernode
        finally:
            desk.close()


def serve_institution(
    session: Session, job_id: int, superlink: str, workdir: Path, say: Say
) -> str:
    """Serve until the job is finished or cancelled on chain; returns its final state."""
    from ailedger.chain.contracts.federated_jobs import JobState

    with institution_running(session, job_id, superlink, workdir, say) as supernode:
        from ailedger.federated.flower import supernode_confinement

        confined = supernode_confinement()
        say(
            f"SuperNode connected to {superlink}; this node consents round by round; the "
            + (
                f"requester's ClientApp runs confined ({confined}): it sees neither this home "
                "nor this process"
                if confined
                else "requester's ClientApp runs UNCONFINED (bubblewrap cannot run here): "
                "install bubblewrap, or serve only jobs whose requester you trust"
            )
        )
        while True:
            job = session.federated_jobs.job(job_id)
            if job is None or job.status in (JobState.FINISHED, JobState.CANCELLED):
                return job.status.name.lower() if job else "unknown"
            if not supernode.alive():
                raise ConfigError(f"the SuperNode stopped; its log: {supernode.log_path}")
            time.sleep(POLL_S)
