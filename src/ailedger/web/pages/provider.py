"""The GPU owner's page, ``/provider``: this machine and its offer, the stake, the
reputation, the jobs it ran, its earnings over time and its slashes.

The routes call the functions the provider API calls (``compute.provider.standing``)
and render. Forms post with htmx; an auditor (read-only) sees no form and is refused
(403) if it posts anyway. A refusal (a stake still locked, an offer beyond the machine)
is shown in the page, and the page reloads after a change that went through.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from ailedger.compute.provider import standing
from ailedger.errors import RequestRefusedError
from ailedger.units import format_amount
from ailedger.web.api.compute import ProviderOfferIn, amount, refusals
from ailedger.web.charts import line_chart
from ailedger.web.deps import Context, Operator, SignedIn
from ailedger.web.pages.jobs import helpers, message
from ailedger.web.render import page


def _done(request: Request, text: str) -> HTMLResponse:
    response = message(request, text, ok=True)
    response.headers["HX-Refresh"] = "true"
    return response


def pages() -> APIRouter:
    ui = APIRouter(include_in_schema=False)

    @ui.get("/provider", response_class=HTMLResponse)
    def provider(request: Request, ctx: Context, user: SignedIn) -> HTMLResponse:
        with refusals():
            found = standing.standing(ctx.session)
            past = standing.history(ctx.session)
        machine = standing.this_machine()
        chart = line_chart("earnings over time", past.earnings_over_time(), "AIL earned")
        return page(
            request,
            "provider.html",
            viewer=user,
            me=found,
            machine=machine,
            history=past,
            chart=chart,
            reasons=standing.SLASH_REASONS,
            **helpers(),
        )

    @ui.post("/provider/offer", response_class=HTMLResponse)
    def offer(
        request: Request,
        ctx: Context,
        user: Operator,
        price_per_hour: Annotated[str, Form(max_length=80)] = "",
        cpu_cores: Annotated[str, Form(max_length=20)] = "",
        ram_mb: Annotated[str, Form(max_length=20)] = "",
    ) -> HTMLResponse:
        try:
            body = ProviderOfferIn.model_validate(
                {
                    "price_per_hour": price_per_hour,
                    "cpu_cores": cpu_cores or None,
                    "ram_mb": ram_mb or None,
                }
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            return message(request, f"{first['loc'][0]}: {first['msg']}", ok=False)
        try:
            price = amount(body.price_per_hour, "price per hour")
            with refusals(), ctx.writing():
                terms = standing.set_offer(
                    ctx.session, standing.this_machine(), price, body.cpu_cores, body.ram_mb
                )
        except RequestRefusedError as exc:
            return message(request, exc.reason, ok=False)
        return _done(
            request,
            f"offer posted: {terms.cpu_cores} cores, {terms.ram_mb} MB at "
            f"{format_amount(terms.price_per_hour)} per hour",
        )

    @ui.post("/provider/stake", response_class=HTMLResponse)
    def stake(
        request: Request,
        ctx: Context,
        user: Operator,
        amount_ail: Annotated[str, Form(alias="amount", max_length=80)] = "",
    ) -> HTMLResponse:
        try:
            value = amount(amount_ail, "amount")
            with refusals(), ctx.writing():
                what, tx = standing.add_stake(ctx.session, value)
        except RequestRefusedError as exc:
            return message(request, exc.reason, ok=False)
        return _done(request, f"{what}: {format_amount(value)} staked (tx {tx.tx_hash})")

    @ui.post("/provider/stake/withdraw", response_class=HTMLResponse)
    def withdraw(
        request: Request,
        ctx: Context,
        user: Operator,
        amount_ail: Annotated[str, Form(alias="amount", max_length=80)] = "",
    ) -> HTMLResponse:
        try:
            value = amount(amount_ail, "amount")
            with refusals(), ctx.writing():
                tx = standing.withdraw_stake(ctx.session, value)
        except RequestRefusedError as exc:
            return message(request, exc.reason, ok=False)
        return _done(request, f"withdrawn: {format_amount(value)} (tx {tx.tx_hash})")

    return ui
