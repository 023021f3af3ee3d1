"""``/research``: the researcher's page.

Catalog search with results (one page of 50), a request-access form on each result, and
the home's requests and grants with a Fetch button that downloads the decrypted data.
Requesting posts with htmx and gets the refreshed list of requests back; Fetch is a
plain form post (a download), refused with a page that says why when the grant is not
in force.
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Form, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response

from ailedger.errors import RequestRefusedError
from ailedger.units import MAX_UINT256, format_amount
from ailedger.web.api._refusals import as_refusals
from ailedger.web.api.sharing import DATASET_ID, Purpose, dataset_bytes, download_response
from ailedger.web.deps import Context, Operator, SignedIn
from ailedger.web.render import page

PAGE: Final = 50
Offset = Annotated[int, Query(ge=0, le=10**9)]


def pages() -> APIRouter:
    from ailedger.chain.contracts.data_market import PURPOSES, purpose_names
    from ailedger.sharing import desk

    html = APIRouter(include_in_schema=False)

    @html.get("/research", response_class=HTMLResponse)
    def research_page(
        request: Request,
        ctx: Context,
        user: SignedIn,
        text: Annotated[str, Query(max_length=200)] = "",
        tag: Annotated[str, Query(max_length=64)] = "",
        purpose: Annotated[str, Query(max_length=40)] = "",
        owner: Annotated[str, Query(pattern=r"^(0x[0-9a-fA-F]{40})?$")] = "",
        offset: Offset = 0,
        requests: Offset = 0,
    ) -> HTMLResponse:
        error = ""
        try:
            with as_refusals():
                view = desk.research_view(
                    ctx.session,
                    text=text,
                    tag=tag,
                    purpose=purpose,
                    owner=owner,
                    offset=offset,
                    requests_offset=requests,
                    limit=PAGE,
                )
        except RequestRefusedError as exc:  # an unknown purpose, say: shown, not thrown
            error = exc.reason
            with as_refusals():
                view = desk.research_view(ctx.session, requests_offset=requests, limit=PAGE)
        return page(
            request,
            "research.html",
            view=view,
            query={"text": text, "tag": tag, "purpose": purpose, "owner": owner},
            purposes=list(PURPOSES),
            purpose_names=purpose_names,
            amount=format_amount,
            message="",
            error=error,
        )

    def requests_fragment(request: Request, ctx: Context, message: str, error: str) -> HTMLResponse:
        with as_refusals():
            mine = desk.requests_by_me(ctx.session, limit=PAGE)
        return page(
            request, "_sharing_my_requests.html", requests=mine, message=message, error=error
        )

    @html.post("/research/requests", response_class=HTMLResponse)
    def request_access(
        request: Request,
        ctx: Context,
        user: Operator,
        dataset: Annotated[str, Form(pattern=DATASET_ID)],
        purpose: Annotated[Purpose, Form()],
    ) -> HTMLResponse:
        try:
            with ctx.writing(), as_refusals():
                made = desk.ask_access(ctx.session, dataset_bytes(dataset), purpose)
        except RequestRefusedError as exc:
            return requests_fragment(request, ctx, "", exc.reason)
        return requests_fragment(
            request, ctx, f"request {made.request_id} is {made.status} (tx {made.tx_hash})", ""
        )

    @html.post("/research/grants/{grant_id}/fetch")
    def fetch(
        request: Request,
        grant_id: Annotated[int, PathParam(ge=0, le=MAX_UINT256)],
        ctx: Context,
        user: Operator,
    ) -> Response:
        try:
            return download_response(ctx, grant_id)
        except RequestRefusedError as exc:
            return page(
                request,
                "research_refused.html",
                status_code=exc.http_status,
                grant_id=grant_id,
                reason=exc.reason,
            )

    return html
