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
from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ailedger.audit.checkpoint import parse_checkpoint
from ailedger.audit.merkle import leaf_hash, verify_inclusion


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
