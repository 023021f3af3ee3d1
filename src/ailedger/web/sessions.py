"""Who is signed in: server-side sessions, and the one-time nonces sign-in consumes.

A session is a random 256-bit id in an HttpOnly, SameSite=Strict cookie; what it
stands for (the user, its CSRF token, when it ends) stays in this process's memory, so a
restart signs everyone out and nothing about a session can be forged from outside.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ailedger.web.deps import User

COOKIE: Final = "ailedger_session"


def cookie_name(scope: Mapping[str, Any]) -> str:
    """The session cookie of the web app that ``scope`` (an ASGI request) reached.
    Browsers send a host's cookies to every port of it: homes on one machine, each
    serving on its own port, keep a cookie each rather than signing each other out."""
    server = scope.get("server")
    if isinstance(server, list | tuple) and len(server) == 2 and server[1] is not None:
        return f"{COOKIE}_{int(server[1])}"
    return COOKIE


SESSION_LIFETIME_S: Final = 12 * 3600
NONCE_LIFETIME_S: Final = 5 * 60
MAX_NONCES: Final = 10_000  # unused nonces kept at once: a flood cannot grow memory

Clock = Callable[[], float]


@dataclass(frozen=True)
class WebSession:
    id: str
    user: User
    csrf_token: str
    expires: float


class SessionStore:
    """Sessions in memory, each ending ``lifetime`` seconds after sign-in."""

    def __init__(self, lifetime: float = SESSION_LIFETIME_S, clock: Clock = time.time) -> None:
        self._sessions: dict[str, WebSession] = {}
        self._lock = threading.Lock()
        self.lifetime = lifetime
        self.clock = clock

    def start(self, user: User) -> WebSession:
        session = WebSession(
            id=secrets.token_urlsafe(32),
            user=user,
            csrf_token=secrets.token_urlsafe(32),
            expires=self.clock() + self.lifetime,
        )
        with self._lock:
            self._prune()
            self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> WebSession | None:
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None and session.expires <= self.clock():
                del self._sessions[session_id]
                return None
            return session

    def end(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)

    def _prune(self) -> None:
        now = self.clock()
        for key in [k for k, s in self._sessions.items() if s.expires <= now]:
            del self._sessions[key]


class NonceStore:
    """One-time nonces for SIWE messages: issued here, consumed once, expiring."""

    def __init__(self, lifetime: float = NONCE_LIFETIME_S, clock: Clock = time.time) -> None:
        self._nonces: dict[str, float] = {}
        self._lock = threading.Lock()
        self.lifetime = lifetime
        self.clock = clock

    def issue(self) -> str:
        nonce = secrets.token_hex(16)  # letters and digits only, as EIP-4361 asks
        with self._lock:
            now = self.clock()
            for key in [k for k, until in self._nonces.items() if until <= now]:
                del self._nonces[key]
            if len(self._nonces) >= MAX_NONCES:
                oldest = min(self._nonces, key=self._nonces.__getitem__)
                del self._nonces[oldest]
            self._nonces[nonce] = now + self.lifetime
        return nonce

    def consume(self, nonce: str) -> bool:
        """Whether ``nonce`` was issued here, unused and unexpired; it is used up now."""
        with self._lock:
            until = self._nonces.pop(nonce, None)
        return until is not None and until > self.clock()
