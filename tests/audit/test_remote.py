"""Verifying another node's served log against the chain: each way a node can lie is caught."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.audit.checkpoint import sign_checkpoint
from ailedger.audit.log import AuditLog
from ailedger.audit.merkle import (
    consistency_proof,
    leaf_hash,
    list_subtree_hasher,
    root_from_leaves,
)
from ailedger.audit.remote import verify_served_log


class LogSource:
    """A log served as a gateway serves it, straight from an open AuditLog."""

    def __init__(self, log: AuditLog, *, altered: int | None = None) -> None:
        self.log = log
        self.altered = altered  # serve this entry with other bytes than those signed

    def checkpoint_note(self) -> str | None:
        latest = self.log.latest_checkpoint()
        return None if latest is None else latest.note

    def entries(self, start: int, stop: int) -> list[bytes]:
        data = self.log.entries_bytes(start, stop)
        if self.altered is not None and start <= self.altered < start + len(data):
            data[self.altered - start] = b'{"kind":"read","requester":"someone else"}'
        return data

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        return self.log.consistency_proof(first, second)

    def size(self) -> int:
        return self.log.size


def _fill(log: AuditLog, sizes: list[int], tag: str = "honest") -> None:
    for size in sizes:
        log.extend({"kind": "read", "who": tag, "n": i} for i in range(log.size, size))
        log.checkpoint_now()


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def log(tmp_path: Path, key: Ed25519PrivateKey) -> Iterator[AuditLog]:
    with AuditLog(tmp_path / "node", key, checkpoint_interval=3600) as opened:
        _fill(opened, [10, 20, 30])
        yield opened


def test_an_honest_log_verifies_with_its_coverage(log: AuditLog, key: Ed25519PrivateKey) -> None:
    anchors = [(10, log.root(10)), (20, log.root(20))]
    result = verify_served_log(LogSource(log), key.public_key(), anchors)
    assert result.ok, result.problems
    assert (result.signed_size, result.anchored_size, result.served_size) == (30, 20, 30)
    log.append({"kind": "read", "n": 30})  # not signed for an hour
    result = verify_served_log(LogSource(log), key.public_key(), anchors)
    assert result.ok and result.served_size == 31
    assert "entries 30..30 are past the served checkpoint" in result.notes[0]


def test_a_log_signed_by_another_key_is_reported(log: AuditLog) -> None:
    chain_key = Ed25519PrivateKey.generate().public_key()
    result = verify_served_log(LogSource(log), chain_key, [(10, log.root(10))])
    assert not result.ok
    assert "not signed by the key the node bound on chain" in result.message


def test_a_node_without_a_key_on_chain_is_reported(log: AuditLog) -> None:
    result = verify_served_log(LogSource(log), None, [])
    assert not result.ok and "no checkpoint key" in result.message


def test_rewritten_history_is_reported(
    tmp_path: Path, log: AuditLog, key: Ed25519PrivateKey
) -> None:
    anchors = [(10, log.root(10)), (20, log.root(20))]
    # The node re-signs a log with other entries under its own key: only the anchors tell.
    with AuditLog(tmp_path / "rewritten", key, checkpoint_interval=3600) as forged:
        _fill(forged, [10, 30], tag="rewritten")
        result = verify_served_log(LogSource(forged), key.public_key(), anchors)
    assert not result.ok
    assert "does not extend the anchor at size 10" in result.message


def test_a_rolled_back_log_is_reported(
    tmp_path: Path, log: AuditLog, key: Ed25519PrivateKey
) -> None:
    with AuditLog(tmp_path / "short", key, checkpoint_interval=3600) as short:
        _fill(short, [10])
        result = verify_served_log(LogSource(short), key.public_key(), [(20, log.root(20))])
    assert not result.ok and "rolled back" in result.message


def test_entries_other_than_those_signed_are_reported(
    log: AuditLog, key: Ed25519PrivateKey
) -> None:
    result = verify_served_log(LogSource(log, altered=25), key.public_key(), [])
    assert not result.ok and "do not hash to the signed checkpoint" in result.message


def test_no_checkpoint_served_while_anchored(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    with AuditLog(tmp_path / "empty", key) as empty:
        result = verify_served_log(LogSource(empty), key.public_key(), [(5, b"\x01" * 32)])
    assert not result.ok and "serves no checkpoint" in result.message


class MemorySource:
    """A served log held in memory: entries, and one checkpoint over the first ``signed``."""

    def __init__(self, entries: list[bytes], key: Ed25519PrivateKey, signed: int) -> None:
        self.data = entries
        leaves = [leaf_hash(e) for e in entries[:signed]]
        self.note = sign_checkpoint(key, "node", signed, root_from_leaves(leaves), 0).note

    def checkpoint_note(self) -> str | None:
        return self.note

    def entries(self, start: int, stop: int) -> list[bytes]:
        return self.data[start:stop]

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        leaves = [leaf_hash(e) for e in self.data]
        return consistency_proof(first, second, list_subtree_hasher(leaves))

    def size(self) -> int:
        return len(self.data)


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(1, 40),
    picks=st.lists(st.integers(1, 40), max_size=4),
    changed=st.integers(0, 39),
)
def test_any_rewritten_anchored_entry_is_caught(size: int, picks: list[int], changed: int) -> None:
    key = Ed25519PrivateKey.generate()
    entries = [b'{"n":%d}' % i for i in range(size)]
    leaves = [leaf_hash(e) for e in entries]
    anchors = sorted({(min(p, size), root_from_leaves(leaves[: min(p, size)])) for p in picks})
    honest = verify_served_log(MemorySource(entries, key, size), key.public_key(), anchors)
    assert honest.ok, honest.problems
    changed %= size
    rewritten = [b'{"n":"forged"}' if i == changed else e for i, e in enumerate(entries)]
    forged = verify_served_log(MemorySource(rewritten, key, size), key.public_key(), anchors)
    # Re-signed by the node itself: caught exactly when an anchor covers the changed entry.
    assert forged.ok == all(anchor_size <= changed for anchor_size, _ in anchors)
