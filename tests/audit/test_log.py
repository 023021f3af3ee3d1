"""The durable audit log: durability, group commit, proofs, receipts, checkpoints, tampering."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ailedger.audit.checkpoint import parse_checkpoint
from ailedger.audit.entry import canonical_json
from ailedger.audit.errors import AuditLogCorruptError
from ailedger.audit.log import AuditLog, AuditLogError
from ailedger.audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from ailedger.audit.receipt import verify_receipt
from ailedger.audit.verify import verify_directory
from ailedger.errors import BackPressureError


def _entry(i: int) -> dict[str, str | int]:
    return {"who": "0xabc", "dataset": "ds-1", "purpose": "research", "outcome": "ok", "n": i}


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def log(tmp_path: Path, key: Ed25519PrivateKey) -> Iterator[AuditLog]:
    with AuditLog(tmp_path / "audit", key) as opened:
        yield opened


def test_append_returns_dense_indices_and_survives_reopen(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    with AuditLog(tmp_path / "a", key) as log:
        assert [log.append(_entry(i)) for i in range(10)] == list(range(10))
    with AuditLog(tmp_path / "a", key) as log:
        assert log.size == 10
        assert log.entries(0, 10) == [_entry(i) for i in range(10)]
        assert log.entry(3) == _entry(3)
        assert log.append(_entry(10)) == 10


def test_append_is_durable_before_it_returns(log: AuditLog) -> None:
    index = log.append(_entry(0))
    other = sqlite3.connect(log.directory / "audit.sqlite3")
    (data,) = other.execute("SELECT data FROM entries WHERE idx = ?", (index,)).fetchone()
    other.close()
    assert data == canonical_json(_entry(0))


def test_entries_must_be_flat_json_scalars(log: AuditLog) -> None:
    for bad in ({}, {"nested": {"a": 1}}, {"list": [1]}, {"nan": float("nan")}):
        with pytest.raises(ValueError):
            log.append(bad)  # type: ignore[arg-type]


def test_second_open_is_refused(log: AuditLog, key: Ed25519PrivateKey) -> None:
    with pytest.raises(AuditLogError, match="open in another"):
        AuditLog(log.directory, key)


def test_reopen_with_other_key_is_refused(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    AuditLog(tmp_path / "a", key).close()
    with pytest.raises(AuditLogError, match="public_key"):
        AuditLog(tmp_path / "a", Ed25519PrivateKey.generate())


def test_concurrent_appends_are_unique_and_dense(log: AuditLog) -> None:
    results: list[int] = []
    lock = threading.Lock()

    def worker(base: int) -> None:
        for i in range(50):
            index = log.append(_entry(base + i))
            with lock:
                results.append(index)

    threads = [threading.Thread(target=worker, args=(t * 1000,)) for t in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == list(range(800))
    assert sorted(int(e["n"]) for e in log.entries(0, 800)) == sorted(  # type: ignore[arg-type]
        t * 1000 + i for t in range(16) for i in range(50)
    )


def test_proofs_from_the_log_verify(log: AuditLog) -> None:
    log.extend(_entry(i) for i in range(37))
    for size in (1, 2, 5, 16, 37):
        root = log.root(size)
        for index in range(size):
            leaf = leaf_hash(log.entry_bytes(index))
            assert verify_inclusion(leaf, index, size, log.inclusion_proof(index, size), root)
        for size1 in range(1, size + 1):
            proof = log.consistency_proof(size1, size)
            assert verify_consistency(size1, size, proof, log.root(size1), root)


def test_checkpoint_issued_within_a_second_and_signed(log: AuditLog) -> None:
    log.append(_entry(0))
    time.sleep(0.1)
    started = time.monotonic()
    index = log.append(_entry(1))
    while (cp := log.latest_checkpoint()) is None or cp.size <= index:
        assert time.monotonic() - started < 1.0, "no checkpoint within 1 s of the append"
        time.sleep(0.01)
    parsed = parse_checkpoint(cp.note, log.public_key)
    assert parsed is not None and parsed.size == 2 and parsed.root == log.root(2)
    assert cp.note.startswith(f"{log.origin}\n2\n")
    assert [c.size for c in log.checkpoints()][-1] == 2


def test_checkpoints_are_persisted(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    with AuditLog(tmp_path / "a", key) as log:
        log.append(_entry(0))
        first = log.checkpoint_now()
        log.append(_entry(1))
        second = log.checkpoint_now()
    with AuditLog(tmp_path / "a", key) as log:
        assert [c.note for c in log.checkpoints()] == [first.note, second.note]
        latest = log.latest_checkpoint()
        assert latest is not None and latest.size == 2


def test_receipt_verifies_and_fails_when_tampered(log: AuditLog, key: Ed25519PrivateKey) -> None:
    log.extend(_entry(i) for i in range(11))
    receipt = log.receipt(6)
    assert verify_receipt(receipt, key.public_key())
    assert json.loads(json.dumps(receipt)) == receipt  # JSON-ready
    assert not verify_receipt(receipt, Ed25519PrivateKey.generate().public_key())
    changed = [
        {**receipt, "index": 5},
        {**receipt, "entry": receipt["entry"].replace('"n":6', '"n":7')},
        {**receipt, "inclusion_proof": receipt["inclusion_proof"][:-1]},
        {**receipt, "inclusion_proof": ["A" + p[1:] for p in receipt["inclusion_proof"]]},
        {**receipt, "checkpoint": receipt["checkpoint"].replace("\n11\n", "\n12\n")},
        {**receipt, "checkpoint": "garbage"},
        {k: v for k, v in receipt.items() if k != "index"},
    ]
    for bad in changed:
        assert not verify_receipt(bad, key.public_key())


def test_back_pressure_raises_with_retry_after(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    log = AuditLog(tmp_path / "a", key, max_pending=5)
    blocker = sqlite3.connect(log.directory / "audit.sqlite3", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # stalls the committer: the queue fills
    threads = [threading.Thread(target=log.append, args=(_entry(i),)) for i in range(5)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while log._pending < 5:  # white-box wait until the queue is at its bound
        assert time.monotonic() < deadline
        time.sleep(0.01)
    with pytest.raises(BackPressureError) as raised:
        log.append(_entry(99))
    assert raised.value.retry_after > 0
    blocker.execute("ROLLBACK")
    blocker.close()
    for thread in threads:
        thread.join()
    assert log.size == 5
    log.close()


# -- tampering, by editing the SQLite file directly ------------------------------------


@pytest.fixture
def sealed(tmp_path: Path, key: Ed25519PrivateKey) -> Path:
    """A closed log of 40 entries with checkpoints at sizes 10, 20, 30 and 40."""
    with AuditLog(tmp_path / "sealed", key) as log:
        for start in range(0, 40, 10):
            log.extend(_entry(i) for i in range(start, start + 10))
            log.checkpoint_now()
    return tmp_path / "sealed"


def _edit(directory: Path, *statements: tuple[str, tuple[object, ...]]) -> None:
    conn = sqlite3.connect(directory / "audit.sqlite3")
    with conn:
        for sql, args in statements:
            conn.execute(sql, args)
    conn.close()


def _first_bad(directory: Path, key: Ed25519PrivateKey) -> int | None:
    result = verify_directory(directory, key.public_key())
    assert not result.ok and result.message
    return result.first_bad_index


def test_intact_log_verifies(sealed: Path, key: Ed25519PrivateKey) -> None:
    result = verify_directory(sealed, key.public_key())
    assert result.ok and result.size == 40 and result.checkpoints == 4


def test_edited_entry(sealed: Path, key: Ed25519PrivateKey) -> None:
    _edit(sealed, ("UPDATE entries SET data = ? WHERE idx = 13", (canonical_json(_entry(99)),)))
    assert _first_bad(sealed, key) == 13


def test_edited_entry_and_its_leaf_hash(sealed: Path, key: Ed25519PrivateKey) -> None:
    data = canonical_json(_entry(99))
    _edit(
        sealed,
        ("UPDATE entries SET data = ? WHERE idx = 13", (data,)),
        ("UPDATE nodes SET hash = ? WHERE id = 13", (leaf_hash(data),)),
    )
    # The forged leaf hash breaks the stored pair (12, 13): either may be the changed one.
    assert _first_bad(sealed, key) == 12


def test_deleted_entry(sealed: Path, key: Ed25519PrivateKey) -> None:
    _edit(sealed, ("DELETE FROM entries WHERE idx = 7", ()))
    assert _first_bad(sealed, key) == 7


def test_reordered_entries(sealed: Path, key: Ed25519PrivateKey) -> None:
    a, b = canonical_json(_entry(21)), canonical_json(_entry(25))
    _edit(
        sealed,
        ("UPDATE entries SET data = ? WHERE idx = 21", (b,)),
        ("UPDATE entries SET data = ? WHERE idx = 25", (a,)),
    )
    assert _first_bad(sealed, key) == 21


def test_inserted_entry(sealed: Path, key: Ed25519PrivateKey) -> None:
    _edit(
        sealed,
        ("UPDATE entries SET idx = -idx - 1 WHERE idx >= 17", ()),
        ("UPDATE entries SET idx = -idx WHERE idx < 0", ()),
        ("INSERT INTO entries VALUES (17, ?)", (canonical_json(_entry(1000)),)),
    )
    assert _first_bad(sealed, key) == 17


def test_truncated_log(sealed: Path, key: Ed25519PrivateKey) -> None:
    _edit(sealed, ("DELETE FROM entries WHERE idx >= 35", ()))
    assert _first_bad(sealed, key) == 35


def test_truncated_log_and_its_hashes(sealed: Path, key: Ed25519PrivateKey) -> None:
    _edit(
        sealed,
        ("DELETE FROM entries WHERE idx >= 35", ()),
        ("DELETE FROM nodes WHERE id % 281474976710656 >= 35 AND id < 281474976710656", ()),
    )
    assert _first_bad(sealed, key) == 35


def test_forged_checkpoint(sealed: Path, key: Ed25519PrivateKey) -> None:
    _edit(sealed, ("UPDATE checkpoints SET note = replace(note, '\n20\n', '\n21\n')", ()))
    result = verify_directory(sealed, key.public_key())
    assert not result.ok and result.first_bad_index is None
    assert "not signed" in result.message


def test_anchored_roots(sealed: Path, key: Ed25519PrivateKey) -> None:
    with AuditLog(sealed, key) as log:
        root = log.root(25)
        assert log.verify(key.public_key(), [(25, root)]).ok
        wrong = log.verify(key.public_key(), [(25, bytes(32))])
        # Checkpoint 20 vouches for entries 0..19: the anchor disagrees from entry 20 on.
        assert not wrong.ok and wrong.first_bad_index == 20
        beyond = log.verify(key.public_key(), [(45, root)])
        assert not beyond.ok and beyond.first_bad_index == 40


def test_reopen_refuses_log_inconsistent_with_checkpoint(
    sealed: Path, key: Ed25519PrivateKey
) -> None:
    _edit(sealed, ("DELETE FROM entries WHERE idx >= 35", ()))
    with pytest.raises(AuditLogError, match="last checkpoint"):
        AuditLog(sealed, key)


# -- kill -9 ------------------------------------------------------------------------------

_CHILD = """
import sys, threading
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from ailedger.audit.log import AuditLog
key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(sys.argv[2]))
log = AuditLog(sys.argv[1], key, checkpoint_interval=0.05)
out = threading.Lock()
def work(t):
    i = 0
    while True:
        index = log.append({"who": "child", "thread": t, "n": i})
        with out:
            sys.stdout.write(f"{index}\\n")
            sys.stdout.flush()
        i += 1
print("ready", flush=True)
for t in range(4):
    threading.Thread(target=work, args=(t,), daemon=True).start()
threading.Event().wait()
"""


@pytest.mark.slow
def test_kill_9_loses_no_acknowledged_entry(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()).hex()
    directory, acknowledged, rng = tmp_path / "k", set(), random.Random(7)
    for _ in range(24):
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(directory), raw],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.02, 0.4))
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        lines = child.stdout.read().split("\n")
        child.stdout.close()
        acknowledged.update(int(line) for line in lines[:-1])  # the last may be cut short
        with AuditLog(directory, key) as log:  # refuses a log unlike its last checkpoint
            assert acknowledged <= set(range(log.size))
            assert all(log.entry(i)["who"] == "child" for i in acknowledged)
    result = verify_directory(directory, key.public_key())
    assert result.ok, result.message
    assert len(acknowledged) > 100


def test_missing_log_verifies_as_empty(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    assert verify_directory(tmp_path / "none", key.public_key()).ok
    result = verify_directory(tmp_path / "none", key.public_key(), [(3, bytes(32))])
    assert not result.ok and result.first_bad_index == 0


# -- coverage: checkpoints, anchors and the unsigned tail --------------------------------


def test_all_checkpoints_deleted_while_anchors_remain(sealed: Path, key: Ed25519PrivateKey) -> None:
    with AuditLog(sealed, key) as log:
        anchors = [(20, log.root(20)), (40, log.root(40))]
    assert verify_directory(sealed, key.public_key(), anchors).ok
    _edit(sealed, ("DELETE FROM checkpoints", ()))
    result = verify_directory(sealed, key.public_key(), anchors)
    assert not result.ok
    assert (result.signed_size, result.anchored_size) == (0, 40)
    assert "checkpoints were deleted" in result.message


def test_entry_appended_past_the_last_checkpoint(sealed: Path, key: Ed25519PrivateKey) -> None:
    forged = canonical_json(_entry(1000))  # with a correct leaf hash: the tree stays valid
    _edit(
        sealed,
        ("INSERT INTO entries VALUES (40, ?)", (forged,)),
        ("INSERT INTO nodes VALUES (40, ?)", (leaf_hash(forged),)),
    )
    result = verify_directory(sealed, key.public_key())
    assert not result.ok and result.first_bad_index == 40
    assert (result.size, result.signed_size, result.unsigned_tail) == (41, 40, 1)
    assert "past the last signed checkpoint" in result.message


def test_a_running_logs_unsigned_tail_is_a_note(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    with AuditLog(tmp_path / "live", key, checkpoint_interval=3600) as log:
        log.append(_entry(0))  # the first entry is signed at once, the next in an hour
        log.append(_entry(1))
        result = log.verify(key.public_key())
        assert result.ok and result.unsigned_tail == 1
        assert "entries 1..1 are past the last signed checkpoint" in result.notes[0]
    assert verify_directory(tmp_path / "live", key.public_key()).unsigned_tail == 0


@pytest.mark.parametrize(
    "damage",
    [b"this is not a database" * 100, b"SQLite format 3\x00" + b"\xff" * 4000],
)
def test_damaged_store_is_an_audit_error(
    sealed: Path, key: Ed25519PrivateKey, damage: bytes
) -> None:
    from ailedger.audit.history import read_history

    for extra in sealed.glob("audit.sqlite3-*"):
        extra.unlink()
    (sealed / "audit.sqlite3").write_bytes(damage)
    with pytest.raises(AuditLogCorruptError, match="damaged"):
        verify_directory(sealed, key.public_key())
    with pytest.raises(AuditLogCorruptError, match="damaged"):
        read_history(sealed, key.public_key())
    with pytest.raises(AuditLogCorruptError, match="damaged"):
        AuditLog(sealed, key)
