"""``/models``: the models registered on chain, each with its passport and training jobs;
the models and algorithms on offer, each with what the chain confirms of it, with a buy
form for the operator and a form to ask for predictions under a grant; and a form where a
patient pastes a decision receipt and sees it checked against the chain (the same checks
as ``ailedger decision verify``)."""

from __future__ import annotations

import base64
import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from ailedger.ai.offers import Offer
from ailedger.ai.serving import dump_receipt
from ailedger.chain.contracts.data_market import purpose_names
from ailedger.errors import BackPressureError, RequestRefusedError
from ailedger.units import format_amount
from ailedger.untrusted_json import parse_untrusted
from ailedger.web.api.market import OFFER_ID, BuyIn, PredictIn, ask_predictions, buy_offer, offers
from ailedger.web.api.models import check_receipt, model_rows
from ailedger.web.deps import Context, Operator, SignedIn
from ailedger.web.pages.jobs import message
from ailedger.web.render import page

_OFFER_ID = re.compile(OFFER_ID)


def period(seconds: int) -> str:
    """A grant's duration as people say it: 30 d, 12 h, 90 s."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _on_offer(ctx: Context) -> tuple[list[Offer], str]:
    """The offers, or why they cannot be listed now: the rest of the page still shows."""
    try:
        return offers(ctx), ""
    except (RequestRefusedError, BackPressureError) as exc:
        return [], str(exc)


def _invalid(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "form"
    return f"{where}: {first['msg']}"


def _download(receipt: dict[str, Any]) -> str:
    """A receipt as a data: link, so the page can offer it as a file with no script."""
    encoded = base64.b64encode(dump_receipt(receipt).encode()).decode()
    return "data:application/json;base64," + encoded


def pages() -> APIRouter:
    ui = APIRouter(include_in_schema=False)

    @ui.get("/models", response_class=HTMLResponse)
    def models(request: Request, ctx: Context, user: SignedIn) -> HTMLResponse:
        listed, unlisted = _on_offer(ctx)
        return page(
            request,
            "models.html",
            viewer=user,
            models=model_rows(ctx),
            offers=listed,
            offers_error=unlisted,
            amount=format_amount,
            period=period,
            purpose_names=purpose_names,
        )

    @ui.post("/models/buy", response_class=HTMLResponse)
    def buy(
        request: Request,
        ctx: Context,
        user: Operator,
        offer: Annotated[str, Form(max_length=66)] = "",
        purpose: Annotated[str, Form(max_length=40)] = "",
    ) -> HTMLResponse:
        if not _OFFER_ID.fullmatch(offer):
            return message(request, "offer: write 0x followed by 64 hex digits", ok=False)
        try:
            body = BuyIn.model_validate({"purpose": purpose})
        except ValidationError as exc:
            return message(request, _invalid(exc), ok=False)
        try:
            bought = buy_offer(ctx, offer, body.purpose)
        except (RequestRefusedError, BackPressureError) as exc:
            return message(request, str(exc), ok=False)
        text = f"grant {bought.grant} ({bought.status}) of {bought.kind}; next: {bought.next}"
        return message(request, text, ok=True)

    @ui.post("/models/predict", response_class=HTMLResponse)
    def ask(
        request: Request,
        ctx: Context,
        user: Operator,
        grant: Annotated[str, Form(max_length=80)] = "",
        inputs: Annotated[str, Form(max_length=256_000)] = "",
    ) -> HTMLResponse:
        try:
            rows = parse_untrusted(inputs)  # a form is not checked for nesting on its way
            body = PredictIn.model_validate(
                {"grant": int(grant), "inputs": rows if isinstance(rows, list) else [rows]}
            )
        except ValueError as exc:  # JSON, the grant number, or the model's own checks
            text = _invalid(exc) if isinstance(exc, ValidationError) else f"grant or inputs: {exc}"
            return message(request, text, ok=False)
        try:
            answer = ask_predictions(ctx, body)
        except (RequestRefusedError, BackPressureError) as exc:
            return message(request, str(exc), ok=False)
        return page(
            request,
            "_market_predictions.html",
            answer=answer,
            inputs=body.inputs,
            dumps=json.dumps,
            download=_download,
        )

    @ui.post("/models/receipt", response_class=HTMLResponse)
    def receipt(
        request: Request,
        ctx: Context,
        user: SignedIn,
        text: Annotated[str, Form(alias="receipt", max_length=256_000)] = "",
    ) -> HTMLResponse:
        try:
            document = parse_untrusted(text)  # a form is not checked for nesting
        except ValueError as exc:
            return message(request, f"the receipt is not JSON: {exc}", ok=False)
        if not isinstance(document, dict):
            return message(request, "the receipt is a JSON object", ok=False)
        try:
            verdict = check_receipt(ctx, document)
        except RequestRefusedError as exc:
            return message(request, exc.reason, ok=False)
        if verdict["ok"]:
            anchored = "anchored on chain" if verdict["anchored"] else "not yet anchored"
            matched = "your input matches" if verdict["input_matched"] else "input not checked"
            text = f"decision {verdict['index']} verified: in the log, {anchored}, {matched}"
            return message(request, text, ok=True)
        return message(request, "NOT verified: " + "; ".join(verdict["problems"]), ok=False)

    return ui
