"""Models and decisions over the REST API (``/api/v1/models``, ``/api/v1/decisions``):
every registered model version, and checking a decision receipt against the chain.

Each route calls one function of :mod:`ailedger.ai`, as ``ailedger model list`` and
``ailedger decision verify`` do; both only read the chain, so any signed-in user may.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from ailedger.ai.models import model_summary
from ailedger.ai.serving import verify_receipt_file
from ailedger.web.api._refusals import as_refusals
from ailedger.web.api.bodies import documented, json_body
from ailedger.web.deps import Context, SignedIn

MAX_RECEIPT = 256 * 1024


class ReceiptIn(BaseModel):
    receipt: dict[str, Any] = Field(description="The decision receipt, as `model serve` wrote it.")


def model_rows(ctx: Context, mine: bool = False) -> list[dict[str, Any]]:
    s = ctx.session
    with as_refusals():
        events = s.model_registry.history(s.deployment.block, owner=s.address if mine else None)
    return [model_summary(e) for e in events]


def check_receipt(ctx: Context, receipt: dict[str, Any]) -> dict[str, Any]:
    with as_refusals():
        check = verify_receipt_file(ctx.session, receipt)
    return {
        "ok": check.ok,
        "index": check.index,
        "anchored": check.anchored,
        "input_matched": check.input_matched,
        "problems": check.problems,
    }


def router() -> APIRouter:
    api = APIRouter(tags=["models"])

    @api.get("/api/v1/models")
    def models(ctx: Context, user: SignedIn, mine: bool = False) -> dict[str, Any]:
        """Every model version registered on chain (``mine``: this home's)."""
        return {"models": model_rows(ctx, mine)}

    @api.post("/api/v1/decisions/verify", openapi_extra=documented(ReceiptIn))
    def verify(
        ctx: Context,
        user: SignedIn,
        body: Annotated[ReceiptIn, Depends(json_body(ReceiptIn, MAX_RECEIPT))],
    ) -> dict[str, Any]:
        """Check a decision receipt against the deciding node's key and anchors on chain."""
        return check_receipt(ctx, body.receipt)

    return api
