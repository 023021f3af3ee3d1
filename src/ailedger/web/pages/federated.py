"""``/federated``: federated learning, for institutions and requesters.

``/federated`` lists the federated jobs on chain, newest first, marking those this home
joined; ``/federated/{id}`` shows one job as the chain records it (the same report as
``ailedger fl status``): the task's terms, members with their scores, anchored rounds,
payouts. While a job is open the operator joins it there with one of the home's
datasets and the requester's grant; a refusal is shown in the page, with its reason.

The task itself (features, rule, privacy terms) is on chain only as its hash, which
each institution checks before it trains; the page shows the hashes, not a copy that
could differ.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from ailedger.chain.contracts.federated_jobs import JobState
from ailedger.errors import RequestRefusedError
from ailedger.sharing.desk import my_datasets
from ailedger.units import format_amount
from ailedger.web.api._refusals import as_refusals
from ailedger.web.api.federated import JobId, JoinIn, Offset, job_rows, join, report
from ailedger.web.deps import Context, Operator, SignedIn
from ailedger.web.pages.jobs import message, when
from ailedger.web.render import page


def pages() -> APIRouter:
    ui = APIRouter(include_in_schema=False)

    @ui.get("/federated", response_class=HTMLResponse)
    def job_list(
        request: Request, ctx: Context, user: SignedIn, offset: Offset = 0
    ) -> HTMLResponse:
        rows, total = job_rows(ctx.session, offset)
        return page(
            request, "federated.html", jobs=rows, total=total, offset=offset, ail=format_amount
        )

    @ui.get("/federated/{job_id}", response_class=HTMLResponse)
    def job_page(job_id: JobId, request: Request, ctx: Context, user: SignedIn) -> HTMLResponse:
        found = report(ctx.session, job_id)
        me = ctx.session.address.lower()
        joined = any(m.institution.lower() == me for m in found.members)
        datasets: list[Any] = []
        if user.can_write and not joined and found.job.status == JobState.OPEN:
            with as_refusals():
                datasets = [
                    row.entry
                    for row in my_datasets(ctx.session, None, limit=50).items
                    if not row.entry.retired and row.entry.purposes & found.job.task.purpose
                ]
        return page(
            request,
            "federated_one.html",
            viewer=user,
            job=found.job,
            data=found.as_json(),
            payouts=found.payouts,
            joined=joined,
            datasets=datasets,
            ail=format_amount,
            when=when,
        )

    @ui.post("/federated/{job_id}/join", response_class=HTMLResponse)
    def join_form(
        job_id: JobId,
        request: Request,
        ctx: Context,
        user: Operator,
        dataset: Annotated[str, Form(max_length=80)] = "",
        grant: Annotated[str, Form(max_length=80)] = "",
    ) -> HTMLResponse:
        try:
            body = JoinIn.model_validate({"dataset": dataset, "grant": grant.strip()})
        except ValidationError as exc:
            first = exc.errors()[0]
            return message(request, f"{first['loc'][0]}: {first['msg']}", ok=False)
        try:
            tx = join(ctx, job_id, body.dataset, body.grant)
        except RequestRefusedError as exc:
            return message(request, exc.reason, ok=False)
        response = message(request, f"joined federated job {job_id} (tx {tx})", ok=True)
        response.headers["HX-Refresh"] = "true"  # the members, now with this home
        return response

    return ui
