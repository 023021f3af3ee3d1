"""Audit receipts: what a requester keeps to prove later that its access was logged.

A receipt is a JSON-ready dict::

    {"index": 41, "entry": "<canonical JSON of the entry>",
     "checkpoint": "<C2SP signed note>", "inclusion_proof": ["<base64 hash>", ...]}

Anyone holding the log's Ed25519 public key can check it offline with
:func:`verify_receipt`: the checkpoint must be signed by that key (C2SP signed-note), and
the entry's RFC 6962 leaf hash must be included at ``index`` in the tree the checkpoint
commits to (RFC 9162 §2.1.3.2). Comparing the checkpoint with the root the node anchors on
chain, or with later checkpoints through a consistency proof, then shows the log never
dropped the entry.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ailedger.audit.checkpoint import _parse_body, parse_checkpoint
from ailedger.audit.merkle import (
    HASH_SIZE,
    inclusion_steps,
    leaf_hash,
    root_from_inclusion,
    verify_consistency,
    verify_inclusion,
)
from ailedger.errors import AiledgerError


def make_receipt(index: int, entry: bytes, note: str, proof: Sequence[bytes]) -> dict[str, Any]:
    return {
        "index": index,
        "entry": entry.decode(),
        "checkpoint": note,
        "inclusion_proof": [base64.b64encode(p).decode() for p in proof],
    }


def receipt_entry(receipt: dict[str, Any]) -> dict[str, Any]:
    """The logged entry inside a receipt, as a dict."""
    entry: dict[str, Any] = json.loads(receipt["entry"])
    return entry


def verify_receipt(receipt: dict[str, Any], public_key: Ed25519PublicKey) -> bool:
    """True if ``receipt`` proves its entry is in a log signed by ``public_key``."""
    try:
        index, entry = receipt["index"], receipt["entry"]
        note, encoded = receipt["checkpoint"], receipt["inclusion_proof"]
        if not (isinstance(index, int) and isinstance(entry, str) and isinstance(note, str)):
            return False
        if not isinstance(encoded, list) or not all(isinstance(p, str) for p in encoded):
            return False
        proof = [base64.b64decode(p, validate=True) for p in encoded]
    except (KeyError, TypeError, binascii.Error):
        return False
    checkpoint = parse_checkpoint(note, public_key)
    if checkpoint is None:
        return False
    leaf = leaf_hash(entry.encode())
    return verify_inclusion(leaf, index, checkpoint.size, proof, checkpoint.root)


# -- step by step, for people: each check named, as a browser shows them -------------------

CHECKS = ("format", "entry", "signature", "inclusion", "anchor")
ConsistencyProof = Callable[[int, int], list[bytes]]


@dataclass(frozen=True)
class Check:
    """One named step of a receipt's verification; ``ok`` None: could not be decided
    (yet), e.g. a checkpoint the node has not anchored on chain so far."""

    name: str
    ok: bool | None
    detail: str


@dataclass(frozen=True)
class ReceiptVerdict:
    """Every check of a receipt, and what the browser redraws: the leaf, the path's sides,
    the root it leads to, and the signed checkpoint's size and root."""

    checks: list[Check]
    index: int | None = None
    leaf_hash: bytes | None = None
    sides: list[str] | None = None
    computed_root: bytes | None = None
    checkpoint_size: int | None = None
    checkpoint_root: bytes | None = None
    checkpoint_time: int | None = None
    anchor: tuple[int, bytes] | None = None

    @property
    def ok(self) -> bool:
        """Verified: no check failed (an anchor still to come is not a failure)."""
        return all(c.ok is not False for c in self.checks)

    @property
    def failed(self) -> list[str]:
        return [c.name for c in self.checks if c.ok is False]


def receipt_checks(
    receipt: object,
    public_key: Ed25519PublicKey | None,
    anchors: Sequence[tuple[int, bytes]] = (),
    consistency: ConsistencyProof | None = None,
) -> ReceiptVerdict:
    """Check ``receipt`` step by step: its shape, its entry, the checkpoint's signature by
    ``public_key`` (the key the node bound on chain; None: it bound none), the inclusion
    path up to the checkpoint's root (RFC 9162 §2.1.3.2), and that root against the
    node's ``anchors`` on chain: the same (size, root), or a later anchor the checkpoint
    is consistent with (RFC 9162 §2.1.4.2; ``consistency(size1, size2)`` fetches the
    proof). Checks after a failed one that needs its result are not run."""
    checks: list[Check] = []
    parsed = _parse_receipt(receipt)
    if isinstance(parsed, str):
        return ReceiptVerdict([Check("format", False, parsed)])
    index, entry, note, proof = parsed
    checks.append(Check("format", True, f"entry {index}, a path of {len(proof)} hashes"))
    try:
        loaded = json.loads(entry)
        entry_ok = isinstance(loaded, dict) and bool(loaded)
    except ValueError:
        entry_ok = False
    checks.append(
        Check("entry", True, "a logged entry (JSON object)")
        if entry_ok
        else Check("entry", False, "the entry is not a JSON object: it was altered or cut")
    )
    leaf = leaf_hash(entry.encode())
    body = _unsigned_body(note)
    size, root, when = (body[1], body[2], body[3]) if body else (None, None, None)
    checkpoint = parse_checkpoint(note, public_key) if public_key is not None else None
    if public_key is None:
        checks.append(Check("signature", False, "the node has bound no checkpoint key on chain"))
    elif checkpoint is None:
        checks.append(
            Check(
                "signature",
                False,
                "the checkpoint is not signed by the key the node bound on chain "
                "(altered, or signed by another key)",
            )
        )
    else:
        checks.append(Check("signature", True, f"signed by the node's key (size {size})"))
    sides = inclusion_steps(index, size, proof) if size is not None else None
    computed = root_from_inclusion(leaf, index, size, proof) if size is not None else None
    if root is None:
        checks.append(Check("inclusion", False, "the checkpoint has no readable tree head"))
    elif computed is None:
        checks.append(
            Check("inclusion", False, f"the path cannot place entry {index} in {size} entries")
        )
    elif computed != root:
        checks.append(
            Check("inclusion", False, "the path leads to another root than the checkpoint's")
        )
    else:
        checks.append(Check("inclusion", True, f"the path leads to the root of {size} entries"))
    anchor: tuple[int, bytes] | None = None
    if checkpoint is not None:
        anchor, check = _anchor_check(checkpoint.size, checkpoint.root, anchors, consistency)
        checks.append(check)
    return ReceiptVerdict(checks, index, leaf, sides, computed, size, root, when, anchor)


def _parse_receipt(receipt: object) -> tuple[int, str, str, list[bytes]] | str:
    """The receipt's fields, or what is wrong with its shape."""
    if not isinstance(receipt, dict):
        return "a receipt is a JSON object with index, entry, checkpoint, inclusion_proof"
    missing = [k for k in ("index", "entry", "checkpoint", "inclusion_proof") if k not in receipt]
    if missing:
        return f"the receipt lacks {', '.join(missing)}"
    index, entry = receipt["index"], receipt["entry"]
    note, encoded = receipt["checkpoint"], receipt["inclusion_proof"]
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < 2**63:
        return "index must be a whole number from 0"
    if not isinstance(entry, str) or not isinstance(note, str):
        return "entry and checkpoint must be strings"
    try:
        entry.encode(), note.encode()
    except UnicodeEncodeError:
        return "entry and checkpoint must be UTF-8 text (a lone surrogate is not)"
    if not isinstance(encoded, list) or not all(isinstance(p, str) for p in encoded):
        return "inclusion_proof must be a list of base64 hashes"
    if len(encoded) > 64:
        return "inclusion_proof is longer than any tree's path (64 hashes)"
    try:
        proof = [base64.b64decode(p, validate=True) for p in encoded]
    except binascii.Error:
        return "inclusion_proof holds a hash that is not base64"
    if any(len(p) != HASH_SIZE for p in proof):
        return f"each inclusion_proof hash must be {HASH_SIZE} bytes"
    return index, entry, note, proof


def _unsigned_body(note: str) -> tuple[str, int, bytes, int] | None:
    """The checkpoint's tree head as written, signature unchecked (for display)."""
    return _parse_body(note.partition("\n\n")[0].split("\n"))


def _anchor_check(
    size: int,
    root: bytes,
    anchors: Sequence[tuple[int, bytes]],
    consistency: ConsistencyProof | None,
) -> tuple[tuple[int, bytes] | None, Check]:
    for anchored in anchors:
        if anchored[0] == size:
            if anchored[1] == root:
                return anchored, Check("anchor", True, f"the chain anchors this root at {size}")
            return anchored, Check(
                "anchor", False, f"the chain anchors ANOTHER root at size {size}: the log forked"
            )
    later = sorted(a for a in anchors if a[0] > size)
    if not later:
        latest = max((a[0] for a in anchors), default=0)
        return None, Check(
            "anchor", None, f"not anchored on chain yet (the latest anchor covers {latest})"
        )
    anchored = later[0]
    try:
        proof = consistency(size, anchored[0]) if consistency is not None else None
    except AiledgerError as exc:
        return anchored, Check("anchor", None, f"no consistency proof to check: {exc}")
    if proof is None:
        return anchored, Check("anchor", None, f"anchored later at {anchored[0]}, not checked")
    if verify_consistency(size, anchored[0], proof, root, anchored[1]):
        return anchored, Check(
            "anchor", True, f"extended by the chain's anchor at {anchored[0]} (consistent)"
        )
    return anchored, Check(
        "anchor", False, f"the chain's anchor at {anchored[0]} does not extend this checkpoint"
    )
