"""HTTP face of the data gateway: access, dataset metadata, audit proofs, liveness.

Parses, calls the :class:`~ailedger.sharing.gateway.Gateway`, streams. Refusals are
raised; the node turns them into statuses in one place (``ailedger.node.errors``).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from ailedger.errors import NotFoundError, PayloadTooLargeError
from ailedger.peer import wire
from ailedger.sharing.gateway import Gateway
from ailedger.untrusted_json import parse_untrusted

MAX_BODY = 64 * 1024  # a signed request is a few hundred bytes


def gateway_router(gateway: Gateway) -> APIRouter:
    router = APIRouter(tags=["data"])

    @router.post(wire.ACCESS)
    async def access(request: Request) -> Response:
        """Serve a dataset's ciphertext and its data key, wrapped to the requester, for a
        signed access request under a valid grant."""
        raw = await request.body()
        if len(raw) > MAX_BODY:
            raise PayloadTooLargeError("request body too large")
        try:
            body: Any = parse_untrusted(raw)
        except ValueError:
            body = None
        granted = await run_in_threadpool(gateway.authorize, body)
        receipt = {"index": granted.audit_index, "entry": granted.audit_entry}
        headers = {
            wire.WRAPPED_KEY_HEADER: granted.wrapped_key.hex(),
            wire.VERSION_HEADER: str(granted.dataset.version),
            wire.AUDIT_HEADER: base64.b64encode(json.dumps(receipt).encode()).decode(),
            "Content-Length": str(gateway.blobs.size(granted.dataset.blob_hash)),
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

    @router.get(wire.AUDIT_CHECKPOINT)
    def checkpoint() -> Response:
        """The latest signed checkpoint of the audit log (C2SP signed note)."""
        latest = gateway.audit.latest_checkpoint()
        if latest is None:
            raise NotFoundError("no checkpoint yet")
        return Response(latest.note, media_type="text/plain")

    @router.get(wire.AUDIT_KEY)
    def audit_key() -> dict[str, str]:
        """The Ed25519 key that signs this log's checkpoints (raw, hex)."""
        return {"ed25519": gateway.audit.public_key.public_bytes_raw().hex()}

    @router.get(wire.AUDIT_RECEIPT)
    def audit_receipt(index: int) -> Response:
        """Proof that entry ``index`` is in the log: entry, signed checkpoint, path."""
        if not 0 <= index < gateway.audit.size:
            raise NotFoundError("no such audit entry")
        return JSONResponse(gateway.audit.receipt(index))

    @router.get(wire.HEALTH)
    def health() -> dict[str, Any]:
        """Liveness, and how many entries the audit log holds."""
        return {"ok": True, "audit_size": gateway.audit.size}

    return router
