"""The node's composed app: its description, its error mapping, its own-entry route."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from eth_account import Account
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from ailedger import errors
from ailedger.compute.requester.files import JobFiles
from ailedger.compute.requester.inbox import JobInbox
from ailedger.health.mme import MatchableCohort, MatchmakerService
from ailedger.node.app import create_app
from ailedger.peer import wire
from ailedger.peer.http_errors import install_error_handlers
from ailedger.peer.signing import sign_request
from tests.fakes import ListAudit

with warnings.catch_warnings():
    # starlette deprecates httpx in favour of httpx2, which is not installed here
    warnings.filterwarnings("ignore", message=".*httpx.*deprecated")
    from fastapi.testclient import TestClient

NODE = Account.create()


def _whole_app(tmp_path: Path, audit: ListAudit) -> FastAPI:
    """Every router the node has; the parts are stand-ins, as only the routes matter."""
    gateway = SimpleNamespace(audit=audit, owner_address=NODE.address, append_own=audit.append)
    cohort = MatchableCohort.build([], secret=b"s" * 32)
    matchmaker = MatchmakerService(cohort, lambda token: None, audit)
    jobs = JobInbox(JobFiles(tmp_path), NODE.address, cast(Any, None), cast(Any, None))
    desk = cast(Any, SimpleNamespace(session=SimpleNamespace(address=NODE.address)))
    return create_app(
        cast(Any, gateway), matchmaker=matchmaker, jobs=jobs, privacy=desk, predictions=desk
    )


@pytest.fixture
def audit() -> ListAudit:
    return ListAudit()


@pytest.fixture
def client(tmp_path: Path, audit: ListAudit) -> Iterator[TestClient]:
    with TestClient(_whole_app(tmp_path, audit)) as client:
        yield client


def _api_routes(routes: list[Any]) -> list[APIRoute]:
    """Every API route under ``routes``. Newer FastAPI keeps an included router as one
    entry (``original_router``); the node includes its routers without a prefix."""
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):
            found += _api_routes(route.original_router.routes)
    return found


def test_openapi_lists_every_route(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    served = _api_routes(cast(FastAPI, client.app).routes)
    missing = [
        (method, route.path)
        for route in served
        for method in route.methods
        if method.lower() not in paths.get(route.path, {})
    ]
    assert missing == []
    every_path = {
        value for name, value in vars(wire).items() if name.isupper() and value.startswith("/")
    }
    assert {route.path for route in served} == every_path


def test_the_description_is_served_and_no_page_loads_a_cdn(client: TestClient) -> None:
    assert client.get("/openapi.json").status_code == 200
    # A docs page from FastAPI would run a CDN's script on the node's origin; the web
    # app serves its own, vendored (tests/web).
    assert client.get("/api/docs").status_code == 404


# ------------------------------------------------------------------ error mapping

KINDS = [
    (errors.MalformedRequestError, 400),
    (errors.UnauthenticatedError, 401),
    (errors.ForbiddenError, 403),
    (errors.NotFoundError, 404),
    (errors.GoneError, 410),
    (errors.PayloadTooLargeError, 413),
    (errors.UnsupportedMediaTypeError, 415),
    (errors.UnprocessableError, 422),
]


def _raising(exc: Exception) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    router = APIRouter()

    @router.get("/fail")
    def fail() -> None:
        raise exc

    app.include_router(router)
    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize(("kind", "status"), KINDS)
def test_refusals_become_their_status(kind: type[errors.RequestRefusedError], status: int) -> None:
    with _raising(kind("because")) as client:
        response = client.get("/fail")
    assert (response.status_code, response.json()) == (status, {"error": "because"})


def test_refusal_details_reach_the_caller() -> None:
    with _raising(errors.UnprocessableError("invalid", {"errors": ["a/b"]})) as client:
        assert client.get("/fail").json() == {"error": "invalid", "errors": ["a/b"]}


def test_back_pressure_says_when_to_retry() -> None:
    with _raising(errors.BackPressureError("the audit log is busy", 0.2)) as client:
        response = client.get("/fail")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json() == {"error": "the audit log is busy"}


def test_a_throttled_peer_is_told_when_to_retry() -> None:
    with _raising(errors.TooManyRequestsError("too many requests", 2.5)) as client:
        response = client.get("/fail")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert response.json() == {"error": "too many requests"}


def test_other_errors_stay_server_errors() -> None:
    with _raising(errors.ChainUnreachableError("chain away")) as client:
        assert client.get("/fail").status_code == 500


def test_gateway_refusal_kinds() -> None:
    from ailedger.sharing.gateway import (
        AccessDeniedError,
        UnknownDatasetError,
        UnreadableRequestError,
    )

    assert AccessDeniedError("x").http_status == 403
    assert UnknownDatasetError("x").http_status == 404
    assert UnreadableRequestError("x").http_status == 400
    assert all(
        issubclass(k, AccessDeniedError) for k in (UnknownDatasetError, UnreadableRequestError)
    )


def test_mme_refusals_keep_the_mme_shape(client: TestClient) -> None:
    response = client.post(wire.MME_MATCH, content=b"{}", headers={"X-Auth-Token": "guess"})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/vnd.ga4gh.matchmaker")
    assert response.json() == {"message": "missing or unknown X-Auth-Token"}


# ------------------------------------------------------------------ own entries


def _own_entry(client: TestClient, account: Any, entry: Any) -> Any:
    body = json.dumps(entry).encode() if not isinstance(entry, bytes) else entry
    header = sign_request(account, NODE.address, "POST", wire.OWN_ENTRIES, body)
    return client.post(wire.OWN_ENTRIES, content=body, headers={wire.SIGNATURE_HEADER: header})


def test_own_entries_from_the_own_account(client: TestClient, audit: ListAudit) -> None:
    sent = {"kind": "mme-query", "direction": "incoming", "peers": 2, "nested": {"x": 1}}
    response = _own_entry(client, NODE, sent)
    assert response.status_code == 200 and response.json() == {"index": 0}
    # the node fixes the direction and keeps flat values only
    assert audit.entries == [{"kind": "mme-query", "direction": "outgoing", "peers": 2}]


def test_own_entries_refusals(client: TestClient, audit: ListAudit) -> None:
    stranger = _own_entry(client, Account.create(), {"kind": "mme-query"})
    assert stranger.status_code == 401
    assert _own_entry(client, NODE, b"{not json").status_code == 400
    assert _own_entry(client, NODE, {"kind": "read", "outcome": "served"}).status_code == 422
    unsigned = client.post(wire.OWN_ENTRIES, json={"kind": "mme-query"})
    assert unsigned.status_code == 401
    assert audit.entries == []
