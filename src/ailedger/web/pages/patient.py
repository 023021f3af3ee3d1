"""``/patient``: a patient's say over the records hospitals hold about them.

The page shows the hospitals linked to this wallet, the purposes consented to (a form of
checkboxes sets them all at once; a withdrawal takes effect at the next read, job, round
or match), and the share of sales waiting to be claimed. A hospital's link is accepted
with the link id it handed the patient.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from ailedger.errors import RequestRefusedError
from ailedger.units import format_amount
from ailedger.web.api.patient import accept, claim, purposes, set_consent, status
from ailedger.web.deps import Context, Operator, SignedIn
from ailedger.web.pages.jobs import message
from ailedger.web.render import page


def pages() -> APIRouter:
    ui = APIRouter(include_in_schema=False)

    @ui.get("/patient", response_class=HTMLResponse)
    def overview(request: Request, ctx: Context, user: SignedIn) -> HTMLResponse:
        return page(
            request,
            "patient.html",
            viewer=user,
            data=status(ctx),
            purposes=purposes(),
            ail=lambda text: format_amount(int(text)),
        )

    @ui.post("/patient/consent", response_class=HTMLResponse)
    def consent_form(
        request: Request,
        ctx: Context,
        user: Operator,
        allow: Annotated[list[str] | None, Form(max_length=40)] = None,
    ) -> HTMLResponse:
        try:
            now = set_consent(ctx, allow or [])
        except RequestRefusedError as exc:
            return message(request, exc.reason, ok=False)
        return message(request, f"you now consent to: {', '.join(now) or 'nothing'}", ok=True)

    @ui.post("/patient/accept", response_class=HTMLResponse)
    def accept_form(
        request: Request,
        ctx: Context,
        user: Operator,
        link: Annotated[str, Form(max_length=80)] = "",
    ) -> HTMLResponse:
        try:
            accept(ctx, link)
        except RequestRefusedError as exc:
            return message(request, exc.reason, ok=False)
        response = message(request, "link accepted: your consent applies to its records", ok=True)
        response.headers["HX-Refresh"] = "true"
        return response

    @ui.post("/patient/claim", response_class=HTMLResponse)
    def claim_form(request: Request, ctx: Context, user: Operator) -> HTMLResponse:
        try:
            owed = claim(ctx)
        except RequestRefusedError as exc:
            return message(request, exc.reason, ok=False)
        return message(request, f"claimed {format_amount(owed)}", ok=True)

    return ui
