"""The web app's guard: CSRF on every write, the headers of every answer, the Host
check, the cookie, the sign-in gate, the read-only role, and errors rendered for people."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from eth_account import Account
from fastapi import APIRouter, Request
from fastapi.responses import Response

from ailedger.errors import (
    ChainUnreachableError,
    ConfigError,
    NotFoundError,
    TransactionRevertedError,
)
from ailedger.web.deps import Operator, SignedIn
from ailedger.web.render import page
from ailedger.web.security import CSP
from tests.web.homes import Chain, WebNode, client, link_client, signed_in_client, web_node

AUDITOR = Account.create()
ERRORS = {
    "config": ConfigError("price must be a whole number of AIL"),
    "reverted": TransactionRevertedError("the grant was already revoked"),
    "chain": ChainUnreachableError("the chain does not answer"),
    "missing": NotFoundError("no dataset 0x12 here"),
}


class Counter:
    writes = 0


def _test_routes() -> APIRouter:
    """A write and errors, as a capability's routes would have them."""
    router = APIRouter()

    @router.post("/api/v1/test/writes")
    def write(user: Operator) -> dict[str, int]:
        Counter.writes += 1
        return {"writes": Counter.writes}

    @router.get("/api/v1/test/errors/{kind}")
    def api_error(kind: str, user: SignedIn) -> None:
        raise ERRORS[kind]

    @router.get("/test/errors/{kind}")
    def page_error(kind: str, user: SignedIn) -> None:
        raise ERRORS[kind]

    @router.get("/test/page")
    def a_page(request: Request, user: SignedIn) -> Response:
        return page(request, "error.html", status=200, title="fine", message="fine")

    return router


@pytest.fixture(scope="module")
def node(web_chain: Chain) -> Iterator[WebNode]:
    with web_node(web_chain.party("home"), auditors=(AUDITOR.address,)) as served:
        served.app.include_router(_test_routes())
        yield served


# CSRF


def test_a_write_with_the_sessions_token_goes_through(node: WebNode) -> None:
    http = link_client(node)
    before = Counter.writes
    assert http.post("/api/v1/test/writes").status_code == 200
    assert Counter.writes == before + 1


@pytest.mark.parametrize("token", [None, "", "forged", "A" * 43])
def test_a_write_without_the_right_token_is_refused(node: WebNode, token: str | None) -> None:
    http = link_client(node)
    http.headers.pop("X-CSRF-Token")
    if token is not None:
        http.headers["X-CSRF-Token"] = token
    before = Counter.writes
    answer = http.post("/api/v1/test/writes")
    assert answer.status_code == 403
    assert "CSRF" in answer.json()["error"]
    assert Counter.writes == before


def test_the_token_of_another_session_is_refused(node: WebNode) -> None:
    mine, theirs = link_client(node), link_client(node)
    mine.headers["X-CSRF-Token"] = theirs.headers["X-CSRF-Token"]
    before = Counter.writes
    assert mine.post("/api/v1/test/writes").status_code == 403
    assert Counter.writes == before


def test_a_form_carries_its_token_in_a_field(node: WebNode) -> None:
    http = link_client(node)
    token = http.headers.pop("X-CSRF-Token")
    before = Counter.writes
    assert http.post("/api/v1/test/writes", data={"csrf_token": "wrong"}).status_code == 403
    assert Counter.writes == before
    assert http.post("/api/v1/test/writes", data={"csrf_token": token}).status_code == 200
    assert Counter.writes == before + 1


def test_an_auditor_may_not_write(node: WebNode) -> None:
    for http in (link_client(node, read_only=True), signed_in_client(node, AUDITOR)):
        before = Counter.writes
        answer = http.post("/api/v1/test/writes")
        assert answer.status_code == 403
        assert "read-only" in answer.json()["error"]
        assert Counter.writes == before


# Headers, Host, cookie


@pytest.mark.parametrize("path", ["/", "/login", "/api/v1/auth/me", "/test/page"])
def test_every_answer_carries_the_security_headers(node: WebNode, path: str) -> None:
    answer = link_client(node).get(path)
    assert answer.status_code == 200
    assert answer.headers["content-security-policy"] == CSP
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-frame-options"] == "DENY"


def test_pages_have_no_inline_script_or_style(node: WebNode) -> None:
    html = link_client(node).get("/").text
    assert "<script>" not in html and "style=" not in html and " on" + "click" not in html
    assert '<meta name="htmx-config"' in html and '"allowEval":false' in html


def test_static_files_are_served_with_nosniff(node: WebNode) -> None:
    for name in ("htmx.min.js", "app.js", "app.css"):
        answer = client(node).get(f"/static/{name}")
        assert answer.status_code == 200
        assert answer.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "host", ["evil.example:8700", "evil.example", "127.0.0.1:9999", "10.0.0.1:8700"]
)
def test_another_host_is_refused(node: WebNode, host: str) -> None:
    http = link_client(node)
    answer = http.get("/api/v1/auth/me", headers={"host": host})
    assert answer.status_code == 400
    assert "127.0.0.1" in answer.json()["error"]
    assert client(node).get("/login", headers={"host": host}).status_code == 400


def test_localhost_is_this_host_too(node: WebNode) -> None:
    assert client(node).get("/login", headers={"host": "localhost:8700"}).status_code == 200


def test_node_to_node_routes_are_left_alone(node: WebNode) -> None:
    answer = client(node).get("/v1/health", headers={"host": "node.example.org"})
    assert answer.status_code == 200
    assert "content-security-policy" not in answer.headers


def test_the_session_cookie_is_httponly_strict(node: WebNode) -> None:
    from ailedger.web.login_links import create_link

    code = create_link(node.session.home.path, read_only=False)
    answer = client(node).post("/api/v1/auth/link", json={"code": code})
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("ailedger_session_8700=")  # one cookie per port: per home
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/" in cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    assert len(value) >= 43  # 256 random bits


# The sign-in gate


def test_an_unsigned_api_call_is_401_json(node: WebNode) -> None:
    answer = client(node).get("/api/v1/test/errors/config")
    assert answer.status_code == 401
    assert "login-link" in answer.json()["error"]
    assert client(node).post("/api/v1/test/writes").status_code == 401


def test_an_unsigned_page_visit_goes_to_login(node: WebNode) -> None:
    answer = client(node).get("/", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"
    htmx = client(node).get("/", headers={"hx-request": "true"})
    assert htmx.status_code == 401
    assert htmx.headers["hx-redirect"] == "/login"


def test_the_home_page_shows_who_and_where(node: WebNode) -> None:
    html = link_client(node).get("/").text
    assert node.session.address in html
    assert "operator" in html
    assert "ETH" in html and "AIL" in html
    for href in ("/owner", "/research", "/provider", "/clinic", "/audit"):
        assert f'href="{href}"' in html
    assert "read-only" in link_client(node, read_only=True).get("/").text


# Errors


@pytest.mark.parametrize(
    ("kind", "status"), [("config", 422), ("reverted", 409), ("chain", 503), ("missing", 404)]
)
def test_errors_are_json_on_the_api_and_html_on_pages(
    node: WebNode, kind: str, status: int
) -> None:
    http = link_client(node)
    api = http.get(f"/api/v1/test/errors/{kind}")
    assert api.status_code == status
    assert api.json() == {"error": str(ERRORS[kind])}
    html = http.get(f"/test/errors/{kind}")
    assert html.status_code == status
    assert html.headers["content-type"].startswith("text/html")
    assert "<!doctype html>" in html.text
    fragment = http.get(f"/test/errors/{kind}", headers={"hx-request": "true"})
    assert fragment.status_code == status
    assert fragment.text.startswith('<p class="error" role="alert">')


def test_unknown_pages_and_bad_parameters_are_answered_for_people(node: WebNode) -> None:
    http = link_client(node)
    missing = http.get("/no/such/page")
    assert missing.status_code == 404
    assert "<!doctype html>" in missing.text
    api = http.get("/api/v1/no/such/route")
    assert api.status_code == 404
    assert api.json() == {"error": "Not Found"}
    bad = http.get("/api/v1/auth/nonce", params={"address": "0x12"})
    assert bad.status_code == 400
    assert "40 hex digits" in bad.json()["error"]
    invalid = http.post("/api/v1/auth/link", json={"code": ["not", "a", "string"]})
    assert invalid.status_code == 422
    assert invalid.json()["error"].startswith("invalid request: body.code")


def test_the_api_is_described(node: WebNode) -> None:
    spec = client(node).get("/openapi.json")
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    assert paths["/api/v1/auth/siwe"]["post"]["tags"] == ["sign-in"]
    assert "/login" not in paths
    # every route of the web API is grouped under a tag in the docs
    for path, operations in paths.items():
        if path.startswith("/api/v1/") and not path.startswith("/api/v1/test/"):
            assert all(op.get("tags") for op in operations.values()), path
    docs = client(node).get("/api/docs")
    assert docs.status_code == 200
    # Swagger UI from the package, under the same strict policy as every page.
    assert docs.headers["content-security-policy"] == CSP
    scripts = re.findall(r'<script src="([^"]+)"', docs.text)
    assert scripts and all(src.startswith("/static/") for src in scripts)
    assert "<script>" not in docs.text


def test_the_node_can_serve_without_the_web_app(web_chain: Chain) -> None:
    from ailedger.node.service import node_app
    from ailedger.sharing.owner import OwnerNode
    from tests.web.homes import BASE_URL, TestClient

    session = web_chain.party("gateway-only")
    with OwnerNode(session) as owner:
        http = TestClient(node_app(session, owner, web=False), base_url=BASE_URL)
        assert http.get("/login").status_code == 404
        assert http.get("/v1/health").status_code == 200


def test_two_homes_on_one_machine_keep_a_session_each(web_chain: Chain) -> None:
    """A browser sends 127.0.0.1's cookies to every port: each home's web app names its
    cookie after its port, so signing in to one does not sign out of the other."""
    import httpx

    from ailedger.web.login_links import create_link
    from tests.web.homes import served, web_node

    with (
        web_node(web_chain.party("home-a")) as a,
        web_node(web_chain.party("home-b")) as b,
        served(a),
        served(b),
        httpx.Client() as browser,  # one cookie jar, as in one browser
    ):
        for node in (a, b):
            code = create_link(node.session.home.path, read_only=False)
            answer = browser.post(f"{node.url}/api/v1/auth/link", json={"code": code})
            assert answer.status_code == 200
        for node in (a, b):
            me = browser.get(f"{node.url}/api/v1/auth/me")
            assert me.status_code == 200 and me.json()["address"] == node.session.address
