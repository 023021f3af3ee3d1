"""A peer's MME answer is read only when it has the shape this node uses; anything else
(not JSON, too deep, wrong types) makes that peer 'refused', never a crash."""

from __future__ import annotations

import json

import pytest

from ailedger.health.federation import _results_of

GOOD = {"score": {"patient": 0.93}, "patient": {"id": "p1", "contact": {"name": "Dr A"}}}


def test_a_well_formed_answer_is_read() -> None:
    assert _results_of(json.dumps({"results": [GOOD]}).encode()) == [GOOD]
    assert _results_of(b"{}") == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[" * 100_000 + b"]" * 100_000,
        b"1" * 5000,
        b"[]",
        b'{"results": {}}',
        b'{"results": [1]}',
        json.dumps({"results": [{**GOOD, "score": {"patient": "high"}}]}).encode(),
        json.dumps({"results": [{**GOOD, "score": {"patient": True}}]}).encode(),
        json.dumps({"results": [{**GOOD, "score": 1}]}).encode(),
        json.dumps({"results": [{**GOOD, "patient": {"id": 7, "contact": {}}}]}).encode(),
        json.dumps({"results": [{**GOOD, "patient": {"id": "p", "contact": "x"}}]}).encode(),
    ],
)
def test_a_hostile_answer_is_refused(body: bytes) -> None:
    assert _results_of(body) is None
