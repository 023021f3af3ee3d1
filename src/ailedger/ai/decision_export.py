"""Signed exports of logged decisions, for a regulator or an auditor (EU AI Act Art. 12/19).

An export holds the decision entries ``[start, stop)`` exactly as logged, the signed
checkpoint that covers them, each entry's RFC 6962 inclusion proof to that checkpoint,
and which of them were redacted (salt destroyed); never a salt nor an input. The node
signs it with its audit checkpoint key (Ed25519, over a domain-separated canonical JSON),
so one public key checks the export, the checkpoint and, through the proofs, every entry.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ailedger.ai.decisions import canonical_json_text, decision_entry_problems
from ailedger.ai.errors import DecisionError
from ailedger.ai.salts import SaltStore
from ailedger.audit.checkpoint import parse_checkpoint
from ailedger.audit.log import AuditLog
from ailedger.audit.merkle import leaf_hash, verify_inclusion
from ailedger.untrusted_json import parse_untrusted

EXPORT_FORMAT = "ailedger.decision-export/1"
_DOMAIN = (EXPORT_FORMAT + "\n").encode()  # an export signature is never a checkpoint's


def export_decisions(
    log: AuditLog, salts: SaltStore, start: int, stop: int, signing_key: Ed25519PrivateKey
) -> bytes:
    """The decisions among audit entries ``[start, stop)``, signed for a regulator."""
    if not 0 <= start < stop <= log.size:
        raise DecisionError(f"export range {start}..{stop} is not inside the log's 0..{log.size}")
    checkpoint = log.latest_checkpoint()
    if checkpoint is None or checkpoint.size < stop:
        checkpoint = log.checkpoint_now()
    entries, proofs, indices = [], [], []
    for index, data in enumerate(log.entries_bytes(start, stop), start):
        if json.loads(data).get("kind") != "decision":
            continue  # other accesses in the same log are not this export's business
        indices.append(index)
        entries.append(data.decode())
        proofs.append(
            [base64.b64encode(p).decode() for p in log.inclusion_proof(index, checkpoint.size)]
        )
    body = {
        "format": EXPORT_FORMAT,
        "start": start,
        "stop": stop,
        "exported_at": int(time.time()),
        "checkpoint": checkpoint.note,
        "indices": indices,
        "entries": entries,
        "inclusion_proofs": proofs,
        "redacted": salts.redacted(start, stop),
    }
    signature = signing_key.sign(_DOMAIN + canonical_json_text(body).encode())
    return canonical_json_text(
        {"export": body, "signature": base64.b64encode(signature).decode()}
    ).encode()


def verify_export(data: bytes, public_key: Ed25519PublicKey) -> list[dict[str, Any]]:
    """The exported decision entries, once the export's signature, its checkpoint, every
    entry's inclusion and every explanation check out; else :class:`DecisionError`."""
    try:
        outer = parse_untrusted(data)
        body, signature = outer["export"], base64.b64decode(outer["signature"], validate=True)
        public_key.verify(signature, _DOMAIN + canonical_json_text(body).encode())
    except (KeyError, TypeError, ValueError, binascii.Error, InvalidSignature) as exc:
        raise DecisionError(
            f"the decision export is not signed by this node's audit key, or was altered "
            f"({type(exc).__name__}): ask the node for a fresh export"
        ) from exc
    if not isinstance(body, dict) or body.get("format") != EXPORT_FORMAT:
        raise DecisionError(f"not a decision export of format {EXPORT_FORMAT}")
    try:
        return _checked_entries(body, public_key)
    except (KeyError, TypeError, ValueError, AttributeError, binascii.Error) as exc:
        raise DecisionError(
            f"the decision export is malformed ({exc!r}): ask for a new one"
        ) from exc


def _checked_entries(body: dict[str, Any], public_key: Ed25519PublicKey) -> list[dict[str, Any]]:
    checkpoint = parse_checkpoint(body["checkpoint"], public_key)
    if checkpoint is None:
        raise DecisionError("the export's checkpoint is not signed by this node's audit key")
    rows = zip(body["indices"], body["entries"], body["inclusion_proofs"], strict=True)
    found = []
    for index, entry, encoded in rows:
        proof = [base64.b64decode(p, validate=True) for p in encoded]
        leaf = leaf_hash(entry.encode())
        if not verify_inclusion(leaf, index, checkpoint.size, proof, checkpoint.root):
            raise DecisionError(f"exported entry {index} is not in the log its checkpoint covers")
        loaded: dict[str, Any] = json.loads(entry)
        problems = decision_entry_problems(loaded)
        if problems:
            raise DecisionError(f"exported decision {index} is invalid: {'; '.join(problems)}")
        found.append(loaded)
    return found
