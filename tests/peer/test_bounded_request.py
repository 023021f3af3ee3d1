"""Reading another node's answer stops at the caller's limit: a node that streams more
(an MME peer, a catalog owner) is cut off instead of filling this node's memory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from ailedger.node.service import BackgroundServer
from ailedger.peer.client import AnswerTooLargeError, bounded_request

MIB = 1024 * 1024


def _endless() -> FastAPI:
    app = FastAPI()

    @app.get("/small")
    def small() -> dict[str, str]:
        return {"title": "Cohort"}

    @app.get("/endless")
    def endless() -> StreamingResponse:
        def chunks() -> Iterator[bytes]:
            for _ in range(10_000):  # 640 MiB if read to the end
                yield b"[" * (64 * 1024)

        return StreamingResponse(chunks(), media_type="application/json")

    return app


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with BackgroundServer(_endless()) as url:
        yield url


def test_an_answer_within_the_limit_is_read(url: str) -> None:
    assert bounded_request("GET", url + "/small", 1024, timeout=10) == (200, b'{"title":"Cohort"}')


def test_an_answer_past_the_limit_is_cut_off(url: str) -> None:
    with pytest.raises(AnswerTooLargeError, match="more than 1048576 bytes"):
        bounded_request("GET", url + "/endless", MIB, timeout=10)
    # the connection was given up, not drained: the next request is served at once
    assert bounded_request("GET", url + "/small", 1024, timeout=10)[0] == 200
