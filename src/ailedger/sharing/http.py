"""HTTP face of the data gateway: access, dataset metadata, audit proofs, liveness.

Parses, calls the :class:`~ailedger.sharing.gateway.Gateway`, streams. Refusals are
raised; the node turns them into statuses in one place (``ailedger.peer.http_errors``).
"""

from __future__ import annotations

import base64
import json
from typing import Any, Protocol, runtime_checkable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from ailedger.errors import NotFoundError
from ailedger.peer import wire
from ailedger.peer.rate_limit import PeerRateLimiter
from ailedger.sharing.gateway import Gateway
from ailedger.untrusted_json import parse_untrusted

MAX_BODY = 64 * 1024  # a signed request is a few hundred bytes
MAX_ENTRIES_PAGE = 1000  # entries per /v1/audit/entries answer


@runtime_checkable
class ServedLog(Protocol):
    """What the routes an outside auditor uses need of the log (an ``AuditLog`` has it)."""

    @property
    def size(self) -> int: ...

    def entries_bytes(self, start: int, stop: int) -> list[bytes]: ...

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]: ...


def gateway_router(gateway: Gateway, limiter: PeerRateLimiter | None = None) -> APIRouter:
    """The gateway's routes; access requests are limited per peer address by ``limiter``
    (default: :class:`~ailedger.peer.rate_limit.PeerRateLimiter`'s defaults), since each
    one that gets through is written to the audit log."""
    router = APIRouter(tags=["data"])
    limiter = limiter or PeerRateLimiter()

    @router.post(wire.ACCESS)
    async def access(request: Request) -> Response:
        """Serve a dataset's ciphertext and its data key, wrapped to the requester, for a
        signed access request under a valid grant."""
        peer = request.client.host if request.client else "unknown"
        limiter.admit(peer)  # before anything is read or logged: a flood costs nothing
        raw = await _read_at_most(request, MAX_BODY)
        if raw is None:
            raise await run_in_threadpool(gateway.refuse_oversized, MAX_BODY, peer)
        try:
            body: Any = parse_untrusted(raw)
        except ValueError:
            body = None
        granted = await run_in_threadpool(gateway.authorize, body, peer)
        receipt = {"index": granted.audit_index, "entry": granted.audit_entry}
        headers = {
            wire.WRAPPED_KEY_HEADER: granted.wrapped_key.hex(),
            wire.VERSION_HEADER: str(granted.dataset.version),
            wire.AUDIT_HEADER: base64.b64encode(json.dumps(receipt).encode()).decode(),
            "Content-Length": str(granted.size),
        }
        return StreamingResponse(
            gateway.stream(granted), media_type="application/octet-stream", headers=headers
        )

    @router.get(wire.DATASET_METADATA)
    def metadata(dataset_id: str) -> Response:
        """A dataset's title, tags and description (the chain holds only their hash)."""
        try:
            record = gateway.store.get(bytes.fromhex(dataset_id.removeprefix("0x")))
        except ValueError:
            record = None
        if record is None:
            raise NotFoundError("no such dataset at this node")
        return JSONResponse(record.metadata)

    @router.get(wire.GRANT_READS)
    def grant_reads(grant_id: int) -> dict[str, Any]:
        """Reads a grant has used and has left (fetches and compute-to-data together;
        ``remaining`` null: unlimited)."""
        return gateway.grant_reads(grant_id)

    @router.get(wire.AUDIT_CHECKPOINT)
    def checkpoint() -> Response:
        """The latest signed checkpoint of the audit log (C2SP signed note)."""
        latest = gateway.audit.latest_checkpoint()
        if latest is None:
            raise NotFoundError("no checkpoint yet")
        return Response(latest.note, media_type="text/plain")

    @router.get(wire.AUDIT_KEY)
    def audit_key() -> dict[str, str]:
        """The Ed25519 key that signs this log's checkpoints (raw, hex). For display only:
        verifiers take the key the node bound on chain (``AuditAnchor.checkpoint_key``)."""
        return {"ed25519": gateway.audit.public_key.public_bytes_raw().hex()}

    @router.get(wire.AUDIT_RECEIPT)
    def audit_receipt(index: int) -> Response:
        """Proof that entry ``index`` is in the log: entry, signed checkpoint, path."""
        if not 0 <= index < gateway.audit.size:
            raise NotFoundError("no such audit entry")
        return JSONResponse(gateway.audit.receipt(index))

    def served_log() -> ServedLog:
        if not isinstance(gateway.audit, ServedLog):
            raise NotFoundError("this node's audit log serves no entries or proofs")
        return gateway.audit

    @router.get(wire.AUDIT_ENTRIES)
    def audit_entries(start: int = 0, stop: int = MAX_ENTRIES_PAGE) -> dict[str, Any]:
        """Entries ``[start, stop)`` as stored (canonical JSON), at most 1000 at a time, so
        anyone can recompute the log's leaves and roots (RFC 6962)."""
        log = served_log()
        size = log.size  # clamped first: SQLite takes no integer past 2**63
        start = min(max(0, start), size)
        stop = min(max(start, stop), start + MAX_ENTRIES_PAGE, size)
        data = log.entries_bytes(start, stop) if start < stop else []
        return {"start": start, "entries": [d.decode() for d in data]}

    @router.get(wire.AUDIT_CONSISTENCY)
    def audit_consistency(first: int, second: int) -> dict[str, Any]:
        """RFC 9162 §2.1.4 proof that the tree of ``second`` entries extends that of ``first``."""
        log = served_log()
        if not 0 < first <= second <= log.size:
            raise NotFoundError(f"no consistency proof from size {first} to {second}")
        proof = log.consistency_proof(first, second)
        return {"proof": [base64.b64encode(p).decode() for p in proof]}

    @router.get(wire.HEALTH)
    def health() -> dict[str, Any]:
        """Liveness, and how many entries the audit log holds."""
        return {"ok": True, "audit_size": gateway.audit.size}

    return router


async def _read_at_most(request: Request, limit: int) -> bytes | None:
    """The body, or None once it passes ``limit`` bytes (the rest is never read)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)
