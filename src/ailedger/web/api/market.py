"""The market for models and algorithms over the REST API (``/api/v1/models/...``): the
offers with what the chain confirms of each, buying a grant of one, and asking the
model's owner for predictions under a grant.

Each route calls one function of :mod:`ailedger.ai.market`, as ``ailedger market``
does. Listing only reads the chain (and the owners' published descriptions), so anyone
signed in may; buying pays and asking spends the grant's uses, so only the operator may.
The buyer's node checks an offer's claims on chain before paying and every prediction's
receipt against the chain before showing it; what fails those checks is refused here
with the reason, never shown as if it held.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from ailedger.ai.market import OfferRefusedError, PredictionRefusedError, buy, predict
from ailedger.ai.offers import ALGORITHM, MODEL_PREDICTIONS, Offer, find_offers
from ailedger.ai.prediction_desk import MAX_REQUEST_INPUTS
from ailedger.errors import BackPressureError, RequestRefusedError, UnprocessableError
from ailedger.units import MAX_UINT256
from ailedger.web.api._refusals import RETRY_S, as_refusals
from ailedger.web.api.bodies import documented, json_body
from ailedger.web.api.sharing import Purpose
from ailedger.web.deps import Context, Operator, SignedIn

PREFIX: Final = "/api/v1/models"
MAX_BODY: Final = 512 * 1024  # up to MAX_REQUEST_INPUTS rows of a few features each
MAX_FEATURES: Final = 256
OFFER_ID: Final = r"^0x[0-9a-fA-F]{64}$"
OfferId = Annotated[str, Path(pattern=OFFER_ID, description="The offer id (0x + 64 hex).")]
Kind = Literal["", "model-licence", "model-predictions", "algorithm"]
# Strict: a feature is a finite number, never a string, a boolean or NaN read as one.
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Features = Annotated[dict[str, Number], Field(min_length=1, max_length=MAX_FEATURES)]


class UntrustedAnswerError(RequestRefusedError):
    """The owner's node failed, or answered what does not prove itself (a receipt that
    does not verify against the chain): nothing it said is shown."""

    http_status = 502


class BuyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    purpose: Purpose = Field(description="Your use; one of the offer's purposes.")


class BoughtOut(BaseModel):
    offer: str
    kind: str
    grant: int
    status: str = Field(description="granted, or pending until the owner approves.")
    next: str = Field(description="What to do with the grant.")


class PredictIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grant: int = Field(strict=True, ge=0, le=MAX_UINT256, description="A predictions grant.")
    inputs: list[Features] = Field(
        min_length=1,
        max_length=MAX_REQUEST_INPUTS,
        description="One object of numbers by feature name per prediction.",
    )


def offers(ctx: Context, kind: str = "") -> list[Offer]:
    """Every model and algorithm on offer, each with what the chain confirms of it."""
    with as_refusals():
        return find_offers(ctx.session, kind=kind)


def buy_offer(ctx: Context, offer: str, purpose: str) -> BoughtOut:
    """Pay for a grant of ``offer``; refused before paying when its claims do not hold."""
    with ctx.writing(), as_refusals(OfferRefusedError):
        bought, grant, status = buy(ctx.session, bytes.fromhex(offer[2:]), purpose)
    if bought.kind == MODEL_PREDICTIONS:
        then = f"ask for predictions under grant {grant}"
    else:
        what = "the job bundle" if bought.kind == ALGORITHM else "the model's files"
        then = f"fetch {what} with `ailedger market fetch {grant} DIR`"
    return BoughtOut(offer=bought.offer_id, kind=bought.kind, grant=grant, status=status, next=then)


def ask_predictions(ctx: Context, body: PredictIn) -> dict[str, Any]:
    """Predictions under a grant, each with its receipt checked against the chain."""
    try:
        with as_refusals():
            answer = predict(ctx.session, body.grant, body.inputs)
    except PredictionRefusedError as exc:
        raise _refusal(exc) from exc
    receipts = answer["receipts"]
    return {
        "grant": body.grant,
        "passport": answer.get("passport"),
        "outputs": _proven_outputs(receipts),
        "uses_left": answer.get("uses_left"),
        "receipts": receipts,
    }


def _proven_outputs(receipts: list[dict[str, Any]]) -> list[float]:
    """The outputs the verified receipts record. The owner's answer also lists outputs
    beside its receipts, which nothing checks: show only what a receipt proves."""
    try:
        return [float(json.loads(r["entry"])["output"]) for r in receipts]
    except (KeyError, TypeError, ValueError) as exc:
        raise UntrustedAnswerError(f"a receipt records no output: {exc}") from exc


def _refusal(exc: PredictionRefusedError) -> RequestRefusedError | BackPressureError:
    """The owner's refusal of the request (its inputs, the grant's uses, a retired
    version) is the caller's to act on: 422; a node that failed, or whose receipts do
    not prove its answer, is not: 502."""
    if exc.status == 429:
        return BackPressureError(f"{exc}; retry later", RETRY_S)
    if exc.status is not None and 400 <= exc.status < 500:
        return UnprocessableError(str(exc))
    return UntrustedAnswerError(str(exc))


def router() -> APIRouter:
    api = APIRouter(prefix=PREFIX, tags=["models"])

    @api.get("/offers")
    def list_offers(
        ctx: Context,
        user: SignedIn,
        kind: Annotated[Kind, Query(description="Only offers of this kind.")] = "",
    ) -> dict[str, Any]:
        """Every model and algorithm on offer; ``problems`` lists each claim the chain
        does not confirm (empty: confirmed on chain)."""
        return {"offers": [o.as_json() for o in offers(ctx, kind)]}

    @api.post("/offers/{offer}/buy", response_model=BoughtOut, openapi_extra=documented(BuyIn))
    def buy_route(
        offer: OfferId,
        ctx: Context,
        user: Operator,
        body: Annotated[BuyIn, Depends(json_body(BuyIn, MAX_BODY))],
    ) -> BoughtOut:
        """Pay for a grant of an offer, for one of its purposes. Refused (422) before
        anything is paid when its claims do not hold on chain (a model that is not the
        seller's, or retired)."""
        return buy_offer(ctx, offer, body.purpose)

    @api.post("/predict", openapi_extra=documented(PredictIn))
    def predict_route(
        ctx: Context,
        user: Operator,
        body: Annotated[PredictIn, Depends(json_body(PredictIn, MAX_BODY))],
    ) -> dict[str, Any]:
        """Ask the model's owner for predictions under a predictions grant: one output
        and one decision receipt per input (each checked here against the owner's
        anchors on chain), and the uses the grant has left."""
        return ask_predictions(ctx, body)

    return api
