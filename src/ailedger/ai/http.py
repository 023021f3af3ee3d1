"""HTTP face of the prediction desk: a buyer's signed request for predictions.

Reads the signature (:mod:`ailedger.peer.signing`, bound to this node, the route and the
body's hash) and a bounded body, then calls the
:class:`~ailedger.ai.prediction_desk.PredictionDesk`, which decides. Refusals are
raised; the node turns them into statuses in one place.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ailedger.ai.prediction_desk import PredictionDesk
from ailedger.peer import wire
from ailedger.peer.rate_limit import PeerRateLimiter
from ailedger.peer.signed_json import read_signed_json

MAX_BODY = 1024 * 1024  # at most 1,000 inputs of a few dozen features


def prediction_router(desk: PredictionDesk, limiter: PeerRateLimiter | None = None) -> APIRouter:
    router = APIRouter(tags=["models"])
    limiter = limiter or PeerRateLimiter()
    me = desk.session.address

    @router.post(wire.MODEL_PREDICT)
    async def predict(request: Request) -> Response:
        """Decide inputs with a model sold by the prediction, for a buyer with a valid
        grant; each decision is recorded, explained and anchored, and counts as a use."""
        limiter.admit(request.client.host if request.client else "unknown")
        signer, body = await read_signed_json(request, me, MAX_BODY)
        answer = await run_in_threadpool(desk.answer, body, signer)
        return JSONResponse(answer)

    return router
