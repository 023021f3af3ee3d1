"""Full verification of a stored audit log, re-derived from its entries (RFC 6962 / RFC 9162).

What is trusted: the log's Ed25519 public key and any ``(size, root)`` pairs anchored on
chain. What is re-derived: every leaf hash, from the stored entry bytes; the root at every
checkpoint's and anchor's size. What is checked:

* entries are dense (``0..n-1``) and each matches the leaf hash stored for it;
* every checkpoint is a C2SP signed note by the key, and its row agrees with its text;
* the recomputed root at each checkpoint or anchor size equals the signed or anchored root
  (which also makes consecutive checkpoints consistent); in addition the stored interior
  hashes must produce a verifying RFC 9162 consistency proof between consecutive
  checkpoints, since those are the hashes the log serves proofs from;
* no checkpoint or anchor is larger than the log (truncation);
* the signed checkpoints reach at least as far as the anchors: every anchor was taken
  from a checkpoint, so a log whose checkpoints stop short of the chain lost them;
* every entry is covered by a signed checkpoint. A closed log always ends on one (closing
  signs the tail), so entries past the last checkpoint were written outside the log (or
  the node crashed before signing them). While the node holds the log open, its unsigned
  tail is only a note: the committer signs it within ``checkpoint_interval``.

The result reports how much of the log the signatures and the anchors cover.

When a root disagrees, the first bad entry is located by binary search: prefix ``j`` is
good if the stored hashes give a consistency proof from the recomputed root of the first
``j`` entries to the trusted root. The proof hashes are only hints, so a forger cannot
make a bad prefix look good; damaged hints can only move the answer earlier. If an entry
*and* its stored leaf hash were rewritten, the index is exact only down to the smallest
stored subtree left intact (the sibling pair: the hashes cannot tell which of two
neighbouring entries changed), and the earlier candidate is reported.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ailedger.audit import _store
from ailedger.audit.checkpoint import parse_checkpoint
from ailedger.audit.errors import AuditLogCorruptError
from ailedger.audit.merkle import (
    consistency_proof,
    leaf_hash,
    root_from_leaves,
    verify_consistency,
)


@dataclass
class VerifyResult:
    """Outcome of :func:`verify_directory`; ``first_bad_index`` is None if no entry is bad.

    ``signed_size`` and ``anchored_size`` are how many leading entries the largest valid
    checkpoint and the largest anchor cover; ``notes`` are findings that do not fail it.
    """

    ok: bool
    size: int
    checkpoints: int
    first_bad_index: int | None = None
    message: str = "audit log verified"
    problems: list[str] = field(default_factory=list)
    signed_size: int = 0
    anchored_size: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def unsigned_tail(self) -> int:
        """Entries past the last signed checkpoint."""
        return max(0, self.size - self.signed_size)


@dataclass
class _Findings:
    problems: list[tuple[int | None, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, index: int | None, message: str) -> None:
        self.problems.append((index, message))


def verify_directory(
    directory: Path, public_key: Ed25519PublicKey, anchored: Iterable[tuple[int, bytes]] = ()
) -> VerifyResult:
    """Verify the audit log stored in ``directory`` (it may be open in this process).

    Raises :class:`~ailedger.audit.errors.AuditLogCorruptError` when the store is not a
    readable log at all (not SQLite, tables missing): there is nothing to verify then.
    """
    path = _store.db_path(directory)
    live = path.exists() and _store.is_locked(directory)
    try:
        if path.exists():
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        else:  # no log yet: verify an empty one (any anchor then shows truncation)
            conn = sqlite3.connect(":memory:")
            _store.create_schema(conn)
        try:
            return _verify(conn, public_key, list(anchored), live)
        finally:
            conn.close()
    except (sqlite3.DatabaseError, TypeError) as exc:  # TypeError: a column of a wrong type
        raise AuditLogCorruptError(
            f"audit log {path} is damaged and cannot be read as a log ({exc}); "
            "restore it from a backup, then verify it again"
        ) from exc


def _verify(
    conn: sqlite3.Connection,
    public_key: Ed25519PublicKey,
    anchored: list[tuple[int, bytes]],
    live: bool,
) -> VerifyResult:
    conn.execute("BEGIN")  # one read snapshot for the whole check
    found = _Findings()
    leaves = _check_entries(conn, found)
    nodes = _store.NodeReader(conn)
    trusted = _check_checkpoints(conn, public_key, leaves, nodes, found)
    signed_size = max((size for size, _, _ in trusted), default=0)
    anchored_size = max((size for size, _ in anchored), default=0)
    _check_coverage(len(leaves), signed_size, anchored_size, live, found)
    for size, root in anchored:
        trusted.append((size, root, f"anchor at size {size}"))
    _check_roots(trusted, leaves, nodes, found)
    result = _result(len(leaves), len(trusted) - len(anchored), found)
    result.signed_size, result.anchored_size = signed_size, anchored_size
    return result


def _check_coverage(
    size: int, signed_size: int, anchored_size: int, live: bool, found: _Findings
) -> None:
    if anchored_size > signed_size:
        found.add(
            None,
            f"the chain anchors {anchored_size} entries but the log's signed checkpoints "
            f"cover only {signed_size}: checkpoints were deleted",
        )
    covered = max(signed_size, anchored_size)  # entries short of it are flagged above
    if size <= covered:
        return
    tail = f"entries {covered}..{size - 1} are past the last signed checkpoint"
    if live:
        found.notes.append(f"{tail}; the running node signs them shortly, verify again")
    else:
        found.add(
            covered,
            f"{tail}: a closed log ends on a checkpoint, so they were added outside it "
            "(or the node crashed before signing them)",
        )


def _check_entries(conn: sqlite3.Connection, found: _Findings) -> list[bytes]:
    leaves: list[bytes] = []
    for idx, data in conn.execute("SELECT idx, data FROM entries ORDER BY idx"):
        if idx != len(leaves) and not found.problems:
            found.add(len(leaves), f"entry {len(leaves)} is missing (deleted or renumbered)")
        leaves.append(leaf_hash(bytes(data)))
    stored = conn.execute(
        "SELECT id, hash FROM nodes WHERE id < ? ORDER BY id", (1 << _store.LEVEL_SHIFT,)
    )
    count = 0
    for idx, digest in stored:
        if idx >= len(leaves):
            found.add(len(leaves), f"entry {len(leaves)} is missing: its leaf hash is stored")
            break
        if bytes(digest) != leaves[idx]:
            found.add(idx, f"entry {idx} does not match its stored leaf hash (edited or moved)")
            break
        count += 1
    if count < len(leaves) and not any(i == count for i, _ in found.problems):
        found.add(count, f"entry {count} has no stored leaf hash (inserted)")
    return leaves


def _check_checkpoints(
    conn: sqlite3.Connection,
    public_key: Ed25519PublicKey,
    leaves: Sequence[bytes],
    nodes: _store.NodeReader,
    found: _Findings,
) -> list[tuple[int, bytes, str]]:
    trusted: list[tuple[int, bytes, str]] = []
    for size, root, timestamp, note in _store.checkpoint_rows(conn):
        checkpoint = parse_checkpoint(note, public_key)
        if checkpoint is None:
            found.add(None, f"checkpoint at size {size} is not signed by the log's key")
            continue
        if (checkpoint.size, checkpoint.root, checkpoint.timestamp) != (size, root, timestamp):
            found.add(None, f"checkpoint row at size {size} disagrees with its signed text")
        if trusted and checkpoint.size <= len(leaves):
            _check_consistency(
                trusted[-1][0], trusted[-1][1], checkpoint.size, checkpoint.root, nodes, found
            )
        trusted.append((checkpoint.size, checkpoint.root, f"checkpoint at size {checkpoint.size}"))
    return trusted


def _check_consistency(
    size1: int,
    root1: bytes,
    size2: int,
    root2: bytes,
    nodes: _store.NodeReader,
    found: _Findings,
) -> None:
    try:
        proof = consistency_proof(size1, size2, nodes.subtree)
    except LookupError:
        proof = []
    if not verify_consistency(size1, size2, proof, root1, root2):
        found.add(
            None, f"stored hashes give no consistency proof from checkpoint {size1} to {size2}"
        )


def _check_roots(
    trusted: list[tuple[int, bytes, str]],
    leaves: Sequence[bytes],
    nodes: _store.NodeReader,
    found: _Findings,
) -> None:
    good = 0  # every prefix up to this size matched a trusted root
    for size, root, what in sorted(trusted):
        if size > len(leaves):
            found.add(len(leaves), f"log truncated: {what} but only {len(leaves)} entries")
            continue
        if root_from_leaves(leaves[:size]) == root:
            good = max(good, size)
            continue
        bad = _locate(leaves, nodes, min(good, size), size, root)
        found.add(bad, f"entry {bad} is not the one the {what} commits to")


def _locate(
    leaves: Sequence[bytes], nodes: _store.NodeReader, good: int, bad: int, root: bytes
) -> int:
    """Largest prefix length in ``[good, bad)`` proven consistent with ``root`` of size ``bad``."""
    size = bad
    while bad - good > 1:
        mid = (good + bad) // 2
        if _prefix_matches(leaves, nodes, mid, size, root):
            good = mid
        else:
            bad = mid
    return good


def _prefix_matches(
    leaves: Sequence[bytes], nodes: _store.NodeReader, size1: int, size2: int, root: bytes
) -> bool:
    def subtree(start: int, stop: int) -> bytes:
        # Each proof hash lies wholly inside the prefix or wholly after it (RFC 6962
        # §2.1.2); inside, use the recomputed leaves so damaged stored hashes do not count.
        return root_from_leaves(leaves[start:stop]) if stop <= size1 else nodes.subtree(start, stop)

    try:
        proof = consistency_proof(size1, size2, subtree)
    except LookupError:
        return False
    return verify_consistency(size1, size2, proof, root_from_leaves(leaves[:size1]), root)


def _result(size: int, checkpoints: int, found: _Findings) -> VerifyResult:
    if not found.problems:
        return VerifyResult(True, size, checkpoints, notes=found.notes)
    indexed = [(i, m) for i, m in found.problems if i is not None]
    first = min(indexed, key=lambda p: p[0]) if indexed else (None, found.problems[0][1])
    return VerifyResult(
        ok=False,
        size=size,
        checkpoints=checkpoints,
        first_bad_index=first[0],
        message=f"audit log is NOT intact: {first[1]}",
        problems=[m for _, m in found.problems],
        notes=found.notes,
    )
