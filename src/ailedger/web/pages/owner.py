"""``/owner``: the data owner's page.

Datasets with their reads and earnings, pending requests to approve or deny, grants to
revoke in one click, who read what (audit entries, each with its inclusion proof), the
earnings over time and reads per dataset as charts, and a publish form. Every list is
one page (50 rows) and the audit history is read backwards from its newest entry, so the
page costs the same with 10,000 entries as with 10.

Buttons post with htmx to the fragment routes here, which call the same functions as the
API and answer with the part of the page that changed; an auditor sees no buttons, and
the routes refuse an auditor anyway (``Operator``).
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from ailedger.errors import RequestRefusedError
from ailedger.units import MAX_UINT256, format_amount
from ailedger.web.api._refusals import as_refusals
from ailedger.web.api._upload import Upload, streamed_upload
from ailedger.web.api.sharing import (
    MAX_UPLOAD_BYTES,
    Purpose,
    owner_stats,
    publish_form,
)
from ailedger.web.charts import bar_chart, line_chart
from ailedger.web.deps import Context, Operator, SignedIn
from ailedger.web.render import page

PAGE: Final = 50
BASE_UNITS: Final = 10**18
Offset = Annotated[int, Query(ge=0, le=10**9)]
PURPOSES: Final[tuple[Purpose, ...]] = (
    "rare-disease-research",
    "model-training",
    "public-health",
    "clinical-care",
    "commercial-development",
)


def earnings_chart(series: list[tuple[int, int]]) -> Markup:
    """The cumulative earnings as a step line that starts from nothing earned."""
    points = [(t, v / BASE_UNITS) for t, v in series]
    if points:
        points.insert(0, (points[0][0], 0.0))
    return line_chart("Earnings over time (AIL)", points, "AIL earned")


def reads_chart(rows: list[tuple[str, int]]) -> Markup:
    ranked = sorted(rows, key=lambda row: row[1], reverse=True)[:15]
    return bar_chart("Reads per dataset", [(title, float(reads)) for title, reads in ranked])


def when(epoch_s: object) -> str:
    """An entry's time as UTC text; an entry without one shows as empty."""
    from datetime import UTC, datetime

    if not isinstance(epoch_s, int) or isinstance(epoch_s, bool) or not 0 <= epoch_s < 2**40:
        return ""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M:%S")


def pages(max_upload_bytes: int = MAX_UPLOAD_BYTES) -> APIRouter:
    from ailedger.chain.contracts.data_market import purpose_names
    from ailedger.sharing import desk

    html = APIRouter(include_in_schema=False)
    upload = streamed_upload(max_upload_bytes)

    @html.get("/owner", response_class=HTMLResponse)
    def owner_page(
        request: Request,
        ctx: Context,
        user: SignedIn,
        datasets: Offset = 0,
        pending: Offset = 0,
        grants: Offset = 0,
        before: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
        dataset: Annotated[str, Query(pattern=r"^(0x[0-9a-fA-F]{64})?$")] = "",
    ) -> HTMLResponse:
        with as_refusals():
            view = desk.owner_view(
                ctx.session,
                owner_stats(ctx),
                ctx.node.audit if ctx.node is not None else None,
                datasets_offset=datasets,
                pending_offset=pending,
                grants_offset=grants,
                history_before=before,
                history_dataset=dataset or None,
                limit=PAGE,
            )
        return page(
            request,
            "owner.html",
            view=view,
            history_dataset=dataset,
            earnings=earnings_chart(view.earnings_over_time),
            reads=reads_chart([(r.entry.title, r.numbers.reads) for r in view.datasets.items]),
            amount=format_amount,
            purpose_names=purpose_names,
            when=when,
            purposes=PURPOSES,
            max_upload_mb=max_upload_bytes // (1024 * 1024),
            message="",
            error="",
        )

    def requests_fragment(request: Request, ctx: Context, message: str, error: str) -> HTMLResponse:
        with as_refusals():
            found = desk.owner_requests(ctx.session, limit=PAGE)
        return page(
            request,
            "_sharing_requests.html",
            pending=found.pending,
            grants=found.grants,
            message=message,
            error=error,
        )

    @html.post("/owner/requests/{request_id}/{action}", response_class=HTMLResponse)
    def decide(
        request: Request,
        request_id: Annotated[int, PathParam(ge=0, le=MAX_UINT256)],
        action: Literal["grant", "deny", "revoke"],
        ctx: Context,
        user: Operator,
    ) -> HTMLResponse:
        try:
            with ctx.writing(), as_refusals():
                done = desk.decide(ctx.session, request_id, action)
        except RequestRefusedError as exc:
            return requests_fragment(request, ctx, "", exc.reason)
        verb = {"grant": "granted", "deny": "denied", "revoke": "revoked"}[action]
        message = f"request {request_id} {verb} (tx {done.tx_hash})"
        return requests_fragment(request, ctx, message, "")

    @html.post("/owner/publish", response_class=HTMLResponse)
    def publish(
        request: Request,
        ctx: Context,
        user: Operator,
        body: Upload = Depends(upload),  # noqa: B008 (this router's own limit)
    ) -> HTMLResponse:
        try:
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
        except RequestRefusedError as exc:
            return page(request, "_sharing_published.html", published=None, error=exc.reason)
        return page(
            request,
            "_sharing_published.html",
            published="0x" + published.dataset_id.hex(),
            title=form.title,
            size=published.size,
            error="",
        )

    return html
