"""Reads and earnings counted from an audit log as it grows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.sharing.test_reads import EntryLog

from ailedger.sharing.stats import MAX_POINTS, OwnerStats

A, B = "0x" + "aa" * 32, "0x" + "bb" * 32


@dataclass
class Grant:
    amount: int


class Market:
    def __init__(self) -> None:
        self.asked: list[int] = []

    def grant_info(self, request_id: int) -> Any:
        self.asked.append(request_id)
        return Grant(7)


def test_reads_grants_and_earnings_per_dataset() -> None:
    log, market = EntryLog(), Market()
    stats = OwnerStats(log, market)
    log.append({"kind": "read", "outcome": "served", "dataset": A, "grant": 1})
    log.append({"kind": "read", "outcome": "refused", "dataset": A, "grant": 1})
    log.append({"kind": "compute-read", "outcome": "served", "dataset": A, "grant": 1})
    log.append({"kind": "grant", "dataset": A, "grant": 1, "amount": 5, "time": 100})
    assert (stats.numbers(A).reads, stats.numbers(A).grants, stats.numbers(A).earned) == (2, 1, 5)
    # an entry appended later is counted on the next call; one without its amount (an
    # older node's) has it read from the chain, once
    log.append({"kind": "grant", "dataset": B.upper().replace("0X", "0x"), "grant": 2, "time": 50})
    log.append({"kind": "grant", "dataset": B, "grant": 3, "amount": True, "time": 200})
    assert stats.numbers(B).earned == 14 and market.asked == [2, 3]
    assert stats.total_earned() == 19
    assert stats.earnings_over_time() == [(50, 7), (100, 12), (200, 19)]
    assert stats.numbers(B) == stats.numbers(B) and market.asked == [2, 3]


def test_a_long_series_is_thinned_and_keeps_its_last_point() -> None:
    log = EntryLog()
    for i in range(1000):
        log.append({"kind": "grant", "dataset": A, "grant": i, "amount": 1, "time": i})
    series = OwnerStats(log, Market()).earnings_over_time()
    assert len(series) <= MAX_POINTS and series[-1] == (999, 1000)
    assert [t for t, _ in series] == sorted(t for t, _ in series)
