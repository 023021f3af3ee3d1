"""HTTP face of matchmaking: Matchmaker Exchange API v1.1 ``POST /match``, under ``/mme``.

Refusals answer in the API's own shape, ``{"message": ...}`` in the MME content type, by
this router's route class; their status is the one the error carries, as everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from ailedger.errors import PayloadTooLargeError, RequestRefusedError
from ailedger.health.mme import MatchmakerService
from ailedger.health.mme_schema import MME_CONTENT_TYPE, REQUEST_SCHEMA
from ailedger.peer import wire

MAX_MME_BODY = 1024 * 1024


class _MmeRoute(APIRoute):
    """A route whose refusals are MME documents rather than the node's ``{"error": ...}``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestRefusedError as exc:
                return JSONResponse(
                    {"message": exc.reason, **exc.details},
                    status_code=exc.http_status,
                    media_type=MME_CONTENT_TYPE,
                )

        return answer


def matchmaking_router(mme: MatchmakerService) -> APIRouter:
    router = APIRouter(route_class=_MmeRoute, tags=["matchmaking"])
    # Declared by hand: the route reads the raw body (the service validates it against
    # the MME JSON schema), so FastAPI cannot infer it; clients and schemathesis read it.
    body_schema = {"content": {MME_CONTENT_TYPE: {"schema": REQUEST_SCHEMA}}, "required": True}
    auth = [
        {
            "name": wire.AUTH_TOKEN_HEADER,
            "in": "header",
            "required": True,
            "schema": {"type": "string"},
        }
    ]

    @router.post(wire.MME_MATCH, openapi_extra={"requestBody": body_schema, "parameters": auth})
    async def match(request: Request) -> Response:
        """Find patients like the one described; answers only for consented patients."""
        # Who asks comes first: a body is read only from a known peer, so an unknown
        # one gets 401 whatever it sends.
        peer = await run_in_threadpool(
            mme.authenticate, request.headers.get(wire.AUTH_TOKEN_HEADER)
        )
        body = await request.body()
        if len(body) > MAX_MME_BODY:
            raise PayloadTooLargeError("request body too large")
        answer = await run_in_threadpool(
            mme.answer, peer, request.headers.get("content-type"), body
        )
        return JSONResponse(answer, media_type=MME_CONTENT_TYPE)

    return router
