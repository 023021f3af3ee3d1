"""Verify another node's audit log, as its gateway serves it, against the chain.

An outside auditor (or a patient) trusts only the chain: the Ed25519 key the node bound
to its account (``AuditAnchor.checkpoint_key``) and the ``(size, root)`` pairs it anchored.
From the node's gateway it fetches the latest signed checkpoint (C2SP signed note), RFC
9162 §2.1.4 consistency proofs from each anchor to that checkpoint, and the stored entries,
and checks that:

* the checkpoint is signed by the key on chain (a gateway cannot swap in another key);
* no anchor is larger than the checkpoint (a log rolled back below what the chain saw);
* the checkpoint's tree extends every anchored tree (no anchored entry was rewritten);
* the entries served hash (RFC 6962 leaves) to the checkpoint's root, so what the node
  shows as its history is the history it signed.

Entries the node holds past its checkpoint are reported as an unsigned tail (a running
node signs them within a second), not as a failure: nothing vouches for them yet.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ailedger.audit.checkpoint import Checkpoint, parse_checkpoint
from ailedger.audit.merkle import leaf_hash, root_from_leaves, verify_consistency
from ailedger.errors import PeerUnreachableError
from ailedger.peer import wire
from ailedger.untrusted_json import parse_untrusted

PAGE = 1000  # the gateway's largest /v1/audit/entries answer
TIMEOUT_S = 60


class ServedLogSource(Protocol):
    """A node's log as its gateway serves it (see :class:`GatewayLogSource`)."""

    def checkpoint_note(self) -> str | None: ...

    def entries(self, start: int, stop: int) -> list[bytes]: ...

    def consistency_proof(self, first: int, second: int) -> list[bytes]: ...

    def size(self) -> int: ...


@dataclass
class RemoteVerifyResult:
    """Outcome of :func:`verify_served_log`; sizes count entries from the start of the log."""

    ok: bool
    signed_size: int  # the served checkpoint's size, 0 when none verified
    anchored_size: int
    anchors: int
    served_size: int
    message: str = "audit log verified against the chain"
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def verify_served_log(
    source: ServedLogSource,
    key: Ed25519PublicKey | None,
    anchors: list[tuple[int, bytes]],
) -> RemoteVerifyResult:
    """Check the log ``source`` serves against ``key`` and ``anchors`` from the chain."""
    problems: list[str] = []
    notes: list[str] = []
    anchored_size = max((size for size, _ in anchors), default=0)
    served_size = source.size()
    checkpoint = _checked_checkpoint(source, key, anchored_size, problems)
    signed_size = checkpoint.size if checkpoint else 0
    if checkpoint is not None:
        for size, root in sorted(anchors):
            problem = _anchor_problem(source, checkpoint, size, root)
            if problem:
                problems.append(problem)
        _check_entries(source, checkpoint, problems)
    if served_size > signed_size and checkpoint is not None:
        notes.append(
            f"entries {signed_size}..{served_size - 1} are past the served checkpoint: "
            "nothing vouches for them yet"
        )
    result = RemoteVerifyResult(
        ok=not problems,
        signed_size=signed_size,
        anchored_size=anchored_size,
        anchors=len(anchors),
        served_size=served_size,
        problems=problems,
        notes=notes,
    )
    if problems:
        result.message = f"audit log is NOT consistent with the chain: {problems[0]}"
    return result


def _checked_checkpoint(
    source: ServedLogSource,
    key: Ed25519PublicKey | None,
    anchored_size: int,
    problems: list[str],
) -> Checkpoint | None:
    if key is None:
        problems.append(
            "the node has bound no checkpoint key on chain: nothing can vouch for its log"
        )
        return None
    note = source.checkpoint_note()
    if note is None:
        if anchored_size:
            problems.append(
                f"the gateway serves no checkpoint, but the chain anchors {anchored_size} entries"
            )
        return None
    checkpoint = parse_checkpoint(note, key)
    if checkpoint is None:
        problems.append("the served checkpoint is not signed by the key the node bound on chain")
    return checkpoint


def _anchor_problem(
    source: ServedLogSource, checkpoint: Checkpoint, size: int, root: bytes
) -> str | None:
    if size > checkpoint.size:
        return (
            f"the chain anchors {size} entries but the served checkpoint has only "
            f"{checkpoint.size}: the log was rolled back"
        )
    if size == checkpoint.size:
        return (
            None
            if root == checkpoint.root
            else f"the served log forks from the anchor at size {size}"
        )
    proof = source.consistency_proof(size, checkpoint.size)
    if verify_consistency(size, checkpoint.size, proof, root, checkpoint.root):
        return None
    return f"the served log does not extend the anchor at size {size} (rewritten history)"


def _check_entries(source: ServedLogSource, checkpoint: Checkpoint, problems: list[str]) -> None:
    leaves: list[bytes] = []
    while len(leaves) < checkpoint.size:
        page = source.entries(len(leaves), min(len(leaves) + PAGE, checkpoint.size))
        if not page:
            break
        leaves += [leaf_hash(data) for data in page]
    if len(leaves) != checkpoint.size:
        problems.append(
            f"the gateway serves {len(leaves)} entries under a checkpoint of {checkpoint.size}"
        )
    elif root_from_leaves(leaves) != checkpoint.root:
        problems.append("the entries served do not hash to the signed checkpoint's root")


class GatewayLogSource:
    """A node's log, read over HTTP from its gateway (paths from :mod:`ailedger.peer.wire`)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def _get(self, path: str, **params: int) -> Any:
        import httpx

        from ailedger.peer.client import shared_client

        try:
            response = shared_client().get(self.url + path, params=params, timeout=TIMEOUT_S)
        except httpx.HTTPError as exc:
            raise PeerUnreachableError(f"cannot reach the gateway at {self.url}: {exc}") from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise PeerUnreachableError(
                f"the gateway at {self.url} answered {path} with HTTP {response.status_code}"
            )
        return response

    def _json(self, path: str, **params: int) -> dict[str, Any]:
        """The JSON object at ``path``; empty when the gateway has none (404), so a
        missing proof or page fails verification instead of passing it."""
        response = self._get(path, **params)
        if response is None:
            return {}
        try:
            body = parse_untrusted(response.content)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise PeerUnreachableError(f"the gateway at {self.url} sent no JSON object for {path}")
        return body

    def checkpoint_note(self) -> str | None:
        response = self._get(wire.AUDIT_CHECKPOINT)
        return None if response is None else str(response.text)

    def entries(self, start: int, stop: int) -> list[bytes]:
        found = self._json(wire.AUDIT_ENTRIES, start=start, stop=stop).get("entries", [])
        if not isinstance(found, list) or not all(isinstance(e, str) for e in found):
            raise PeerUnreachableError(f"the gateway at {self.url} sent malformed entries")
        return [e.encode() for e in found]

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """The proof as served; an unreadable one is empty, so it fails verification."""
        body = self._json(wire.AUDIT_CONSISTENCY, first=first, second=second)
        try:
            return [base64.b64decode(p, validate=True) for p in body.get("proof", [])]
        except (TypeError, binascii.Error):
            return []

    def receipt(self, index: int) -> dict[str, Any]:
        """The gateway's receipt for entry ``index``, as served: check it before trusting."""
        body = self._json(wire.path(wire.AUDIT_RECEIPT, index=index))
        if not body:
            raise PeerUnreachableError(f"the gateway at {self.url} has no receipt for {index}")
        return body

    def size(self) -> int:
        body = self._json(wire.HEALTH)
        size = body.get("audit_size", 0)
        return size if isinstance(size, int) else 0
