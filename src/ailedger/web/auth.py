"""Sign-in: who may use the web app, and the routes that let them in.

Two ways in, one check. A browser wallet signs an EIP-4361 message over a nonce from
``GET /api/v1/auth/nonce`` and posts it to ``POST /api/v1/auth/siwe``; a one-time link
printed by ``ailedger node login-link`` is posted to ``POST /api/v1/auth/link``, and the
node then writes and signs the same kind of message with its own key. Both go through
:meth:`SignIn.verify`: the message must name this server (domain and URI), this home's
chain, a nonce issued here and not yet used, a time window that holds now, and a signer
that is the home's account (role ``operator``) or an auditor the operator named at
``node start`` (role ``auditor``, read-only). A signed-in user gets a server-side
session (``web.sessions``) and a CSRF token for every state-changing request.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from ailedger.errors import ForbiddenError, MalformedRequestError, UnauthenticatedError
from ailedger.web import login_links, siwe
from ailedger.web.deps import Role, SignedIn, User
from ailedger.web.sessions import NonceStore, SessionStore, WebSession, cookie_name

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

CLOCK_SKEW: Final = timedelta(minutes=1)
STATEMENT: Final = "Sign in to this ailedger home."
LINK_MESSAGE_LIFETIME: Final = timedelta(minutes=1)


class SignIn:
    """The sign-in state of one web app: who may sign in, its nonces and sessions."""

    def __init__(
        self,
        *,
        home: Path,
        chain_id: int,
        operator: str,
        account: LocalAccount | None,
        auditors: Iterable[str] = (),
        sessions: SessionStore | None = None,
        nonces: NonceStore | None = None,
    ) -> None:
        self.home = home
        self.chain_id = chain_id
        self.operator = operator
        self.account = account
        self.auditors = frozenset(a.lower() for a in auditors)
        self.sessions = sessions or SessionStore()
        self.nonces = nonces or NonceStore()

    def role_of(self, address: str) -> Role | None:
        if address.lower() == self.operator.lower():
            return "operator"
        if address.lower() in self.auditors:
            return "auditor"
        return None

    def verify(self, text: str, signature: str, *, host: str, origin: str) -> User:
        """The user ``text`` signed in by ``signature`` says, if every check holds; a
        refusal raises and says which check failed. ``host`` is the request's Host and
        ``origin`` its scheme and host: a message signed for another site is refused."""
        message = siwe.parse(text)
        if message.domain != host:
            raise UnauthenticatedError(
                f"the message is for {message.domain!r}, this server is {host!r}"
            )
        if _origin(message.uri) != origin:
            raise UnauthenticatedError(f"the message's URI is not on {origin}")
        if message.chain_id != self.chain_id:
            raise UnauthenticatedError(
                f"the message is for chain {message.chain_id}; this home is on chain "
                f"{self.chain_id}"
            )
        now = datetime.now(UTC)
        if siwe.read_time(message.issued_at, "Issued At") > now + CLOCK_SKEW:
            raise UnauthenticatedError("the message is issued in the future: check your clock")
        expires = message.expiration_time
        if expires is not None and siwe.read_time(expires, "Expiration Time") <= now:
            raise UnauthenticatedError("the message has expired: sign a new one")
        not_before = message.not_before
        if not_before is not None and siwe.read_time(not_before, "Not Before") > now:
            raise UnauthenticatedError("the message is not valid yet (Not Before)")
        signer = siwe.recover_signer(text, signature)
        if signer != message.address:
            raise UnauthenticatedError("the signature is not by the message's address")
        # The nonce last: a message refused for another reason leaves it usable.
        if not self.nonces.consume(message.nonce):
            raise UnauthenticatedError(
                "the nonce is unknown, used or expired: get a new one from GET /api/v1/auth/nonce"
            )
        role = self.role_of(signer)
        if role is None:
            raise ForbiddenError(
                f"{signer} may not sign in here: only the home's account or an auditor "
                "named with `ailedger node start --auditor` may"
            )
        return User(signer, role)

    def sign_link(self, code: str, *, host: str, origin: str) -> User:
        """Sign in through a one-time link: the node signs a message for its own
        account, checked like any other; ``read_only`` links give the auditor role."""
        read_only = login_links.consume_link(self.home, code)
        if self.account is None:
            raise UnauthenticatedError("this node runs without its key: sign in with a wallet")
        now = datetime.now(UTC)
        message = siwe.SiweMessage(
            domain=host,
            address=self.account.address,
            statement=STATEMENT,
            uri=origin,
            chain_id=self.chain_id,
            nonce=self.nonces.issue(),
            issued_at=siwe.timestamp(now),
            expiration_time=siwe.timestamp(now + LINK_MESSAGE_LIFETIME),
        )
        text = message.text()
        from eth_account.messages import encode_defunct

        signed = self.account.sign_message(encode_defunct(text=text))
        user = self.verify(
            text, "0x" + signed.signature.hex().removeprefix("0x"), host=host, origin=origin
        )
        return User(user.address, "auditor") if read_only else user


def _origin(uri: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


def request_origin(request: Request) -> tuple[str, str]:
    """(Host, scheme://Host) of ``request``."""
    host = request.headers.get("host", "")
    return host, f"{request.url.scheme}://{host}"


def sign_in_state(request: Request) -> SignIn:
    state: SignIn = request.app.state.sign_in
    return state


class NonceOut(BaseModel):
    nonce: str = Field(description="Put it in the EIP-4361 message; valid once, for 5 minutes.")
    domain: str
    uri: str
    chain_id: int
    statement: str
    address: str | None = Field(
        default=None, description="The address asked about, EIP-55 checksummed."
    )


class SiweIn(BaseModel):
    message: str = Field(max_length=siwe.MAX_MESSAGE_CHARS)
    signature: str = Field(max_length=140)


class LinkIn(BaseModel):
    code: str = Field(max_length=64, description="The code in the link's #code= fragment.")


class SignedInOut(BaseModel):
    address: str
    role: Role
    csrf_token: str = Field(description="Send it as X-CSRF-Token on every POST/PUT/DELETE.")


class MeOut(BaseModel):
    address: str
    role: Role


def _started(request: Request, user: User) -> JSONResponse:
    state = sign_in_state(request)
    state.sessions.end(request.cookies.get(cookie_name(request.scope)))  # a new one replaces it
    session = state.sessions.start(user)
    body = SignedInOut(address=user.address, role=user.role, csrf_token=session.csrf_token)
    response = JSONResponse(body.model_dump())
    set_session_cookie(
        response, session, cookie_name(request.scope), secure=request.url.scheme == "https"
    )
    return response


def set_session_cookie(response: Response, session: WebSession, name: str, *, secure: bool) -> None:
    response.set_cookie(
        name,
        session.id,
        max_age=max(0, int(session.expires - time.time())),
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure,
    )


def router() -> APIRouter:
    api = APIRouter(prefix="/api/v1/auth", tags=["sign-in"])

    @api.get("/nonce", response_model=NonceOut)
    def nonce(request: Request, address: str | None = None) -> NonceOut:
        """A one-time nonce and what a wallet's EIP-4361 message must say (with
        ``address``: that address as the message must write it, EIP-55)."""
        from eth_utils.address import is_hex_address, to_checksum_address

        if address is not None and not is_hex_address(address):
            raise MalformedRequestError("address must be 0x and 40 hex digits")
        state = sign_in_state(request)
        host, origin = request_origin(request)
        return NonceOut(
            address=None if address is None else to_checksum_address(address),
            nonce=state.nonces.issue(),
            domain=host,
            uri=origin,
            chain_id=state.chain_id,
            statement=STATEMENT,
        )

    @api.post("/siwe", response_model=SignedInOut)
    def sign_in_with_ethereum(request: Request, body: SiweIn) -> JSONResponse:
        """Sign in with an EIP-4361 message signed by the home's account or an auditor."""
        host, origin = request_origin(request)
        user = sign_in_state(request).verify(body.message, body.signature, host=host, origin=origin)
        return _started(request, user)

    @api.post("/link", response_model=SignedInOut)
    def sign_in_with_link(request: Request, body: LinkIn) -> JSONResponse:
        """Sign in with the code of a one-time link (`ailedger node login-link`)."""
        host, origin = request_origin(request)
        user = sign_in_state(request).sign_link(body.code, host=host, origin=origin)
        return _started(request, user)

    @api.get("/me", response_model=MeOut)
    def me(user: SignedIn) -> MeOut:
        """Who is signed in."""
        return MeOut(address=user.address, role=user.role)

    @api.post("/logout", status_code=204)
    def api_logout(request: Request) -> Response:
        """End this session."""
        return _ended(request, Response(status_code=204))

    return api


def logout_router() -> APIRouter:
    pages = APIRouter(include_in_schema=False)

    @pages.post("/logout")
    def logout(request: Request) -> Response:
        return _ended(request, RedirectResponse("/login", status_code=303))

    return pages


def _ended(request: Request, response: Response) -> Response:
    name = cookie_name(request.scope)
    sign_in_state(request).sessions.end(request.cookies.get(name))
    response.delete_cookie(name, path="/", httponly=True, samesite="strict")
    return response
