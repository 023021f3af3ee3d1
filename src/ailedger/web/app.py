"""The web app, mounted on the node's app: pages per role over a REST API under /api/v1.

``mount_web`` adds to the node's FastAPI app (which keeps serving the node-to-node
routes ``/v1/*`` and ``/mme/*`` on the same port):

- the guard in front of every web route (``web.security``: Host check, session, sign-in
  gate, CSRF, security headers);
- the static files (``/static``: CSS, vendored htmx, ``app.js``);
- sign-in (``web.auth``) and the home page (``web.pages.home``);
- each capability's module of :data:`MODULES`, which exposes ``router()`` (API,
  ``/api/v1/...``, tagged for OpenAPI) and/or ``pages()`` (HTML);
- errors rendered for people: JSON ``{"error": ...}`` under ``/api``, an HTML page for a
  page (a small fragment for an htmx request), with a status that says whose fault it
  was: a person's mistake is never a 500.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from html import escape
from typing import Final

from fastapi import APIRouter, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ailedger.errors import (
    AiledgerError,
    ChainUnreachableError,
    ConfigError,
    LockedError,
    NotDeployedError,
    PeerUnreachableError,
    RequestRefusedError,
    TransactionRejectedError,
    TransactionRevertedError,
)
from ailedger.web.auth import SignIn
from ailedger.web.deps import WebContext
from ailedger.web.render import STATIC, page
from ailedger.web.security import WebGuard, is_api_path, is_web_path
from ailedger.web.sessions import SessionStore

# Each module exposes router() (API) and/or pages() (HTML); one line per capability.
MODULES: Final[tuple[str, ...]] = (
    "ailedger.web.auth",
    "ailedger.web.pages.home",
    "ailedger.web.pages.api_docs",
    "ailedger.web.api.compute",
    "ailedger.web.pages.jobs",
    "ailedger.web.pages.provider",
    "ailedger.web.api.health",
    "ailedger.web.pages.clinic",
    "ailedger.web.api.audit",
    "ailedger.web.pages.audit",
    "ailedger.web.api.sharing",
    "ailedger.web.api.account",
    "ailedger.web.pages.owner",
    "ailedger.web.pages.research",
    "ailedger.web.api.privacy",
    "ailedger.web.pages.privacy",
    "ailedger.web.api.models",
    "ailedger.web.api.market",
    "ailedger.web.pages.models",
    "ailedger.web.api.federated",
    "ailedger.web.pages.federated",
    "ailedger.web.api.wearables",
    "ailedger.web.pages.wearables",
    "ailedger.web.api.patient",
    "ailedger.web.pages.patient",
)

# Errors that are not a refused request, by what the person can do about them.
STATUSES: Final[tuple[tuple[type[AiledgerError], int], ...]] = (
    (ConfigError, 422),  # a value given is not valid: the message says which
    (TransactionRevertedError, 409),  # the chain's state does not allow it (now)
    (TransactionRejectedError, 409),
    (ChainUnreachableError, 503),
    (NotDeployedError, 503),
    (LockedError, 503),  # the node runs without its key
    (PeerUnreachableError, 502),
)
TITLES: Final = {
    400: "That request cannot be read",
    401: "Sign in first",
    403: "Not allowed",
    404: "Not found",
    409: "Not possible now",
    413: "Too large",
    422: "Not valid",
    502: "Another node does not answer",
    503: "Not available",
}


def routers() -> list[APIRouter]:
    """The routers of :data:`MODULES`, API first, in order."""
    found: list[APIRouter] = []
    for name in MODULES:
        module = importlib.import_module(name)
        for factory in ("router", "pages"):
            make = getattr(module, factory, None)
            if make is not None:
                found.append(make())
    from ailedger.web.auth import logout_router

    found.append(logout_router())
    return found


def mount_web(
    app: FastAPI,
    context: WebContext,
    *,
    auditors: Iterable[str] = (),
    hosts: Iterable[str] = (),
    sessions: SessionStore | None = None,
) -> SignIn:
    """Serve the web app on ``app`` for ``context``'s home. ``auditors`` may sign in
    read-only; ``hosts`` are names besides 127.0.0.1 and localhost the app answers to."""
    session = context.session
    sign_in = SignIn(
        home=session.home.path,
        chain_id=session.chain.chain_id,
        operator=session.address,
        account=session.account,
        auditors=auditors,
        sessions=sessions,
    )
    app.state.web = context
    app.state.sign_in = sign_in
    app.add_middleware(WebGuard, sessions=sign_in.sessions, hosts=hosts)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in routers():
        app.include_router(router)
    install_web_errors(app)
    return sign_in


def install_web_errors(app: FastAPI) -> None:
    """Errors of web routes rendered for people; the node-to-node routes keep theirs."""
    app.add_exception_handler(RequestRefusedError, _refused)  # type: ignore[arg-type]
    app.add_exception_handler(AiledgerError, _failed)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http)  # type: ignore[arg-type]


def status_of(exc: AiledgerError) -> int:
    for kind, status in STATUSES:
        if isinstance(exc, kind):
            return status
    status = getattr(exc, "http_status", 400)
    return status if isinstance(status, int) else 400


async def _refused(request: Request, exc: RequestRefusedError) -> Response:
    path = request.url.path
    if is_web_path(path) and not is_api_path(path):
        return _html_error(request, exc.http_status, exc.reason)
    return JSONResponse({"error": exc.reason, **exc.details}, status_code=exc.http_status)


async def _failed(request: Request, exc: AiledgerError) -> Response:
    path = request.url.path
    if not is_web_path(path):
        raise exc  # a node-to-node route: its own handlers decide, as before
    status = status_of(exc)
    if is_api_path(path):
        return JSONResponse({"error": str(exc)}, status_code=status)
    return _html_error(request, status, str(exc))


async def _invalid(request: Request, exc: RequestValidationError) -> Response:
    """A request whose parameters or body do not fit the route: 422, saying where."""
    errors = jsonable_encoder(exc.errors())
    where = "; ".join(
        f"{'.'.join(str(part) for part in error.get('loc', ()))}: {error.get('msg', '')}"
        for error in errors[:5]
    )
    message = f"invalid request: {where}"
    path = request.url.path
    if is_web_path(path) and not is_api_path(path):
        return _html_error(request, 422, message)
    if is_api_path(path):
        return JSONResponse({"error": message, "detail": errors}, status_code=422)
    return await request_validation_exception_handler(request, exc)


async def _http(request: Request, exc: StarletteHTTPException) -> Response:
    path = request.url.path
    if is_web_path(path) and not is_api_path(path) and exc.status_code >= 400:
        text = "no such page" if exc.status_code == 404 else str(exc.detail)
        return _html_error(request, exc.status_code, text)
    if is_api_path(path):
        return JSONResponse(
            {"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
        )
    return await http_exception_handler(request, exc)


def _html_error(request: Request, status: int, message: str) -> Response:
    if request.headers.get("hx-request") == "true":
        fragment = f'<p class="error" role="alert">{escape(message)}</p>'
        return HTMLResponse(fragment, status_code=status)
    title = TITLES.get(status, "Something went wrong")
    return page(
        request, "error.html", status_code=status, status=status, title=title, message=message
    )
