"""Reads per grant, counted from an audit log: which entries count, and the limit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from ailedger.sharing.reads import GrantReads, ReadLimitReachedError, counts_as_read


class EntryLog:
    """An audit log over a list: append, entries, size."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def append(self, entry: dict[str, Any]) -> int:
        self.rows.append(entry)
        return len(self.rows) - 1

    def entries(self, start: int, stop: int) -> list[dict[str, Any]]:
        return self.rows[start:stop]

    @property
    def size(self) -> int:
        return len(self.rows)


@dataclass
class Grant:
    max_reads: int


class Market:
    def __init__(self, limits: dict[int, int]) -> None:
        self.limits = limits

    def grant_info(self, request_id: int) -> Any:
        limit = self.limits.get(request_id)
        return None if limit is None else Grant(limit)


def _read(kind: str, grant: Any, outcome: str = "served") -> dict[str, Any]:
    return {"kind": kind, "grant": grant, "outcome": outcome}


@pytest.mark.parametrize(
    ("entry", "counts"),
    [
        (_read("read", 1), True),
        (_read("compute-read", 1), True),
        (_read("read", 1, "refused"), False),
        (_read("read", 1, "failed"), False),
        (_read("compute-read", True), False),  # a bool is not a grant id
        (_read("compute-read", "1"), False),
        ({"kind": "compute-read", "outcome": "served"}, False),
        (_read("grant", 1, "on chain"), False),
    ],
)
def test_which_entries_use_a_read(entry: dict[str, Any], counts: bool) -> None:
    assert counts_as_read(entry) is counts


def test_fetches_and_compute_reads_share_the_count() -> None:
    log = EntryLog()
    reads = GrantReads(log, Market({7: 3, 8: 0}))
    log.append(_read("read", 7))
    assert reads.count(7) == 1  # an entry appended by anyone is seen on the next call
    reads.append_read(_read("compute-read", 7))
    log.append(_read("read", 7, "failed"))
    assert (reads.count(7), reads.remaining(7)) == (2, 1)
    reads.append_read(_read("compute-read", 7))
    with pytest.raises(ReadLimitReachedError, match=r"read limit reached \(3 reads"):
        reads.append_read(_read("compute-read", 7))
    assert log.size == 4
    for _ in range(5):  # max_reads 0: unlimited
        reads.append_read(_read("compute-read", 8))
    assert reads.remaining(8) is None


def test_a_restarted_counter_reads_the_same_count_from_the_log() -> None:
    log = EntryLog()
    GrantReads(log, Market({7: 2})).append_read(_read("compute-read", 7))
    log.append(_read("read", 7))
    again = GrantReads(log, Market({7: 2}))
    with pytest.raises(ReadLimitReachedError):
        again.check(7)


def test_an_entry_that_names_no_grant_is_not_appended_as_a_read() -> None:
    log = EntryLog()
    with pytest.raises(ValueError, match="names its grant"):
        GrantReads(log, Market({})).append_read({"kind": "compute-read", "outcome": "served"})
    assert log.size == 0


@pytest.mark.parametrize(
    "answer", [b'{"remaining": "many"}', b'{"remaining": [1]}', b"[]", b"[" * 5000, b"{}"]
)
def test_a_hostile_answer_about_reads_left_is_one_clear_error(answer: bytes) -> None:
    """An owner's node answering nonsense about a grant's reads is refused in one error,
    whatever it sends (a crash here would stop `job submit` with a traceback)."""
    from fastapi import FastAPI
    from fastapi.responses import Response

    from ailedger.errors import PeerUnreachableError
    from ailedger.node.service import BackgroundServer
    from ailedger.peer import wire
    from ailedger.sharing.requester import reads_left_at

    app = FastAPI()

    @app.get(wire.GRANT_READS)
    def reads(grant_id: int) -> Response:
        return Response(answer, media_type="application/json")

    with BackgroundServer(app) as url, pytest.raises(PeerUnreachableError, match="grant 7"):
        reads_left_at(url, 7)


def test_served_uses_count_by_their_number_and_never_past_the_limit() -> None:
    log = EntryLog()
    reads = GrantReads(log, Market({7: 5}))
    reads.append_read({**_read("served-use", 7), "uses": 3})
    reads.append_read(_read("read", 7))
    assert reads.count(7) == 4 and reads.remaining(7) == 1
    # Two predictions when one is left: refused whole, nothing logged.
    with pytest.raises(ReadLimitReachedError, match="1 of its 5 uses left; 2 were asked for"):
        reads.append_read({**_read("served-use", 7), "uses": 2})
    assert log.size == 2
    for uses in (0, -1, True, "2"):  # an entry that takes no use could serve without limit
        assert not counts_as_read({**_read("served-use", 7), "uses": uses})
        with pytest.raises(ValueError, match="uses >= 1"):
            reads.append_read({**_read("served-use", 7), "uses": uses})
