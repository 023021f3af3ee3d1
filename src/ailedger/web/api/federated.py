"""Federated learning over the REST API (``/api/v1/federated/jobs``): the federated jobs
on chain, one job as ``ailedger fl status --json`` shows it, and joining one.

Each route calls what ``ailedger fl`` calls (:mod:`ailedger.federated.jobs`). Reading
comes from the chain alone, so any signed-in user may; joining stakes this home's tokens
and names one of its datasets, so it is the operator's.

The FederatedJobs client reads one job by id but has no count of jobs. Ids run 1, 2, ...
and a job is never deleted (a cancelled one keeps its record), so :func:`job_count`
finds the last id that exists with O(log n) reads of ``job``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Final

from fastapi import APIRouter, Depends, Query
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from ailedger.errors import NotFoundError
from ailedger.federated.jobs import job_report, join_job
from ailedger.units import MAX_UINT256
from ailedger.web.api._refusals import as_refusals
from ailedger.web.api.bodies import documented, json_body
from ailedger.web.api.sharing import DATASET_ID, dataset_bytes
from ailedger.web.deps import Context, Operator, SignedIn

if TYPE_CHECKING:
    from ailedger.federated.jobs import JobReport
    from ailedger.session import Session

PREFIX: Final = "/api/v1/federated"
PAGE: Final = 50
MAX_BODY: Final = 4 * 1024
JobId = Annotated[int, PathParam(ge=0, le=MAX_UINT256, description="The federated job id.")]
Offset = Annotated[int, Query(ge=0, le=10**9, description="Skip so many of the newest.")]


class JoinIn(BaseModel):
    dataset: str = Field(pattern=DATASET_ID, description="One of this home's datasets.")
    grant: int = Field(ge=0, le=MAX_UINT256, description="The requester's grant of it.")


class JoinedOut(BaseModel):
    job: int
    tx: str


@dataclass(frozen=True)
class JobRow:
    """A job as the list shows it; ``joined``: this home is one of its members."""

    job_id: int
    requester: str
    purpose: list[str]
    status: str
    rounds_done: int
    rounds: int
    participants: int
    reward: int
    joined: bool

    def as_json(self) -> dict[str, Any]:
        return {**vars(self), "reward": str(self.reward)}


def job_rows(session: Session, offset: int = 0, limit: int = PAGE) -> tuple[list[JobRow], int]:
    """A page of the jobs on chain, newest first, and how many there are."""
    from ailedger.chain.contracts.data_market import purpose_names

    jobs, me = session.federated_jobs, session.address.lower()
    with as_refusals():
        total = jobs.count()
        rows = []
        for job_id in range(total - offset, max(total - offset - limit, 0), -1):
            job = jobs.job(job_id)
            if job is None:  # cannot happen (jobs are never deleted); skip rather than guess
                continue
            members = [m.institution.lower() for m in jobs.members(job_id)]
            rows.append(
                JobRow(
                    job_id,
                    job.requester,
                    purpose_names(job.task.purpose),
                    job.status.name.lower(),
                    job.rounds_done,
                    job.task.rounds,
                    len(members),
                    job.task.reward,
                    me in members,
                )
            )
    return rows, total


def report(session: Session, job_id: int) -> JobReport:
    """``job_id``'s report, or a 404 that says there is no such job."""
    with as_refusals():
        if session.federated_jobs.job(job_id) is None:
            raise NotFoundError(f"there is no federated job {job_id} on chain")
        return job_report(session, job_id)


def join(ctx: Context, job_id: int, dataset: str, grant: int) -> str:
    """Join ``job_id`` with this home's ``dataset``; every refusal is a 4xx with its reason."""
    number = dataset_bytes(dataset)
    with ctx.writing(), as_refusals():
        return join_job(ctx.session, job_id, number, grant)


def router() -> APIRouter:
    api = APIRouter(prefix=PREFIX, tags=["federated learning"])

    @api.get("/jobs")
    def jobs(ctx: Context, user: SignedIn, offset: Offset = 0) -> dict[str, Any]:
        """The federated jobs on chain, newest first (a page of 50); ``joined``: this
        home is a member."""
        rows, total = job_rows(ctx.session, offset)
        return {"jobs": [r.as_json() for r in rows], "total": total, "offset": offset}

    @api.get("/jobs/{job_id}")
    def job(job_id: JobId, ctx: Context, user: SignedIn) -> dict[str, Any]:
        """One job as the chain records it (``ailedger fl status --json``): members with
        their scores, anchored rounds, payouts."""
        return report(ctx.session, job_id).as_json()

    @api.post("/jobs/{job_id}/join", response_model=JoinedOut, openapi_extra=documented(JoinIn))
    def join_route(
        job_id: JobId,
        ctx: Context,
        user: Operator,
        body: Annotated[JoinIn, Depends(json_body(JoinIn, MAX_BODY))],
    ) -> JoinedOut:
        """Join an open job with one of this home's datasets under the requester's grant
        for the job's purpose; stakes the job's stake (``ailedger fl join``)."""
        return JoinedOut(job=job_id, tx=join(ctx, job_id, body.dataset, body.grant))

    return api
