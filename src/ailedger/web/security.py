"""The web app's guard, in front of every web route: no route can forget it.

For each request to a web route (everything but the node-to-node routes ``/v1/*`` and
``/mme/*``, which carry their own signatures and are left alone) :class:`WebGuard`:

1. refuses a ``Host`` that is not the address the node serves on (``127.0.0.1``,
   ``localhost`` or a name the operator gave, at the port the request came in on): a
   page of another site whose name was rebound to 127.0.0.1 (DNS rebinding) sends its own
   name, and is refused;
2. finds the session of the ``ailedger_session_<port>`` cookie, sets ``request.state.user``
   and ``request.state.csrf_token``;
3. sends a visitor who is not signed in to ``/login`` (pages) or answers 401 (API),
   except on the sign-in routes, the static files and the API's description;
4. on every state-changing request (not GET/HEAD/OPTIONS) requires the session's CSRF
   token, in ``X-CSRF-Token`` or in a form's ``csrf_token`` field, compared in constant
   time; the two sign-in posts, made before there is a session, must be JSON instead (a
   cross-site page cannot send JSON without a CORS preflight, which this server never
   grants);
5. adds to every answer a strict Content-Security-Policy (no inline script or style, no
   other origin, no framing), ``nosniff``, no referrer, and ``no-store`` (static files
   aside).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable
from typing import Final
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ailedger.untrusted_json import UnreadableJsonError, check_nesting
from ailedger.web.deps import User
from ailedger.web.sessions import SessionStore, cookie_name

CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
NODE_PREFIXES: Final = ("/v1/", "/mme/")
PUBLIC_PATHS: Final = frozenset(
    {
        "/login",
        "/api/v1/auth/nonce",
        "/api/v1/auth/siwe",
        "/api/v1/auth/link",
        "/openapi.json",
        "/api/docs",
    }
)
SIGN_IN_POSTS: Final = frozenset({"/api/v1/auth/siwe", "/api/v1/auth/link"})
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
LOCAL_NAMES: Final = frozenset({"127.0.0.1", "localhost", "[::1]"})
MAX_FORM_BYTES: Final = 1 << 20  # a form read for its csrf_token field; uploads use the header
MAX_JSON_BYTES: Final = 1 << 20  # receipts, sign-in messages, settings: all far smaller
# Bodies the framework reads without a recursive parser (forms, uploads, streamed).
NOT_JSON: Final = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})


def is_web_path(path: str) -> bool:
    return not path.startswith(NODE_PREFIXES)


def is_api_path(path: str) -> bool:
    return path.startswith("/api/")


class WebGuard:
    """ASGI middleware: the checks above, for ``sessions``' users."""

    def __init__(self, app: ASGIApp, sessions: SessionStore, hosts: Iterable[str] = ()) -> None:
        self.app = app
        self.sessions = sessions
        self.names = LOCAL_NAMES | {h.lower() for h in hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_web_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        send = _with_headers(send, path)
        headers = Headers(scope=scope)
        if not self._host_allowed(headers.get("host", ""), scope.get("server")):
            await _json(
                send,
                400,
                "this server answers only at 127.0.0.1 or localhost: "
                "open the address `ailedger node start` printed",
            )
            return
        session = self.sessions.get(_cookie(headers.get("cookie", ""), cookie_name(scope)))
        if session is not None:
            state = dict(scope.get("state") or {})
            state.update(user=session.user, csrf_token=session.csrf_token)
            scope["state"] = state
        public = path in PUBLIC_PATHS or path.startswith("/static/")
        if session is None and not public:
            await _unsigned(send, path, headers)
            return
        if scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        checked = await _bounded_json(receive, send, headers)
        if checked is None:
            return
        receive = checked
        if path in SIGN_IN_POSTS:
            if headers.get("content-type", "").split(";")[0].strip() != "application/json":
                await _json(send, 415, "sign in with a JSON body (Content-Type: application/json)")
                return
            await self.app(scope, receive, send)
            return
        if session is None:  # a public path that changes state: none exists
            await _json(send, 403, "sign in first")
            return
        token = headers.get("x-csrf-token")
        content_type = headers.get("content-type", "").split(";")[0].strip()
        if token is None and content_type == "application/x-www-form-urlencoded":
            body, receive = await _buffered(receive)
            if body is None:
                await _json(send, 413, f"a form has at most {MAX_FORM_BYTES} bytes")
                return
            fields = parse_qs(body.decode("latin-1")).get("csrf_token")
            token = fields[0] if fields else None
        if token is None or not hmac.compare_digest(
            token.encode("utf-8", "replace"), session.csrf_token.encode()
        ):
            await _json(
                send,
                403,
                "missing or wrong CSRF token: send the session's token as "
                "X-CSRF-Token (it is in every page, and in the sign-in answer)",
            )
            return
        await self.app(scope, receive, send)

    def _host_allowed(self, host: str, server: object) -> bool:
        name, _, port = host.lower().rpartition(":") if not host.endswith("]") else (host, "", "")
        if not name:
            name, port = host.lower(), ""
        if name not in self.names:
            return False
        if isinstance(server, list | tuple) and len(server) == 2 and server[1] is not None:
            expected = int(server[1])
            given = int(port) if port.isdigit() else 80
            return given == expected
        return True


def signed_in_user(state: object) -> User | None:
    user = getattr(state, "user", None)
    return user if isinstance(user, User) else None


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def _with_headers(send: Send, path: str) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            names = {k.lower() for k, _ in headers}
            extra = [
                (b"x-content-type-options", b"nosniff"),
                (b"referrer-policy", b"no-referrer"),
                (b"x-frame-options", b"DENY"),
            ]
            extra.append((b"content-security-policy", CSP.encode()))
            if not path.startswith("/static/"):
                extra.append((b"cache-control", b"no-store"))
            headers += [(k, v) for k, v in extra if k not in names]
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


async def _json(send: Send, status: int, error: str, extra: list[tuple[bytes, bytes]] = []) -> None:  # noqa: B006
    body = json.dumps({"error": error}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + extra})
    await send({"type": "http.response.body", "body": body})


async def _unsigned(send: Send, path: str, headers: Headers) -> None:
    message = (
        "sign in first: open the link `ailedger node login-link` prints, or sign in "
        "with a wallet (POST /api/v1/auth/siwe)"
    )
    if is_api_path(path):
        await _json(send, 401, message)
    elif headers.get("hx-request") == "true":
        await _json(send, 401, message, [(b"hx-redirect", b"/login")])
    else:
        await send(
            {
                "type": "http.response.start",
                "status": 303,
                "headers": [(b"location", b"/login"), (b"content-length", b"0")],
            }
        )
        await send({"type": "http.response.body", "body": b""})


async def _bounded_json(receive: Receive, send: Send, headers: Headers) -> Receive | None:
    """Whatever the framework may parse as JSON (any body but a form or an upload) is
    bounded in size and in nesting before a route sees it, signed in or not: the process
    runs with a recursion limit of 100,000 (py_ecc sets it), and ``json.loads`` on a few
    hundred kilobytes of ``[`` would overflow the C stack and kill the node. A
    ``receive`` replaying the body, or None once refused."""
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in NOT_JSON:
        return receive
    body, replay = await _buffered(receive, MAX_JSON_BYTES)
    if body is None:
        await _json(send, 413, f"a JSON body has at most {MAX_JSON_BYTES} bytes")
        return None
    try:
        check_nesting(body)
    except UnreadableJsonError as exc:
        await _json(send, 400, f"the body cannot be read: {exc}")
        return None
    return replay


async def _buffered(receive: Receive, limit: int = MAX_FORM_BYTES) -> tuple[bytes | None, Receive]:
    """The whole body (None past ``limit``) and a ``receive`` that replays it."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None, receive
        chunks.append(chunk)
        more = message.get("more_body", False)
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay
