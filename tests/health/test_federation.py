"""Asking MME peers: every answer is untrusted. One that is not JSON, too large, too slow,
in another content type, refused, redirected or not an MME response by the official schema
makes that peer reported, never a crash, and never hides the other peers' results. The
token a peer issued goes to that peer only and shows nowhere else."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse

from ailedger.errors import ConfigError
from ailedger.health import federation
from ailedger.health.federation import PeerTarget, _Refused, _results_of, ask_peers
from ailedger.health.mme_peers import OutsidePeer
from ailedger.health.mme_schema import content_type, response_errors
from ailedger.peer.background import BackgroundServer

CONTACT = {"name": "Dr A", "href": "https://hospital-a.example.org/genetics"}
GOOD = {
    "score": {"patient": 0.93},
    "patient": {"id": "p1", "contact": CONTACT, "features": [{"id": "HP:0001250"}]},
}
QUERY = {
    "patient": {
        "id": "q",
        "contact": {"name": "Dr Q", "href": "mailto:q@clinic.example.org"},
        "features": [{"id": "HP:0001250", "observed": "yes"}],
    }
}
TOKEN = "peer-issued-secret-token-3f9a"


def test_a_valid_answer_is_read() -> None:
    assert _results_of(json.dumps({"results": [GOOD]}).encode()) == ([GOOD], [])
    assert _results_of(b"{}") == ([], [])


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[" * 100_000 + b"]" * 100_000,
        b"1" * 5000,
        b"[]",
        b'{"results": {}}',
        json.dumps({"results": [GOOD] * (federation.MAX_RESULTS + 1)}).encode(),
    ],
)
def test_an_answer_that_is_not_an_mme_response_is_refused(body: bytes) -> None:
    with pytest.raises(_Refused):
        _results_of(body)


@pytest.mark.parametrize(
    "bad",
    [
        1,
        {**GOOD, "score": {"patient": "high"}},
        {**GOOD, "score": 1},
        {**GOOD, "patient": {**GOOD["patient"], "id": 7}},
        {**GOOD, "patient": {**GOOD["patient"], "contact": "x"}},
        {**GOOD, "patient": {**GOOD["patient"], "contact": {"name": "x", "href": ""}}},
        {**GOOD, "patient": {**GOOD["patient"], "contact": {"name": "x", "href": "javascript:1"}}},
        {**GOOD, "patient": {"id": "p", "contact": CONTACT}},  # neither features nor genes
        {**GOOD, "patient": {**GOOD["patient"], "features": [{"id": "seizures"}]}},
        {**GOOD, "score": {"patient": float("nan")}},
        {**GOOD, "score": {"patient": float("inf")}},
        {**GOOD, "score": {"patient": 10**400}},  # an int no float holds: it crashed the sort
        {**GOOD, "score": {"patient": 5}},  # valid by the schema, which sets no range
    ],
)
def test_an_invalid_result_is_dropped_with_the_reason_and_the_rest_kept(bad: Any) -> None:
    results, notes = _results_of(json.dumps({"results": [bad, GOOD]}).encode())
    assert results == [GOOD] and len(notes) == 1 and notes[0].startswith("results/0 dropped: ")


def test_a_result_invalid_only_where_this_node_does_not_read_is_kept_without_that_part() -> None:
    """Two of the MME benchmark patients carry a variant with no ``start``: their match
    still counts, the variant (never read here) is left behind, and the peer's status says
    so. Fields of the peer's own never reach the result."""
    gene = {"gene": {"id": "FBN1"}, "variant": {"assembly": "GRCh37", "referenceName": "18"}}
    odd = {**GOOD, "patient": {**GOOD["patient"], "genomicFeatures": [gene]}, "html": "<b>"}
    results, notes = _results_of(json.dumps({"results": [odd]}).encode())
    assert results == [
        {**GOOD, "patient": {**GOOD["patient"], "genomicFeatures": [{"gene": {"id": "FBN1"}}]}}
    ]
    assert notes == [
        "results/0 repaired: patient/genomicFeatures/0/variant: 'start' is a required property"
    ]


class _Peers:
    """Peers that each misbehave one way, and one that answers well (and records what it
    was sent)."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.app = FastAPI()
        app = self.app

        @app.post("/good/match")
        async def good(request: Request) -> Response:
            self.seen.append({"headers": dict(request.headers), "body": await request.json()})
            return JSONResponse({"results": [GOOD], "disclaimer": "research use"})

        @app.post("/garbage/match")
        async def garbage() -> Response:
            return Response(b"<<not json>>", media_type="application/json")

        @app.post("/html/match")
        async def html() -> Response:
            return Response(b"<html>login</html>", media_type="text/html")

        @app.post("/huge/match")
        async def huge() -> Response:
            chunk = b'{"results": [' + b" " * 60_000

            async def body() -> AsyncIterator[bytes]:
                for _ in range(5):
                    yield chunk

            return StreamingResponse(body(), media_type="application/json")

        @app.post("/slow/match")
        async def slow() -> Response:
            async def body() -> AsyncIterator[bytes]:
                for _ in range(40):  # a byte at a time: each read is quick, the whole is not
                    await asyncio.sleep(0.1)
                    yield b" "

            return StreamingResponse(body(), media_type="application/json")

        @app.post("/schema/match")
        async def schema() -> Response:
            return JSONResponse({"results": "none"})

        @app.post("/error/match")
        async def error() -> Response:
            return JSONResponse({"message": "down"}, status_code=500)

        @app.post("/redirect/match")
        async def redirect() -> Response:
            return RedirectResponse("/good/match", status_code=307)


@pytest.fixture(scope="module")
def peers() -> Iterator[tuple[_Peers, str]]:
    served = _Peers()
    with BackgroundServer(served.app) as url:
        yield served, url


def _target(url: str, name: str, version: tuple[int, int] = (1, 0)) -> PeerTarget:
    return PeerTarget(name, "outside", f"{url}/{name}/match", content_type(version), TOKEN)


def test_each_misbehaving_peer_is_reported_and_the_good_answer_still_counts(
    peers: tuple[_Peers, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, url = peers
    monkeypatch.setattr(federation, "TIMEOUT_S", 1)
    monkeypatch.setattr(federation, "MAX_ANSWER_BYTES", 100_000)
    names = ["good", "garbage", "html", "huge", "slow", "schema", "error", "redirect", "missing"]
    # A URL on chain is anyone's to write: one that is not even a URL is reported too.
    broken = PeerTarget("0x" + "ee" * 20, "chain", "http://[::1", content_type((1, 1)), "t")
    answer = ask_peers([_target(url, n) for n in names] + [broken], QUERY, limit=10)

    assert [(r["patient"]["id"], r["node"], r["source"]) for r in answer.results] == [
        ("p1", "good", "outside")
    ]
    assert response_errors({"results": [GOOD]}) == []
    asked = answer.asked
    assert asked["good"] == "ok: 1 results"
    assert asked["garbage"] == "refused: the answer is not JSON"
    assert asked["html"] == "refused: answered 'text/html', not MME JSON"
    assert asked["huge"] == "refused: the answer is over 100000 bytes"
    assert asked["slow"] == "refused: the answer took over 1 s"
    assert asked["schema"] == "refused: the answer is not an MME response (no results list)"
    assert asked["error"] == "refused: HTTP 500"
    assert asked["redirect"] == "refused: HTTP 307"  # never followed: the token stays put
    assert asked["missing"] == "refused: HTTP 404"
    assert asked["0x" + "ee" * 20] == "unreachable (InvalidURL)"
    assert TOKEN not in json.dumps(answer.__dict__)


def test_a_peer_gets_its_version_its_token_and_a_reachable_contact(
    peers: tuple[_Peers, str],
) -> None:
    served, url = peers
    for version in ((1, 0), (1, 1)):
        ask_peers([_target(url, "good", version)], QUERY, limit=5)
        sent = served.seen[-1]
        assert sent["headers"]["content-type"] == content_type(version)
        assert sent["headers"]["accept"] == content_type(version)
        assert sent["headers"]["x-auth-token"] == TOKEN
        assert sent["body"] == QUERY


def test_a_query_peers_could_not_answer_is_not_sent(peers: tuple[_Peers, str]) -> None:
    served, url = peers
    before = len(served.seen)
    nowhere = {"patient": {**QUERY["patient"], "contact": {"name": "x", "href": "local"}}}
    with pytest.raises(ConfigError, match="href"):
        ask_peers([_target(url, "good")], nowhere, limit=5)
    assert len(served.seen) == before


def test_no_token_in_what_describes_a_peer() -> None:
    peer = OutsidePeer("pm", "https://mme.example.org", TOKEN)
    target = PeerTarget("pm", "outside", peer.match_url, peer.media_type, TOKEN)
    for shown in (repr(peer), str(peer), repr(target), json.dumps(peer.shown())):
        assert TOKEN not in shown
