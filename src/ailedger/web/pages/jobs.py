"""The researcher's jobs: ``/research/jobs`` (submit a bundle, the jobs and their states)
and ``/research/jobs/{id}`` (status, logs that stream while it runs, the result, cancel,
accept or dispute when the job allows it).

The routes call the functions the job API calls (``compute.requester``) and render.
The log panel polls ``/research/jobs/{id}/logs?after=N`` every 2 s with htmx; each
answer appends the new lines and, once the job can produce no more, stops the polling.
Forms post with htmx; an action the job's state refuses is shown in the page, and an
auditor (read-only) sees no form and is refused (403) if it posts anyway.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from ailedger.chain.contracts.compute_market import JobStatus
from ailedger.compute.requester import job as jobs
from ailedger.compute.requester.upload import MAX_UPLOAD_BYTES
from ailedger.errors import RequestRefusedError
from ailedger.units import format_amount
from ailedger.web.api.compute import (
    JobIdText,
    parse_job_id,
    read_upload,
    refusals,
    submit_upload,
)
from ailedger.web.charts import bar_chart
from ailedger.web.deps import Context, Operator, SignedIn
from ailedger.web.render import page

RESULT_STATES = ("review", "completed")


def when(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M UTC")


def helpers() -> dict[str, Any]:
    return {"ail": format_amount, "when": when}


def listing(mine: list[jobs.PostedJob]) -> dict[str, Any]:
    """The jobs and the chart of their states, as the list shows them."""
    counts = Counter(j.status.name.lower() for j in mine)
    return {"jobs": mine, "chart": bar_chart("jobs by state", counts.most_common())}


def message(request: Request, text: str, ok: bool, **extra: Any) -> HTMLResponse:
    """A form's answer, shown where the form says; refusals too (htmx swaps only 2xx
    answers, and the person must see why nothing happened)."""
    return page(request, "_compute_message.html", text=text, ok=ok, **extra)


def pages(max_upload: int = MAX_UPLOAD_BYTES) -> APIRouter:
    ui = APIRouter(include_in_schema=False)

    @ui.get("/research/jobs", response_class=HTMLResponse)
    def job_list(request: Request, ctx: Context, user: SignedIn) -> HTMLResponse:
        with refusals():
            mine = jobs.my_jobs(ctx.session)
        return page(
            request,
            "jobs.html",
            viewer=user,
            max_upload=max_upload,
            **listing(mine),
            **helpers(),
        )

    @ui.post("/research/jobs", response_class=HTMLResponse)
    async def submit(request: Request, ctx: Context, user: Operator) -> HTMLResponse:
        try:
            async with read_upload(request, max_upload) as upload:
                done = await run_in_threadpool(submit_upload, ctx, upload, max_upload)
            mine = await run_in_threadpool(jobs.my_jobs, ctx.session)
        except RequestRefusedError as exc:
            return message(request, exc.reason, ok=False)
        text = f"job {done.job_id} posted, {format_amount(done.escrow)} in escrow"
        if done.providers:
            text += f"; assigned to {', '.join(done.providers)}"
        elif done.outcome:
            text += f"; {done.outcome}"
        return message(request, text, ok=True, job_id=done.job_id, **listing(mine), **helpers())

    @ui.get("/research/jobs/{job_id}", response_class=HTMLResponse)
    def job_page(job_id: JobIdText, request: Request, ctx: Context, user: SignedIn) -> Any:
        number = parse_job_id(job_id)
        with refusals():
            data = jobs.own_status(ctx.session, number)
            logs = jobs.log_page(ctx.session, number, 0)
        state = JobStatus[data["status"].upper()]
        return page(
            request,
            "jobs_one.html",
            viewer=user,
            job=data,
            logs=logs,
            running=state.running,
            has_result=data["status"] in RESULT_STATES,
            review=state == JobStatus.REVIEW,
            **helpers(),
        )

    @ui.get("/research/jobs/{job_id}/logs", response_class=HTMLResponse)
    def job_logs(
        job_id: JobIdText,
        request: Request,
        ctx: Context,
        user: SignedIn,
        after: Annotated[int, Query(ge=0, le=10**9)] = 0,
    ) -> HTMLResponse:
        number = parse_job_id(job_id)
        with refusals():
            logs = jobs.log_page(ctx.session, number, after)
        response = page(request, "_compute_logs.html", job_id=number, logs=logs)
        if not logs.running:
            response.headers["HX-Refresh"] = "true"  # the final state, result and buttons
        return response

    def act(request: Request, ctx: Context, job_id: str, what: str) -> HTMLResponse:
        number = parse_job_id(job_id)
        try:
            with refusals(), ctx.writing():
                if what == "cancel":
                    done, tx = jobs.cancel(ctx.session, number)
                    text = f"job {number}: {done} (tx {tx})"
                elif what == "accept":
                    text = f"job {number}: accepted (tx {jobs.accept(ctx.session, number).tx_hash})"
                else:
                    bond, tx = jobs.dispute(ctx.session, number)
                    text = f"job {number}: disputed with a bond of {format_amount(bond)} (tx {tx})"
        except RequestRefusedError as exc:
            return message(request, exc.reason, ok=False)
        response = message(request, text, ok=True)
        response.headers["HX-Refresh"] = "true"
        return response

    @ui.post("/research/jobs/{job_id}/cancel", response_class=HTMLResponse)
    def cancel(
        job_id: JobIdText,
        request: Request,
        ctx: Context,
        user: Operator,
    ) -> HTMLResponse:
        return act(request, ctx, job_id, "cancel")

    @ui.post("/research/jobs/{job_id}/accept", response_class=HTMLResponse)
    def accept(
        job_id: JobIdText,
        request: Request,
        ctx: Context,
        user: Operator,
    ) -> HTMLResponse:
        return act(request, ctx, job_id, "accept")

    @ui.post("/research/jobs/{job_id}/dispute", response_class=HTMLResponse)
    def dispute(
        job_id: JobIdText,
        request: Request,
        ctx: Context,
        user: Operator,
    ) -> HTMLResponse:
        return act(request, ctx, job_id, "dispute")

    return ui
