"""The compute market's REST API: a researcher's jobs (``/api/v1/jobs``) and this
machine as a provider (``/api/v1/provider``).

Each route parses, calls the one function ``ailedger job ...`` or ``ailedger provider
...`` calls (``compute.requester.job``, ``compute.requester.upload``,
``compute.provider.standing``) and answers its result; reading routes need a signed-in
user, every write the home's operator, inside ``ctx.writing()``. Job routes act only on
this home's own jobs: another requester's job id is 404 and changes nothing.

A job is submitted as ``multipart/form-data``: one ``files`` part per file of the bundle
(``job.toml`` and what it names; the part's filename is the path inside the bundle) and
the options of ``job submit`` as fields. The body is read as it arrives and refused with
413 once it passes the limit, before anything is staged or paid; names that would leave
the bundle are refused with 422.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Annotated, Any, Final

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from ailedger.compute.jobs import JobSpecError
from ailedger.compute.provider import standing
from ailedger.compute.requester import job as jobs
from ailedger.compute.requester.upload import MAX_UPLOAD_BYTES, submit_uploaded
from ailedger.errors import (
    ConfigError,
    MalformedRequestError,
    PayloadTooLargeError,
    UnprocessableError,
    UnsupportedMediaTypeError,
)
from ailedger.units import MAX_UINT256, parse_amount
from ailedger.web.api._refusals import as_refusals
from ailedger.web.deps import Context, Operator, SignedIn, WebContext

MAX_REPUTATION: Final = 2**255 - 1
MAX_WAIT_S: Final = 7 * 86400.0
MAX_FILES: Final = 1000
_DIGITS: Final = re.compile(r"[0-9]{1,78}")

JobIdText = Annotated[
    str,
    PathParam(
        description="A job id as `job submit` printed it: a whole number 0..2**256-1.",
        examples=["1"],
    ),
]


def parse_job_id(text: str) -> int:
    """A uint256 job id, or a 400 that says what one looks like."""
    if _DIGITS.fullmatch(text) and int(text) <= MAX_UINT256:
        return int(text)
    shown = text if len(text) <= 40 else text[:40] + "..."
    raise MalformedRequestError(
        f"job id {shown!r} is not a job id: give the whole number `job submit` printed "
        "(0..2**256-1)"
    )


def refusals() -> AbstractContextManager[None]:
    """The compute capability's errors as the HTTP refusals they are (``as_refusals``):
    a bad bundle, a job or provider in the wrong state, a bad amount, or a transaction
    the chain refused is the caller's to fix (422); the chain or a node away, a retry."""
    return as_refusals(JobSpecError, jobs.JobStateError, standing.StandingError)


def amount(text: str, what: str) -> int:
    try:
        return parse_amount(text)
    except ConfigError as exc:
        raise UnprocessableError(f"{what}: {exc}") from None


# ----------------------------------------------------------------------------- models


class JobSubmitOptions(BaseModel):
    """The options of ``ailedger job submit``, as form fields."""

    purpose: str = Field("", max_length=64, description="Purpose of your data grant, if any.")
    min_reputation: int = Field(0, ge=-(2**255), le=MAX_REPUTATION)
    allow_unconfined: bool = False
    wait_s: float = Field(30.0, ge=0, le=MAX_WAIT_S, description="Wait for k bids (0: don't).")
    collect_s: float = Field(0.0, ge=0, le=MAX_WAIT_S, description="Keep taking bids this long.")


class JobSubmittedOut(BaseModel):
    job_id: int
    bundle_hash: str
    escrow: str
    tx: str
    status: str
    providers: list[str]
    auction: str | None


class JobOut(BaseModel):
    job_id: int
    status: str
    escrow: str
    redundancy: int
    deadline: int
    bundle_hash: str


class JobAssignmentOut(BaseModel):
    provider: str
    price_per_hour: str
    committed: bool
    revealed: bool
    output_hash: str | None
    seconds: int
    paid: str
    output_received: bool


class JobStatusOut(BaseModel):
    job_id: int
    status: str
    requester: str
    bundle_hash: str
    redundancy: int
    escrow: str
    deadline: int
    bids: int
    assignments: list[JobAssignmentOut]
    result_hash: str | None
    log_batches: int
    auction: str | None = Field(description="What became of an auction that did not start it.")


class JobLogLine(BaseModel):
    provider: str
    line: str


class JobLogPageOut(BaseModel):
    lines: list[JobLogLine]
    next: int = Field(description="Ask again with after=next.")
    running: bool = Field(description="More lines can still come.")


class JobAuctionOut(BaseModel):
    job_id: int
    outcome: str | None


class JobActionOut(BaseModel):
    job_id: int
    action: str
    tx: str
    bond: str | None = None


class ProviderGpuOut(BaseModel):
    index: int
    name: str
    memory_mb: int


class ProviderMachineOut(BaseModel):
    cpu_cores: int
    ram_mb: int
    confinement: str | None
    gpus: list[ProviderGpuOut]


class ProviderOfferOut(BaseModel):
    cpu_cores: int
    ram_mb: int
    gpu_model: str
    gpu_mem_mb: int
    price_per_hour: str
    confined: bool


class ProviderStandingOut(BaseModel):
    address: str
    registered: bool
    stake: str
    min_stake: str
    active_jobs: int
    completed: int
    failed: int
    slashed: int
    reputation: int
    balance: str
    can_bid: bool
    offer: ProviderOfferOut | None
    machine: ProviderMachineOut


class ProviderOfferIn(BaseModel):
    price_per_hour: str = Field(
        max_length=80, description="Asking price in AIL per hour.", examples=["1.5"]
    )
    cpu_cores: int | None = Field(None, ge=1, le=1 << 20, description="Default: all.")
    ram_mb: int | None = Field(None, ge=1, le=1 << 40, description="Default: all.")


class ProviderStakeIn(BaseModel):
    amount: str = Field(max_length=80, description="AIL.", examples=["100"])


class ProviderStakeOut(BaseModel):
    action: str
    amount: str
    tx: str


class ProviderJobOut(BaseModel):
    job_id: int
    status: str
    price_per_hour: str
    seconds: int
    paid: str
    assigned_at: int


class ProviderPaymentOut(BaseModel):
    job_id: int
    amount: str
    seconds: int
    at: int


class ProviderSlashOut(BaseModel):
    job_id: int
    amount: str
    reason: str
    stake_after: str
    at: int


class ProviderHistoryOut(BaseModel):
    earned: str
    jobs: list[ProviderJobOut]
    payments: list[ProviderPaymentOut]
    slashes: list[ProviderSlashOut]


def job_out(j: jobs.PostedJob) -> JobOut:
    return JobOut(
        job_id=j.job_id,
        status=j.status.name.lower(),
        escrow=str(j.escrow),
        redundancy=j.redundancy,
        deadline=j.deadline,
        bundle_hash="0x" + j.bundle_hash.hex(),
    )


def status_out(data: dict[str, Any]) -> JobStatusOut:
    slots = [
        JobAssignmentOut(
            **{**a, "price_per_hour": str(a["price_per_hour"]), "paid": str(a["paid"])}
        )
        for a in data["assignments"]
    ]
    return JobStatusOut(**{**data, "escrow": str(data["escrow"]), "assignments": slots})


def standing_out(s: standing.Standing, machine: dict[str, Any]) -> ProviderStandingOut:
    offer = s.offer
    return ProviderStandingOut(
        address=s.address,
        registered=s.registered,
        stake=str(s.stake),
        min_stake=str(s.min_stake),
        active_jobs=s.active_jobs,
        completed=s.completed,
        failed=s.failed,
        slashed=s.slashed,
        reputation=s.reputation,
        balance=str(s.balance),
        can_bid=s.can_bid,
        offer=None
        if offer is None
        else ProviderOfferOut(
            cpu_cores=offer.cpu_cores,
            ram_mb=offer.ram_mb,
            gpu_model=offer.gpu_model,
            gpu_mem_mb=offer.gpu_mem_mb,
            price_per_hour=str(offer.price_per_hour),
            confined=offer.confined,
        ),
        machine=ProviderMachineOut(**machine),
    )


def history_out(h: standing.History) -> ProviderHistoryOut:
    return ProviderHistoryOut(
        earned=str(h.earned),
        jobs=[
            ProviderJobOut(
                job_id=j.job_id,
                status=j.status.name.lower(),
                price_per_hour=str(j.price_per_hour),
                seconds=j.seconds,
                paid=str(j.paid),
                assigned_at=j.assigned_at,
            )
            for j in h.jobs
        ],
        payments=[
            ProviderPaymentOut(job_id=p.job_id, amount=str(p.amount), seconds=p.seconds, at=p.at)
            for p in h.payments
        ],
        slashes=[
            ProviderSlashOut(
                job_id=s.job_id,
                amount=str(s.amount),
                reason=s.reason,
                stake_after=str(s.stake_after),
                at=s.at,
            )
            for s in h.slashes
        ],
    )


# ------------------------------------------------------------------------- uploads


@dataclass
class Upload:
    """A job's files (spooled to disk past 1 MiB each) and its submit options."""

    files: list[tuple[str, IO[bytes]]]
    options: JobSubmitOptions


@asynccontextmanager
async def read_upload(request: Request, limit: int) -> AsyncIterator[Upload]:
    """The bundle's files and the submit options of a multipart body, read as it comes:
    413 as soon as it passes ``limit`` (a declared length over it is refused unread),
    415 if it is not multipart, 422 for options of the wrong type. The spooled files
    are closed (and so removed) on leaving."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise UnsupportedMediaTypeError(
            "send the job's files as multipart/form-data: one `files` part per file "
            "(job.toml and what it names)"
        )
    too_large = PayloadTooLargeError(
        f"the upload is over {limit} bytes; send code and small inputs only (datasets are "
        "named in job.toml, not uploaded)"
    )
    declared = request.headers.get("content-length", "")
    # Multipart framing adds a few hundred bytes per part on top of the files themselves.
    slack = 64 * 1024
    if declared.isdigit() and int(declared) > limit + slack:
        raise too_large

    async def bounded() -> AsyncGenerator[bytes, None]:
        seen = 0
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > limit + slack:
                raise too_large
            yield chunk

    parser = MultiPartParser(request.headers, bounded(), max_files=MAX_FILES, max_fields=32)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise MalformedRequestError(f"the multipart body cannot be read: {exc.message}") from None
    try:
        yield _upload_of(form)
    finally:
        await form.close()


def _upload_of(form: FormData) -> Upload:
    uploads: list[tuple[str, IO[bytes]]] = []
    fields: dict[str, Any] = {}
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            if key != "files":
                raise UnprocessableError(f"unexpected file part {key!r}; name each part `files`")
            uploads.append((value.filename or "", value.file))
        elif key in JobSubmitOptions.model_fields:
            fields[key] = value
        elif key != "csrf_token":
            raise UnprocessableError(f"unknown field {key!r}")
    if "allow_unconfined" in fields:  # an HTML checkbox sends "on"
        fields["allow_unconfined"] = fields["allow_unconfined"] in ("on", "true", "1")
    try:
        options = JobSubmitOptions.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UnprocessableError(f"{where}: {first['msg']}") from None
    return Upload(uploads, options)


def submit_upload(ctx: WebContext, upload: Upload, limit: int) -> jobs.Submitted:
    """``job submit`` of an upload (run in the thread pool: it sends transactions and may
    wait for the auction)."""
    from ailedger.chain.contracts.data_market import purpose_bit

    options = upload.options
    with refusals():
        purpose = purpose_bit(options.purpose) if options.purpose else 0
        with ctx.writing():
            return submit_uploaded(
                ctx.session,
                upload.files,
                limit,
                purpose=purpose,
                min_reputation=options.min_reputation,
                require_confined=not options.allow_unconfined,
                wait_s=options.wait_s or None,
                collect_s=options.collect_s,
            )


def submitted_out(done: jobs.Submitted) -> JobSubmittedOut:
    return JobSubmittedOut(
        job_id=done.job_id,
        bundle_hash="0x" + done.bundle_hash.hex(),
        escrow=str(done.escrow),
        tx=done.tx_hash,
        status=done.status.name.lower(),
        providers=done.providers,
        auction=done.outcome,
    )


_MULTIPART_DOC: Final = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "job.toml and the files it names; each part's "
                            "filename is its path inside the bundle",
                        },
                        **JobSubmitOptions.model_json_schema()["properties"],
                    },
                }
            }
        },
    }
}


# --------------------------------------------------------------------------- routes


def router(max_upload: int = MAX_UPLOAD_BYTES) -> APIRouter:
    api = APIRouter(prefix="/api/v1")

    @api.get("/jobs", tags=["jobs"], response_model=list[JobOut])
    def list_jobs(ctx: Context, user: SignedIn) -> list[JobOut]:
        """This home's jobs, newest first, with their state now (`job list`)."""
        with refusals():
            return [job_out(j) for j in jobs.my_jobs(ctx.session)]

    @api.post(
        "/jobs",
        tags=["jobs"],
        status_code=201,
        response_model=JobSubmittedOut,
        openapi_extra=_MULTIPART_DOC,
    )
    async def submit_job(request: Request, ctx: Context, user: Operator) -> JobSubmittedOut:
        """Submit a job bundle (`job submit`): validate it, escrow its maximum cost, post
        it, and close the auction once k eligible bids are in (within `wait_s`)."""
        async with read_upload(request, max_upload) as upload:
            done = await run_in_threadpool(submit_upload, ctx, upload, max_upload)
        return submitted_out(done)

    @api.get("/jobs/{job_id}", tags=["jobs"], response_model=JobStatusOut)
    def job_status(job_id: JobIdText, ctx: Context, user: SignedIn) -> JobStatusOut:
        """Where the job stands (`job status`): bids, assignments, commits, reveals,
        payments, and the log batches and outputs this node received."""
        number = parse_job_id(job_id)
        with refusals():
            return status_out(jobs.own_status(ctx.session, number))

    @api.get("/jobs/{job_id}/auction", tags=["jobs"], response_model=JobAuctionOut)
    def auction(job_id: JobIdText, ctx: Context, user: SignedIn) -> JobAuctionOut:
        """What became of the job's auction, if it did not start the job (null: bidding
        is open, or providers are assigned)."""
        number = parse_job_id(job_id)
        with refusals():
            data = jobs.own_status(ctx.session, number)
        return JobAuctionOut(job_id=number, outcome=data["auction"])

    @api.get("/jobs/{job_id}/logs", tags=["jobs"], response_model=JobLogPageOut)
    def job_logs(
        job_id: JobIdText,
        ctx: Context,
        user: SignedIn,
        after: Annotated[int, Query(ge=0, le=10**9, description="Lines already read.")] = 0,
    ) -> JobLogPageOut:
        """The job's log lines after the first `after`, decrypted here (`job logs`); poll
        again from `next` while `running`."""
        number = parse_job_id(job_id)
        with refusals():
            page = jobs.log_page(ctx.session, number, after)
        return JobLogPageOut(
            lines=[JobLogLine(provider=p, line=line) for p, line in page.lines],
            next=page.next,
            running=page.running,
        )

    @api.get(
        "/jobs/{job_id}/result",
        tags=["jobs"],
        response_class=FileResponse,
        responses={200: {"content": {"application/gzip": {}}}},
    )
    def job_result(job_id: JobIdText, ctx: Context, user: SignedIn) -> FileResponse:
        """The job's output as a .tar.gz (`job result`), only if it decrypts and hashes to
        the result the chain settled or has under review."""
        number = parse_job_id(job_id)
        workdir = Path(tempfile.mkdtemp(prefix=".download-", dir=_jobs_dir(ctx)))
        try:
            with refusals():
                archive, digest, provider = jobs.result_archive(ctx.session, number, workdir)
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        return FileResponse(
            archive,
            media_type="application/gzip",
            filename=f"job-{number}-result.tar.gz",
            headers={"X-Result-Hash": "0x" + digest.hex(), "X-Result-Provider": provider},
            background=BackgroundTask(shutil.rmtree, workdir, ignore_errors=True),
        )

    @api.post("/jobs/{job_id}/cancel", tags=["jobs"], response_model=JobActionOut)
    def cancel_job(job_id: JobIdText, ctx: Context, user: Operator) -> JobActionOut:
        """Cancel an open or running job (`job cancel`): the unused escrow comes back; a
        job past its deadline is expired with a full refund."""
        number = parse_job_id(job_id)
        with refusals(), ctx.writing():
            what, tx = jobs.cancel(ctx.session, number)
        return JobActionOut(job_id=number, action=what, tx=tx)

    @api.post("/jobs/{job_id}/accept", tags=["jobs"], response_model=JobActionOut)
    def accept_job(job_id: JobIdText, ctx: Context, user: Operator) -> JobActionOut:
        """Accept a single-provider result under review (`job accept`): paid now."""
        number = parse_job_id(job_id)
        with refusals(), ctx.writing():
            tx = jobs.accept(ctx.session, number)
        return JobActionOut(job_id=number, action="accept", tx=tx.tx_hash)

    @api.post("/jobs/{job_id}/dispute", tags=["jobs"], response_model=JobActionOut)
    def dispute_job(job_id: JobIdText, ctx: Context, user: Operator) -> JobActionOut:
        """Dispute a single-provider result under review (`job dispute`), posting the
        bond (max price x max hours): another provider re-executes it, the loser pays."""
        number = parse_job_id(job_id)
        with refusals(), ctx.writing():
            bond, tx = jobs.dispute(ctx.session, number)
        return JobActionOut(job_id=number, action="dispute", tx=tx, bond=str(bond))

    # ------------------------------------------------------------------ provider

    @api.get("/provider", tags=["provider"], response_model=ProviderStandingOut)
    def provider(ctx: Context, user: SignedIn) -> ProviderStandingOut:
        """This home as a provider: the machine, the offer on chain, stake, reputation."""
        with refusals():
            found = standing.standing(ctx.session)
        return standing_out(found, standing.machine_report(standing.this_machine()))

    @api.get("/provider/machine", tags=["provider"], response_model=ProviderMachineOut)
    def machine(user: SignedIn) -> ProviderMachineOut:
        """Cores, memory, NVIDIA GPUs and job confinement here (`provider machine`)."""
        return ProviderMachineOut(**standing.machine_report(standing.this_machine()))

    @api.put("/provider/offer", tags=["provider"], response_model=ProviderOfferOut)
    def set_offer(body: ProviderOfferIn, ctx: Context, user: Operator) -> ProviderOfferOut:
        """Post or change the offer: asking price, and how many of the machine's cores
        and MB of memory to offer (default: all). Applies to bids made after it."""
        price = amount(body.price_per_hour, "price_per_hour")
        with refusals(), ctx.writing():
            terms = standing.set_offer(
                ctx.session, standing.this_machine(), price, body.cpu_cores, body.ram_mb
            )
        return ProviderOfferOut(
            cpu_cores=terms.cpu_cores,
            ram_mb=terms.ram_mb,
            gpu_model=terms.gpu_model,
            gpu_mem_mb=terms.gpu_mem_mb,
            price_per_hour=str(terms.price_per_hour),
            confined=terms.confined,
        )

    @api.post("/provider/stake", tags=["provider"], response_model=ProviderStakeOut)
    def add_stake(body: ProviderStakeIn, ctx: Context, user: Operator) -> ProviderStakeOut:
        """Stake more AIL; the first stake registers this home as a provider."""
        value = amount(body.amount, "amount")
        with refusals(), ctx.writing():
            what, tx = standing.add_stake(ctx.session, value)
        return ProviderStakeOut(action=what, amount=str(value), tx=tx.tx_hash)

    @api.post("/provider/stake/withdraw", tags=["provider"], response_model=ProviderStakeOut)
    def withdraw_stake(body: ProviderStakeIn, ctx: Context, user: Operator) -> ProviderStakeOut:
        """Take back stake; refused while unfinished jobs hold it locked."""
        value = amount(body.amount, "amount")
        with refusals(), ctx.writing():
            tx = standing.withdraw_stake(ctx.session, value)
        return ProviderStakeOut(action="withdrawn", amount=str(value), tx=tx.tx_hash)

    @api.get("/provider/history", tags=["provider"], response_model=ProviderHistoryOut)
    def history(ctx: Context, user: SignedIn) -> ProviderHistoryOut:
        """Jobs this provider ran, its payments (earnings over time) and its slashes."""
        with refusals():
            return history_out(standing.history(ctx.session))

    return api


def _jobs_dir(ctx: WebContext) -> Path:
    from ailedger.home_layout import HomeLayout

    root = HomeLayout(ctx.session.home.path).jobs
    root.mkdir(parents=True, exist_ok=True)
    return root
