"""Private analytics over the REST API (``/api/v1/privacy/...``): a dataset's privacy
budget, setting a cap on one's own dataset, and asking a differentially private query
or training of another node's private dataset.

Each route calls one function of :mod:`ailedger.privacy`, as ``ailedger privacy`` does.
Reading a budget is anyone's (it comes from the chain alone); setting a cap and asking
(which may pay for a grant and spends the dataset's budget) are the operator's.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from ailedger.privacy import buyer
from ailedger.privacy.owner import set_privacy_cap
from ailedger.privacy.report import BudgetReport, budget_report
from ailedger.web.api._refusals import as_refusals
from ailedger.web.api.bodies import documented, json_body
from ailedger.web.deps import Context, Operator, SignedIn

PREFIX = "/api/v1/privacy"
MAX_BODY = 64 * 1024
DatasetId = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$", description="Dataset id.")]
Hex32 = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{64}$")]


class CapIn(BaseModel):
    dataset: Hex32
    epsilon: float = Field(gt=0, le=100, description="The most epsilon all releases may spend.")
    delta: float = Field(default=1e-6, gt=0, le=0.1, description="Fixed once anything is charged.")


class CapOut(BaseModel):
    dataset: str
    epsilon_cap: float
    delta: float
    previous_cap: float | None
    tx_hash: str
    block: int


class ReleaseIn(BaseModel):
    dataset: Hex32
    kind: Literal["query", "training"]
    spec: dict[str, Any] = Field(description="The query or training spec (docs/privacy.md).")
    grant: int | None = Field(default=None, ge=0, lt=2**256, description="A grant you hold.")
    buy_for: str | None = Field(
        default=None, max_length=40, description="No grant: buy one for this purpose first."
    )


def _budget(ctx: Context, dataset: str) -> BudgetReport:
    with as_refusals():
        return budget_report(ctx.session, bytes.fromhex(dataset[2:]))


def router() -> APIRouter:
    api = APIRouter(prefix=PREFIX, tags=["privacy"])

    @api.get("/budget/{dataset}")
    def budget(ctx: Context, user: SignedIn, dataset: DatasetId) -> dict[str, Any]:
        """The dataset's cap, what was spent (recomputed from the chain's events), by
        buyer, by kind and by release, and what remains."""
        return _budget(ctx, dataset).as_dict()

    @api.post("/cap", response_model=CapOut, openapi_extra=documented(CapIn))
    def cap(
        ctx: Context,
        user: Operator,
        body: Annotated[CapIn, Depends(json_body(CapIn, MAX_BODY))],
    ) -> CapOut:
        """Set or change the privacy cap of one of this home's datasets; the first cap
        makes it private for good."""
        with as_refusals(), ctx.writing():
            change = set_privacy_cap(
                ctx.session, bytes.fromhex(body.dataset[2:]), body.epsilon, body.delta
            )
        return CapOut(**vars(change))

    @api.post("/release", openapi_extra=documented(ReleaseIn))
    def release(
        ctx: Context,
        user: Operator,
        body: Annotated[ReleaseIn, Depends(json_body(ReleaseIn, MAX_BODY))],
    ) -> dict[str, Any]:
        """Ask a DP query or training of a private dataset at its owner's node. The
        budget is checked before any payment; with ``buy_for`` a grant is bought first."""
        return ask(ctx, body)

    return api


def ask(ctx: Context, body: ReleaseIn) -> dict[str, Any]:
    """The release ``body`` asks for, from this home: budget first, then pay, then ask."""
    from ailedger.chain.contracts.data_market import purpose_bit
    from ailedger.errors import ConfigError

    s, dataset = ctx.session, bytes.fromhex(body.dataset[2:])
    with as_refusals(buyer.ReleaseRefusedError), ctx.writing():
        buyer.precheck(s, dataset, body.kind, body.spec)
        grant = body.grant
        if grant is None:
            if body.buy_for is None:
                raise ConfigError("give a grant you hold, or buy_for: a purpose to buy one")
            grant = buyer.buy_access(s, dataset, purpose_bit(body.buy_for)).grant_id
        return buyer.ask(s, dataset, grant, body.kind, body.spec)
