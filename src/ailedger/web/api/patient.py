"""A patient's say over their records, over the REST API (``/api/v1/patient/...``): the
hospitals' links to their wallet, the purposes they consent to, and their share of what
their records earned. Everything is the Patients contract's state (``session.patients``):
reading it is any signed-in user's; accepting a link, changing consent and claiming are
the operator's (the patient's).
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from ailedger.errors import ConfigError
from ailedger.web.api._refusals import as_refusals
from ailedger.web.api.bodies import documented, json_body
from ailedger.web.deps import Context, Operator, SignedIn, WebContext

PREFIX: Final = "/api/v1/patient"
MAX_BODY: Final = 4 * 1024
LinkId = Annotated[str, PathParam(pattern=r"^0x[0-9a-fA-F]{64}$", description="A link id.")]


def purpose_bits() -> dict[str, int]:
    """The purposes a patient consents to by name: DataMarket's, and matchmaking."""
    from ailedger.chain.contracts.data_market import PURPOSES
    from ailedger.chain.contracts.patients import MATCHMAKING

    return {**PURPOSES, "matchmaking": MATCHMAKING}


class ConsentIn(BaseModel):
    allow: list[str] = Field(
        max_length=6, description="Every purpose consented to from now on; [] withdraws all."
    )


def status(ctx: WebContext) -> dict[str, Any]:
    """The patient's links, consent and what they can claim, as the chain has them."""
    patients, me = ctx.session.patients, ctx.session.address
    with as_refusals():
        links = [patients.link(link) for link in patients.links_of(me)]
        consent = patients.consent_of(me)
        claimable = patients.claimable(me)
    return {
        "links": [
            {
                "link": "0x" + k.link_id.hex(),
                "hospital": k.hospital,
                "status": k.status.name.lower(),
            }
            for k in links
            if k is not None
        ],
        "consent": [name for name, bit in purpose_bits().items() if consent & bit],
        "claimable": str(claimable),
    }


def set_consent(ctx: WebContext, allow: list[str]) -> str:
    bits = purpose_bits()
    with as_refusals(), ctx.writing():
        unknown = [name for name in allow if name not in bits]
        if unknown:
            raise ConfigError(f"unknown purpose {unknown[0]!r}; choose from {', '.join(bits)}")
        mask = 0
        for name in allow:
            mask |= bits[name]
        return ctx.session.patients.set_consent(mask).tx_hash


def accept(ctx: WebContext, link: str) -> str:
    with as_refusals(), ctx.writing():
        return ctx.session.patients.accept_link(bytes.fromhex(link[2:])).tx_hash


def claim(ctx: WebContext) -> tuple[int, str]:
    with as_refusals(), ctx.writing():
        owed = ctx.session.patients.claimable(ctx.session.address)
        if owed == 0:
            raise ConfigError("nothing to claim yet: no sale has paid your records a share")
        return owed, ctx.session.patients.claim().tx_hash


def router() -> APIRouter:
    api = APIRouter(prefix=PREFIX, tags=["patient"])

    @api.get("/status")
    def patient_status(ctx: Context, user: SignedIn) -> dict[str, Any]:
        """This wallet's links to hospitals' records, its consent, and its share waiting."""
        return status(ctx)

    @api.post("/links/{link}/accept")
    def accept_route(link: LinkId, ctx: Context, user: Operator) -> dict[str, str]:
        """Accept a hospital's link to your wallet (the link id it handed you)."""
        return {"tx": accept(ctx, link)}

    @api.post("/consent", openapi_extra=documented(ConsentIn))
    def consent_route(
        ctx: Context,
        user: Operator,
        body: Annotated[ConsentIn, Depends(json_body(ConsentIn, MAX_BODY))],
    ) -> dict[str, str]:
        """Set the purposes you consent to, for every linked record; a withdrawn one takes
        effect at the next read, job, round or match."""
        return {"tx": set_consent(ctx, body.allow)}

    @api.post("/claim")
    def claim_route(ctx: Context, user: Operator) -> dict[str, str]:
        """Pay yourself what your records have earned so far."""
        owed, tx = claim(ctx)
        return {"amount": str(owed), "tx": tx}

    return api
