"""schemathesis against the MME endpoint's OpenAPI description: no input gets a 5xx,
and requests without a valid token get 401."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings

from ailedger.health.http import matchmaking_router
from ailedger.health.mme import MatchableCohort, MatchmakerService
from ailedger.health.mme_auth import IssuedTokens, authenticator
from ailedger.health.mme_schema import MME_CONTENT_TYPE, response_errors
from ailedger.health.patients import ClinicianContact, Patient

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "mme"


def _patients() -> list[Patient]:
    path = SHARED / "benchmark_patients.json"
    raw = json.loads(path.read_text()) if path.exists() else []
    return [
        Patient(
            local_id=p["id"],
            observed=tuple(f["id"] for f in p.get("features", []) if f.get("observed") != "no"),
            contact=ClinicianContact("Dr A", "Hospital A", "a@example.org"),
            matchmaking=True,
        )
        for p in raw[:20]
    ]


class _Audit:
    def append(self, entry: dict[str, object]) -> int:
        return 0


def _app(tokens_dir: Path) -> tuple[FastAPI, str]:
    tokens = IssuedTokens(tokens_dir / "tokens.json")
    token = tokens.issue("schemathesis")
    cohort = MatchableCohort.build(_patients(), secret=b"s" * 32)
    service = MatchmakerService(
        cohort, authenticator(tokens, "0x" + "11" * 20, lambda a: False), _Audit(), threshold=0.0
    )
    app = FastAPI()
    app.include_router(matchmaking_router(service))
    return app, token


TOKENS_DIR = Path(__import__("tempfile").mkdtemp(prefix="ailedger-mme-"))
APP, TOKEN = _app(TOKENS_DIR)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_mme_never_fails_with_a_token(case: schemathesis.Case) -> None:
    case.headers = {**(case.headers or {}), "X-Auth-Token": TOKEN}
    response = case.call(headers={"Content-Type": MME_CONTENT_TYPE})
    allowed = (200, 400, 413, 415, 422) if case.method == "POST" else (405,)
    assert response.status_code in allowed, (case.method, response.text)
    if response.status_code == 200:  # every answer valid by the official MME schema
        assert response_errors(response.json()) == [], response.text


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_mme_refuses_unknown_tokens(case: schemathesis.Case) -> None:
    case.headers = {**(case.headers or {}), "X-Auth-Token": "not-a-token"}
    response = case.call(headers={"Content-Type": MME_CONTENT_TYPE})
    assert response.status_code == (401 if case.method == "POST" else 405)


def test_schema_declares_the_mme_request() -> None:
    openapi = APP.openapi()
    body = openapi["paths"]["/mme/match"]["post"]["requestBody"]["content"]
    assert MME_CONTENT_TYPE in body
    if not _patients():
        pytest.skip("benchmark patients absent: cohort empty")


def test_who_asks_is_checked_before_the_body_is_read() -> None:
    import httpx

    from ailedger.peer.background import BackgroundServer

    huge = b'{"patient": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    headers = {"Content-Type": MME_CONTENT_TYPE}
    with BackgroundServer(APP) as url:
        ask = functools.partial(httpx.post, f"{url}/mme/match", content=huge, timeout=30)
        unknown = ask(headers={**headers, "X-Auth-Token": "no"})
        assert unknown.status_code == 401 and unknown.json()["message"]
        assert ask(headers={**headers, "X-Auth-Token": TOKEN}).status_code == 413
