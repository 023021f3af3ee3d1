"""The loopback desks the Flower apps call: the coordinator's (rounds) and an
institution's (one round's training). Served on 127.0.0.1 only, each behind a bearer token that its
own Flower process was given; a caller without it is refused."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ailedger.errors import MalformedRequestError, PayloadTooLargeError, UnauthenticatedError
from ailedger.untrusted_json import parse_untrusted

if TYPE_CHECKING:
    from ailedger.federated.coordinator import Coordinator
    from ailedger.federated.institution import InstitutionDesk

MAX_BODY = 16 * 1024 * 1024  # a round's updates: a few thousand floats per institution
ROUND_START = "/fl/round/start"
ROUND_RESULT = "/fl/round/result"
DONE = "/fl/done"
TRAIN = "/fl/train"
SECAGG = "/fl/secagg"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def _check_token(request: Request, token: str) -> None:
    given = request.headers.get("authorization", "")
    if not secrets.compare_digest(given.encode(), f"Bearer {token}".encode()):
        raise UnauthenticatedError("this desk answers only its own Flower app (bearer token)")


async def _body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise PayloadTooLargeError(f"request body over {MAX_BODY} bytes")
    try:
        return parse_untrusted(raw)
    except ValueError:
        raise MalformedRequestError("the body is not JSON") from None


def coordinator_app(coordinator: Coordinator, token: str) -> FastAPI:
    """The requester's desk: round start, round result, done."""
    from ailedger.peer.http_errors import install_error_handlers

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    install_error_handlers(app)
    router = APIRouter()
    handlers = {
        ROUND_START: coordinator.start_round,
        ROUND_RESULT: coordinator.finish_round,
        DONE: coordinator.done,
    }
    for path, handler in handlers.items():
        router.add_api_route(path, _post(handler, token), methods=["POST"])
    app.include_router(router)
    return app


def _post(handler: Any, token: str) -> Any:
    async def endpoint(request: Request) -> Response:
        _check_token(request, token)
        answer = await run_in_threadpool(handler, await _body(request))
        return JSONResponse(answer)

    return endpoint


def institution_app(desk: InstitutionDesk, token: str) -> FastAPI:
    """An institution's desk: one round's update, trained here under consent."""
    from ailedger.federated.institution import parse_secagg_order, parse_train_order
    from ailedger.peer.http_errors import install_error_handlers

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    install_error_handlers(app)

    @app.post(TRAIN)
    async def train(request: Request) -> Response:
        _check_token(request, token)
        order = parse_train_order(await _body(request))
        return JSONResponse(await run_in_threadpool(desk.train, order))

    @app.post(SECAGG)
    async def secagg(request: Request) -> Response:
        _check_token(request, token)
        order = parse_secagg_order(await _body(request))
        return JSONResponse(await run_in_threadpool(desk.secagg, order))

    return app
