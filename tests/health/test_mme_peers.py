"""Outside MME peers and the node's MME contact: kept in the home (the peers' tokens 0600,
shown nowhere), refused when unusable, and used by ``ailedger health match --peer``."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from ailedger.errors import ConfigError, NotFoundError
from ailedger.health.mme_peers import OutsidePeer, OutsidePeers, parse_version
from ailedger.health.node import HealthNode
from ailedger.health.patients import Patient
from ailedger.peer.background import BackgroundServer
from tests.cli.test_cli import home_env, run

__all__ = ["home_env"]  # the CLI tests' home, a fixture used below

TOKEN = "outside-peer-token-5d1c7e"
DESK = "https://hospital-a.example.org/mme"


def test_peers_are_kept_private_and_never_shown(tmp_path: Path) -> None:
    peers = OutsidePeers(tmp_path / "mme-peers.json")
    assert not peers.add(OutsidePeer("pm", "https://mme.example.org", TOKEN, "/v1/match", (1, 1)))
    assert stat.S_IMODE(peers.path.stat().st_mode) == 0o600
    [peer] = peers.all()
    assert (peer.match_url, peer.media_type, peer.token) == (
        "https://mme.example.org/v1/match",
        "application/vnd.ga4gh.matchmaker.v1.1+json",
        TOKEN,
    )
    assert TOKEN not in repr(peers.all()) and TOKEN not in json.dumps(peer.shown())
    peers.path.chmod(0o644)  # widened by hand: narrowed at the next read
    peers.all()
    assert stat.S_IMODE(peers.path.stat().st_mode) == 0o600
    assert peers.add(OutsidePeer("pm", "https://mme.example.org", "new")) is True
    assert [p.token for p in peers.named(["pm"])] == ["new"]
    with pytest.raises(NotFoundError):
        peers.named(["other"])
    assert peers.remove("pm") and not peers.remove("pm") and peers.all() == []


@pytest.mark.parametrize(
    ("url", "path", "version", "problem"),
    [
        ("http://mme.example.org", "/match", (1, 0), "plain http"),
        ("https://user:pw@mme.example.org", "/match", (1, 0), "credentials"),
        ("https://mme.example.org?x=1", "/match", (1, 0), "query"),
        ("ftp://mme.example.org", "/match", (1, 0), "https://host"),
        ("mme.example.org", "/match", (1, 0), "https://host"),
        ("https://mme.example.org", "match", (1, 0), "starts with /"),
        ("https://mme.example.org", "/match?x", (1, 0), "no query"),
        ("https://mme.example.org", "/match", (1, 2), "not spoken"),
        ("https://mme.example.org", "/match", (2, 0), "not spoken"),
        ("https://mme.example.org", "/match", (1, 0), "address"),  # named 0x...: see below
    ],
)
def test_a_peer_that_could_not_be_asked_safely_is_refused(
    url: str, path: str, version: tuple[int, int], problem: str
) -> None:
    name = "0x" + "ab" * 20 if problem == "address" else "pm"
    with pytest.raises(ConfigError, match=problem):
        OutsidePeer(name, url, TOKEN, path, version)


def test_a_token_http_headers_cannot_carry_is_refused() -> None:
    """httpx sends header values as ASCII: such a token would fail every federated query."""
    with pytest.raises(ConfigError, match="printable ASCII"):
        OutsidePeer("pm", "https://mme.example.org", "token-\u2713")


def test_versions_read_as_major_dot_minor() -> None:
    assert parse_version("1.0") == (1, 0) and parse_version(" 1.1 ") == (1, 1)
    for text in ("1", "v1.1", "1.x", "", "1.1.1"):
        with pytest.raises(ConfigError):
            parse_version(text)


def test_mme_does_not_start_with_a_contact_peers_cannot_reach(tmp_path: Path) -> None:
    with HealthNode(tmp_path / "home") as node:
        node.store.put(Patient("p1", observed=("HP:0001250",), matchmaking=True))
        (node.directory / "mme-contact.json").write_text('{"name": "desk", "href": "local"}')
        with pytest.raises(ConfigError, match="not an http"):
            node.cohort  # noqa: B018 - building the cohort is what starts MME


class _FakePeer:
    """An MME node that records what it was sent and answers one valid result."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.app = FastAPI()

        @self.app.post("/mme/v1/match")
        async def match(request: Request) -> Response:
            self.seen.append({"headers": dict(request.headers), "body": await request.json()})
            result = {
                "score": {"patient": 0.8},
                "patient": {
                    "id": "their-p7",
                    "contact": {"name": "Dr Out\x1b[2J", "href": "mailto:out@mme.example.org"},
                    "genomicFeatures": [{"gene": {"id": "KMT2D"}}],
                },
            }
            return JSONResponse({"results": [result]}, media_type="application/json")


@pytest.fixture
def fake_peer() -> Iterator[tuple[_FakePeer, str]]:
    peer = _FakePeer()
    with BackgroundServer(peer.app) as url:
        yield peer, url


@pytest.mark.integration
@pytest.mark.slow
def test_outside_peers_through_the_cli(
    home_env: Path,
    fake_peer: tuple[_FakePeer, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served, url = fake_peer
    code, _, err = run(["init"], capsys, monkeypatch)
    assert code == 0, err

    code, out, err = run(
        ["health", "contact", "Genetics desk", "ailedger node"], capsys, monkeypatch
    )
    assert code != 0 and "not an http(s) URL or a mailto:" in out + err
    code, out, err = run(["health", "contact", "Genetics desk", DESK], capsys, monkeypatch)
    assert code == 0 and DESK in out, err

    add = ["health", "peer", "add", "out", url, "--token", TOKEN, "--path", "/mme/v1/match"]
    code, out, err = run([*add, "--mme-version", "1.1"], capsys, monkeypatch)
    assert code == 0, err
    code, out, err = run(["health", "peer", "list", "--json"], capsys, monkeypatch)
    assert json.loads(out)["peers"] == [
        {"name": "out", "url": url, "path": "/mme/v1/match", "version": "1.1"}
    ]

    ask = ["health", "match", "--peer", "out", "--gene", "KMT2D"]
    code, out, err = run([*ask, "--json"], capsys, monkeypatch)
    assert code == 0, err
    answer = json.loads(out)
    assert answer["asked"] == {"out": "ok: 1 results"} and answer["sources"] == {"out": "outside"}
    assert [(r["patient"]["id"], r["node"], r["source"]) for r in answer["results"]] == [
        ("their-p7", "out", "outside")
    ]
    sent = served.seen[-1]
    assert sent["headers"]["content-type"] == "application/vnd.ga4gh.matchmaker.v1.1+json"
    assert sent["headers"]["x-auth-token"] == TOKEN
    assert sent["body"]["patient"]["contact"] == {
        "name": "Genetics desk",
        "institution": "",
        "href": DESK,
    }
    code, out, err = run(ask, capsys, monkeypatch)
    assert "asked out (outside): ok: 1 results" in out and "at outside node out" in out
    assert "contact Dr Out[2J" in out and "\x1b" not in out  # no escape reaches the terminal

    # --federated: the nodes on chain (none but this one here) and every outside peer.
    code, out, err = run(
        ["health", "match", "--federated", "--gene", "KMT2D", "--json"], capsys, monkeypatch
    )
    assert code == 0, err
    assert json.loads(out)["asked"] == {"out": "ok: 1 results"}

    code, out, err = run(["audit", "history", "--json"], capsys, monkeypatch)
    outgoing = [e for e in json.loads(out)["entries"] if e["kind"] == "mme-query"]
    assert [(e["direction"], e["outside_peers"], e["results"]) for e in outgoing] == [
        ("outgoing", 1, 1)
    ] * 3

    # The token is in the peers file only: no output, log entry or other file of the home.
    assert TOKEN not in out + err
    holding = [p for p in home_env.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]
    assert holding == [home_env / "health" / "mme-peers.json"]
    assert stat.S_IMODE(holding[0].stat().st_mode) == 0o600

    code, out, err = run(["health", "peer", "remove", "out"], capsys, monkeypatch)
    assert code == 0, err
    code, out, err = run(
        ["health", "match", "--peer", "out", "--gene", "KMT2D"], capsys, monkeypatch
    )
    assert code != 0 and "no outside MME peer named 'out'" in out + err
