"""The node's background round: log decisions, anchor, then expire this home's stuck jobs."""

from __future__ import annotations

from typing import Any, cast

from ailedger.node.chores import Chores


class _Node:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def log_chain_decisions(self) -> None:
        self.calls.append("log")

    def anchor(self) -> None:
        self.calls.append("anchor")


class _PostedJobs:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def run_once(self) -> list[int]:
        self.calls.append("expire")
        return [7]


def test_a_round_expires_the_homes_due_jobs_after_anchoring() -> None:
    calls: list[str] = []
    chores = Chores(cast(Any, _Node(calls)), 0, cast(Any, _PostedJobs(calls)))
    chores.run_once()
    assert calls == ["log", "anchor", "expire"]


def test_a_node_without_jobs_only_logs_and_anchors() -> None:
    calls: list[str] = []
    Chores(cast(Any, _Node(calls)), 0).run_once()
    assert calls == ["log", "anchor"]
