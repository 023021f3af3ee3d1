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

from ailedger.health.patient_links import PatientLinkError
from ailedger.web.api._refusals import as_refusals
from ailedger.web.api.bodies import documented, json_body
from ailedger.web.deps import Context, Operator, SignedIn, WebContext

PREFIX: Final = "/api/v1/patient"
MAX_BODY: Final = 4 * 1024
LinkId = Annotated[str, PathParam(pattern=r"^0x[0-9a-fA-F]{64}$", description="A link id.")]


class ConsentIn(BaseModel):
    allow: list[str] = Field(
        max_length=6, description="Every purpose consented to from now on; [] withdraws all."
    )


def purposes() -> list[str]:
    """The purposes a patient consents to by name: DataMarket's, and matchmaking."""
    from ailedger.health.patient_links import PATIENT_PURPOSES

    return list(PATIENT_PURPOSES)


def status(ctx: WebContext) -> dict[str, Any]:
    """Every hospital that proposed a link to this wallet (with its state now), the
    consent, and what can be claimed, as the chain has them (``ailedger patient status``)."""
    from ailedger.health.patient_links import patient_status, purpose_names

    with as_refusals():
        found = patient_status(ctx.session)
    return {
        "links": [
            {
                "link": "0x" + k.link_id.hex(),
                "hospital": k.hospital,
                "status": k.status.name.lower(),
            }
            for k in found.links
        ],
        "consent": purpose_names(found.consent),
        "claimable": str(found.claimable),
    }


def set_consent(ctx: WebContext, allow: list[str]) -> list[str]:
    """Consent to exactly ``allow`` (the others withdrawn); returns the purposes now."""
    from ailedger.health import patient_links

    withdraw = [name for name in purposes() if name not in allow]
    with as_refusals(PatientLinkError), ctx.writing():
        mask = patient_links.set_consent(ctx.session, allow, withdraw)
    return patient_links.purpose_names(mask)


def accept(ctx: WebContext, link: str) -> None:
    from ailedger.health.patient_links import accept_link, parse_link_id

    with as_refusals(PatientLinkError), ctx.writing():
        accept_link(ctx.session, parse_link_id(link))


def claim(ctx: WebContext) -> int:
    from ailedger.health import patient_links

    with as_refusals(PatientLinkError), ctx.writing():
        return patient_links.claim(ctx.session)


def router() -> APIRouter:
    api = APIRouter(prefix=PREFIX, tags=["patient"])

    @api.get("/status")
    def patient_status(ctx: Context, user: SignedIn) -> dict[str, Any]:
        """This wallet's links to hospitals' records, its consent, and its share waiting."""
        return status(ctx)

    @api.post("/links/{link}/accept")
    def accept_route(link: LinkId, ctx: Context, user: Operator) -> dict[str, str]:
        """Accept a hospital's link to your wallet (the link id it handed you)."""
        accept(ctx, link)
        return {"link": link, "status": "active"}

    @api.post("/consent", openapi_extra=documented(ConsentIn))
    def consent_route(
        ctx: Context,
        user: Operator,
        body: Annotated[ConsentIn, Depends(json_body(ConsentIn, MAX_BODY))],
    ) -> dict[str, list[str]]:
        """Set the purposes you consent to, for every linked record; a withdrawn one takes
        effect at the next read, job, round or match."""
        return {"consent": set_consent(ctx, body.allow)}

    @api.post("/claim")
    def claim_route(ctx: Context, user: Operator) -> dict[str, str]:
        """Pay yourself what your records have earned so far."""
        return {"amount": str(claim(ctx))}

    return api
