"""``/api/v1`` for data sharing: the catalog, publishing, a data owner's datasets,
requests, grants, reads and earnings, and a researcher's requests and downloads.

Each route parses, calls one function of ``sharing.desk`` (the functions
``ailedger data ...`` calls) and answers with a Pydantic model. Reading needs a signed-in
user; every change needs the home's operator and holds ``ctx.writing()`` while it sends.
Ids are checked here (a dataset id is ``0x`` + 64 hex digits, request and grant ids are
uint256): a request or grant of someone else is a 404 and nothing changes.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Query
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.background import BackgroundTask

from ailedger.errors import MalformedRequestError, NotFoundError, UnprocessableError
from ailedger.units import MAX_UINT256
from ailedger.web.api._refusals import as_refusals
from ailedger.web.api._upload import FILE_FIELD, Upload, streamed_upload
from ailedger.web.deps import Context, Operator, SignedIn

if TYPE_CHECKING:
    from ailedger.sharing.catalog import CatalogEntry
    from ailedger.sharing.desk import AccessPage, Page, RequestRow
    from ailedger.sharing.stats import OwnerStats
    from ailedger.web.deps import WebContext

MAX_UPLOAD_BYTES: Final = 512 * 1024 * 1024
"""Largest file the web app takes in one upload; the CLI publishes anything larger."""
DATASET_ID: Final = r"^0x[0-9a-fA-F]{64}$"
_DATASET_ID = re.compile(DATASET_ID)

Purpose = Literal[
    "rare-disease-research",
    "model-training",
    "public-health",
    "clinical-care",
    "commercial-development",
]
RequestStatus = Literal["", "pending", "granted", "denied", "cancelled", "revoked"]
Uint256Id = Annotated[int, PathParam(ge=0, le=MAX_UINT256, description="A uint256 id.")]
Offset = Annotated[int, Query(ge=0, le=10**9)]
Limit = Annotated[int, Query(ge=1, le=200)]


def dataset_bytes(text: str) -> bytes:
    if not _DATASET_ID.fullmatch(text):
        raise MalformedRequestError(
            f"{text[:80]!r} is not a dataset id: write 0x followed by 64 hex digits"
        )
    return bytes.fromhex(text[2:])


# ------------------------------------------------------------------------- models


class DatasetOut(BaseModel):
    dataset: str
    title: str
    tags: list[str]
    description: str
    owner: str
    purposes: list[str]
    price_base_units: str
    needs_approval: bool
    duration_s: int
    max_reads: int
    retired: bool


class CatalogPageOut(BaseModel):
    datasets: list[DatasetOut]
    total: int
    offset: int
    limit: int


class PublishForm(BaseModel):
    """The fields of a publish upload (besides the ``file`` part)."""

    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=200)
    tags: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=32
    )
    description: str = Field("", max_length=4000)
    purposes: list[Purpose] = Field(min_length=1)
    price: str = Field("0", max_length=100, description="AIL per grant, e.g. 12.5")
    duration: str = Field("30d", max_length=20, description="90s, 30m, 12h or 30d")
    max_reads: int = Field(0, ge=0, le=2**63 - 1, description="0 = unlimited")
    approval: bool = Field(True, description="approve each request, or grant on payment")


class PublishedOut(BaseModel):
    dataset: str
    ciphertext_sha256: str
    size: int
    tx: str
    block: int


class OwnedDatasetOut(DatasetOut):
    reads: int
    grants: int
    earned_base_units: str


class OwnedPageOut(BaseModel):
    datasets: list[OwnedDatasetOut]
    total: int
    offset: int
    limit: int


class RequestOut(BaseModel):
    request: int
    dataset: str
    title: str
    requester: str
    owner: str
    purpose: str
    status: str


class RequestPageOut(BaseModel):
    requests: list[RequestOut]
    total: int
    offset: int
    limit: int


class DecisionOut(BaseModel):
    request: int
    action: Literal["grant", "deny", "revoke"]
    tx: str
    block: int


class AccessEntryOut(BaseModel):
    index: int
    entry: dict[str, Any]
    proof: list[str] = Field(description="RFC 6962 audit path, hex, leaf to root")
    proved: bool | None = Field(description="null: after the latest checkpoint")


class AccessPageOut(BaseModel):
    entries: list[AccessEntryOut]
    checkpoint_size: int
    checkpoint_root: str
    next_before: int | None


class EarningPointOut(BaseModel):
    time: int
    total_base_units: str


class DatasetEarningOut(BaseModel):
    dataset: str
    title: str
    reads: int
    earned_base_units: str


class EarningsOut(BaseModel):
    total_base_units: str
    over_time: list[EarningPointOut]
    per_dataset: list[DatasetEarningOut]


class RequestAccessIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset: str = Field(pattern=DATASET_ID)
    purpose: Purpose


class RequestMadeOut(BaseModel):
    request: int
    status: str
    tx: str


# ------------------------------------------------------------------------- shaping


def dataset_out(entry: CatalogEntry) -> DatasetOut:
    from ailedger.chain.contracts.data_market import purpose_names

    return DatasetOut(
        dataset=entry.dataset_id,
        title=entry.title,
        tags=entry.tags,
        description=str((entry.metadata or {}).get("description", "")),
        owner=entry.owner,
        purposes=purpose_names(entry.purposes),
        price_base_units=str(entry.price),
        needs_approval=entry.needs_approval,
        duration_s=entry.duration,
        max_reads=entry.max_reads,
        retired=entry.retired,
    )


def request_page_out(page: Page[RequestRow]) -> RequestPageOut:
    return RequestPageOut(
        requests=[
            RequestOut(
                request=r.request_id,
                dataset=r.dataset_id,
                title=r.title,
                requester=r.requester,
                owner=r.owner,
                purpose=r.purpose,
                status=r.status,
            )
            for r in page.items
        ],
        total=page.total,
        offset=page.offset,
        limit=page.limit,
    )


def access_page_out(page: AccessPage) -> AccessPageOut:
    return AccessPageOut(
        entries=[
            AccessEntryOut(index=r.index, entry=r.entry, proof=r.proof, proved=r.proved)
            for r in page.entries
        ],
        checkpoint_size=page.checkpoint_size,
        checkpoint_root=page.checkpoint_root,
        next_before=page.next_before,
    )


def publish_form(fields: dict[str, list[str]]) -> PublishForm:
    """The upload's fields as a ``PublishForm``: lists for ``tags`` (repeated, or one
    comma-separated value) and ``purposes``, one value for the rest; the page's
    ``csrf_token`` field is not a publish field."""
    values: dict[str, Any] = {}
    for name, given in fields.items():
        if name == "csrf_token":
            continue
        if name == "tags":
            values[name] = [t.strip() for value in given for t in value.split(",") if t.strip()]
        elif name == "purposes":
            values[name] = given
        elif len(given) != 1:
            raise UnprocessableError(f"form field {name!r} is given {len(given)} times, once only")
        else:
            values[name] = given[0]
    try:
        return PublishForm.model_validate(values)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in exc.errors()
        ]
        raise UnprocessableError(
            "the publish form is not valid: " + "; ".join(problems), {"fields": problems}
        ) from None


def owner_stats(ctx: WebContext) -> OwnerStats | None:
    return ctx.node.stats if ctx.node is not None else None


def owner_audit_required(ctx: WebContext) -> Any:
    if ctx.node is None:
        raise NotFoundError(
            "this home keeps no audit log here: the data owner's history is served by its "
            "running node (`ailedger node start`)"
        )
    return ctx.node.audit


_MULTIPART_BODY: Final = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FILE_FIELD, "title", "purposes"],
                    "properties": {
                        FILE_FIELD: {"type": "string", "format": "binary"},
                        **PublishForm.model_json_schema()["properties"],
                    },
                }
            }
        },
    }
}


# ------------------------------------------------------------------------- routes

DECISIONS: Final[dict[Literal["grant", "deny", "revoke"], str]] = {
    "grant": "Approve a pending request to one of this home's datasets.",
    "deny": "Refuse a pending request; the requester's payment is refunded.",
    "revoke": "Withdraw a grant: the next read under it is refused.",
}


def router(max_upload_bytes: int = MAX_UPLOAD_BYTES) -> APIRouter:
    """The sharing API; uploads larger than ``max_upload_bytes`` get a 413."""
    from ailedger.sharing import desk

    api = APIRouter(prefix="/api/v1", tags=["sharing"])
    upload = streamed_upload(max_upload_bytes)

    @api.get("/datasets", response_model=CatalogPageOut)
    def search(
        ctx: Context,
        user: SignedIn,
        text: Annotated[str, Query(max_length=200)] = "",
        tag: Annotated[str, Query(max_length=64)] = "",
        purpose: Purpose | Literal[""] = "",
        owner: Annotated[str, Query(pattern=r"^(0x[0-9a-fA-F]{40})?$")] = "",
        offset: Offset = 0,
        limit: Limit = 50,
    ) -> CatalogPageOut:
        """Search the catalog: text in titles and tags, a tag, a purpose, an owner."""
        with as_refusals():
            page = desk.find_datasets(
                ctx.session,
                text=text,
                tag=tag,
                purpose=purpose,
                owner=owner,
                offset=offset,
                limit=limit,
            )
        return CatalogPageOut(
            datasets=[dataset_out(e) for e in page.items],
            total=page.total,
            offset=page.offset,
            limit=page.limit,
        )

    @api.get("/datasets/{dataset_id}", response_model=DatasetOut)
    def show(dataset_id: str, ctx: Context, user: SignedIn) -> DatasetOut:
        """One dataset: owner, policy, price, its verified catalog metadata."""
        with as_refusals():
            return dataset_out(desk.dataset_detail(ctx.session, dataset_bytes(dataset_id)))

    @api.post(
        "/datasets",
        response_model=PublishedOut,
        status_code=201,
        openapi_extra=_MULTIPART_BODY,
    )
    def publish(
        ctx: Context,
        user: Operator,
        # a default, not an Annotated hint: the dependency is this router's own (its limit)
        body: Upload = Depends(upload),  # noqa: B008
    ) -> PublishedOut:
        """Publish an uploaded file: encrypted at this home, registered on chain under
        the form's policy. Larger than the node's upload limit: 413."""
        form = publish_form(body.fields)
        policy = desk.offer_policy(
            form.purposes,
            form.approval,
            form.price,
            desk.grant_duration(form.duration),
            form.max_reads,
        )
        metadata = desk.catalog_metadata(form.title, form.tags, form.description)
        with ctx.writing(), as_refusals():
            published = desk.publish_file(ctx.session, body.path, policy, metadata)
        return PublishedOut(
            dataset="0x" + published.dataset_id.hex(),
            ciphertext_sha256=published.ciphertext_hash,
            size=published.size,
            tx=published.tx_hash,
            block=published.block,
        )

    @api.get("/owner/datasets", response_model=OwnedPageOut)
    def my_datasets(
        ctx: Context, user: SignedIn, offset: Offset = 0, limit: Limit = 50
    ) -> OwnedPageOut:
        """This home's datasets with reads served, grants given and tokens earned."""
        with as_refusals():
            page = desk.my_datasets(ctx.session, owner_stats(ctx), offset=offset, limit=limit)
        return OwnedPageOut(
            datasets=[
                OwnedDatasetOut(
                    **dataset_out(row.entry).model_dump(),
                    reads=row.numbers.reads,
                    grants=row.numbers.grants,
                    earned_base_units=str(row.numbers.earned),
                )
                for row in page.items
            ],
            total=page.total,
            offset=page.offset,
            limit=page.limit,
        )

    @api.get("/owner/requests", response_model=RequestPageOut)
    def requests_to_me(
        ctx: Context,
        user: SignedIn,
        status: RequestStatus = "",
        offset: Offset = 0,
        limit: Limit = 50,
    ) -> RequestPageOut:
        """Requests to this home's datasets: ``pending`` await a decision, ``granted``
        are the grants in force (revoke them here)."""
        with as_refusals():
            page = desk.requests_to_me(ctx.session, status=status, offset=offset, limit=limit)
        return request_page_out(page)

    def decision(action: desk.Action) -> Any:
        def decide(request_id: Uint256Id, ctx: Context, user: Operator) -> DecisionOut:
            with ctx.writing(), as_refusals():
                done = desk.decide(ctx.session, request_id, action)
            return DecisionOut(
                request=done.request_id, action=done.action, tx=done.tx_hash, block=done.block
            )

        return decide

    for action, doc in DECISIONS.items():
        api.post(
            f"/owner/requests/{{request_id}}/{action}",
            response_model=DecisionOut,
            name=f"{action}_request",
            description=doc,
        )(decision(action))

    @api.get("/owner/history", response_model=AccessPageOut)
    def who_read(
        ctx: Context,
        user: SignedIn,
        dataset: Annotated[str, Query(pattern=r"^(0x[0-9a-fA-F]{64})?$")] = "",
        before: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
        limit: Limit = 50,
    ) -> AccessPageOut:
        """Who read what: this home's audit entries (newest first, ``before`` an index
        for older ones), each with its inclusion proof under the latest checkpoint."""
        audit = owner_audit_required(ctx)
        return access_page_out(
            desk.who_read(audit, dataset=dataset or None, before=before, limit=limit)
        )

    @api.get("/owner/earnings", response_model=EarningsOut)
    def earnings(
        ctx: Context, user: SignedIn, offset: Offset = 0, limit: Limit = 50
    ) -> EarningsOut:
        """Tokens earned: the total, the cumulative series over time, and reads and
        earnings per dataset (one page of datasets)."""
        owner_audit_required(ctx)
        stats = owner_stats(ctx)
        assert stats is not None
        with as_refusals():
            found = desk.earnings(ctx.session, stats, offset=offset, limit=limit)
        return EarningsOut(
            total_base_units=str(found.total),
            over_time=[
                EarningPointOut(time=t, total_base_units=str(v)) for t, v in found.over_time
            ],
            per_dataset=[
                DatasetEarningOut(dataset=d, title=t, reads=r, earned_base_units=str(e))
                for d, t, r, e in found.per_dataset
            ],
        )

    @api.get("/research/requests", response_model=RequestPageOut)
    def requests_by_me(
        ctx: Context,
        user: SignedIn,
        status: RequestStatus = "",
        offset: Offset = 0,
        limit: Limit = 50,
    ) -> RequestPageOut:
        """Requests this home made; ``granted`` ones can be fetched."""
        with as_refusals():
            page = desk.requests_by_me(ctx.session, status=status, offset=offset, limit=limit)
        return request_page_out(page)

    @api.post("/research/requests", response_model=RequestMadeOut, status_code=201)
    def request_access(body: RequestAccessIn, ctx: Context, user: Operator) -> RequestMadeOut:
        """Request access to a dataset for one purpose, paying its price into escrow."""
        with ctx.writing(), as_refusals():
            made = desk.ask_access(ctx.session, dataset_bytes(body.dataset), body.purpose)
        return RequestMadeOut(request=made.request_id, status=made.status, tx=made.tx_hash)

    @api.post(
        "/research/grants/{grant_id}/fetch",
        response_class=FileResponse,
        responses={200: {"content": {"application/octet-stream": {}}}},
    )
    def fetch(grant_id: Uint256Id, ctx: Context, user: Operator) -> FileResponse:
        """Download the dataset of this home's grant, verified against the chain and
        decrypted (a directory comes as a zip). Uses one of the grant's reads; refused
        when the grant is pending, denied, revoked, expired or out of reads."""
        return download_response(ctx, grant_id)

    return api


def download_response(ctx: WebContext, grant_id: int) -> FileResponse:
    """The decrypted dataset of ``grant_id`` as a file response; its temporary copy is
    removed once sent."""
    from ailedger.sharing import desk

    directory = Path(tempfile.mkdtemp(prefix="ailedger-fetch-"))
    try:
        with as_refusals():  # no transaction: reads, served by the owner's gateway
            got = desk.download(ctx.session, grant_id, directory)
        name = f"grant-{grant_id}"
        path = got.path
        if got.is_directory:
            path = Path(shutil.make_archive(str(directory / name), "zip", got.path))
            name += ".zip"
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return FileResponse(
        path,
        filename=name,
        media_type="application/octet-stream",
        background=BackgroundTask(shutil.rmtree, directory, ignore_errors=True),
    )
