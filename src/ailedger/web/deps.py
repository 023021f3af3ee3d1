"""What a web route depends on: the home it serves and the user signed in.

A route asks for them with FastAPI's ``Depends``::

    @router.post("/owner/requests/{request_id}/grant")
    def grant(request_id: int, ctx: Context, user: Operator) -> ...:
        with ctx.writing():
            ...

``SignedIn`` (``signed_in``) admits any signed-in user (reading); ``Operator``
(``operator``) only one who may act for the home (every state-changing route). Sign-in
sets ``request.state.user`` (``web.auth``); tests of a router alone override
``signed_in`` instead.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import Depends, Request

from ailedger.errors import ForbiddenError, UnauthenticatedError

if TYPE_CHECKING:
    from ailedger.health.mme import MatchmakerService
    from ailedger.session import Session
    from ailedger.sharing.owner import OwnerNode

# operator: the home's own account (a person holding its key or a one-time link), who
# acts for the home; auditor: reads everything the app shows, changes nothing.
Role = Literal["operator", "auditor"]


@dataclass(frozen=True)
class User:
    address: str
    role: Role

    @property
    def can_write(self) -> bool:
        return self.role == "operator"


@dataclass
class WebContext:
    """The home the web app serves: its session (unlocked: the node signs the
    operator's transactions), its gateway and audit log, its matchmaker if it holds
    patients."""

    session: Session
    node: OwnerNode | None = None
    matchmaker: MatchmakerService | None = None
    _writes: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Held while a route sends transactions: requests are served by a thread pool,
        and two sends from one account at once would race for the same nonce."""
        with self._writes:
            yield


def web_context(request: Request) -> WebContext:
    context: WebContext = request.app.state.web
    return context


def signed_in(request: Request) -> User:
    user: User | None = getattr(request.state, "user", None)
    if user is None:
        raise UnauthenticatedError(
            "sign in first: open the link `ailedger node login-link` prints, or sign in "
            "with a wallet (POST /api/v1/auth/siwe)"
        )
    return user


def operator(user: Annotated[User, Depends(signed_in)]) -> User:
    if not user.can_write:
        raise ForbiddenError(
            f"{user.address} is signed in read-only (auditor): this changes the home's "
            "state, which only the home's operator may do"
        )
    return user


# What routes write in their signatures.
Context = Annotated[WebContext, Depends(web_context)]
SignedIn = Annotated[User, Depends(signed_in)]
Operator = Annotated[User, Depends(operator)]
