"""HTTP face of the privacy desk: a buyer's signed request for a private release.

Reads the signature (:mod:`ailedger.peer.signing`, bound to this node, the route and the
body's hash) and a bounded body, then calls the :class:`~ailedger.privacy.desk.PrivacyDesk`,
which decides. Refusals are raised; the node turns them into statuses in one place.
"""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ailedger.errors import MalformedRequestError, PayloadTooLargeError, UnauthenticatedError
from ailedger.peer import wire
from ailedger.peer.rate_limit import PeerRateLimiter
from ailedger.peer.signing import request_signer
from ailedger.privacy.desk import PrivacyDesk
from ailedger.untrusted_json import parse_untrusted

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
        raw = await request.body()
        if len(raw) > MAX_BODY:
            raise PayloadTooLargeError(f"request body too large (over {MAX_BODY} bytes)")
        signer = request_signer(
            request.headers.get(wire.SIGNATURE_HEADER),
            me,
            request.method,
            request.url.path,
            body_sha256=hashlib.sha256(raw).digest(),
        )
        if signer is None:
            raise UnauthenticatedError("sign the request with your account (ailedger-req1)")
        try:
            body: Any = parse_untrusted(raw)
        except ValueError:
            raise MalformedRequestError("the body is not JSON") from None
        answer = await run_in_threadpool(desk.answer, body, signer)
        return JSONResponse(answer)

    return router
