"""``/models``: the models registered on chain, each with its passport and training jobs,
and a form where a patient pastes a decision receipt and sees it checked against the
chain (the same checks as ``ailedger decision verify``)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from ailedger.errors import RequestRefusedError
from ailedger.web.api.models import check_receipt, model_rows
from ailedger.web.deps import Context, SignedIn
from ailedger.web.pages.jobs import message
from ailedger.web.render import page


def pages() -> APIRouter:
    ui = APIRouter(include_in_schema=False)

    @ui.get("/models", response_class=HTMLResponse)
    def models(request: Request, ctx: Context, user: SignedIn) -> HTMLResponse:
        return page(request, "models.html", viewer=user, models=model_rows(ctx))

    @ui.post("/models/receipt", response_class=HTMLResponse)
    def receipt(
        request: Request,
        ctx: Context,
        user: SignedIn,
        text: Annotated[str, Form(alias="receipt", max_length=256_000)] = "",
    ) -> HTMLResponse:
        try:
            document = json.loads(text)
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
