"""HTTP face of the privacy desk: a buyer's signed request for a private release.

Reads the signature (:mod:`ailedger.peer.signing`, bound to this node, the route and the
body's hash) and a bounded body, then calls the :class:`~ailedger.privacy.desk.PrivacyDesk`,
which decides. Refusals are raised; the node turns them into statuses in one place.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ailedger.peer import wire
from ailedger.peer.rate_limit import PeerRateLimiter
from ailedger.peer.signed_json import read_signed_json
from ailedger.privacy.desk import PrivacyDesk

MAX_BODY = 64 * 1024  # a spec declares columns and statistics: a few kilobytes


def privacy_router(desk: PrivacyDesk, limiter: PeerRateLimiter | None = None) -> APIRouter:
    router = APIRouter(tags=["privacy"])
    limiter = limiter or PeerRateLimiter()
    me = desk.session.address

    @router.post(wire.PRIVATE_RELEASE)
    async def release(request: Request) -> Response:
        """Answer a differentially private query or train a DP model over a private
        dataset, for a buyer with a valid grant; the spend is charged on chain first."""
        limiter.admit(request.client.host if request.client else "unknown")
        signer, body = await read_signed_json(request, me, MAX_BODY)
        answer = await run_in_threadpool(desk.answer, body, signer)
        return JSONResponse(answer)

    return router
