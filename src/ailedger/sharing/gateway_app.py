"""HTTP face of the data gateway (FastAPI). Parses, calls the Gateway, streams."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from ailedger.sharing.gateway import AccessDeniedError, Gateway
from ailedger.sharing.requester import AUDIT_HEADER, VERSION_HEADER, WRAPPED_KEY_HEADER

if TYPE_CHECKING:
    from ailedger.health.mme import MatchmakerService

MAX_BODY = 64 * 1024  # a signed request is a few hundred bytes
MAX_MME_BODY = 1024 * 1024


def make_gateway_app(gateway: Gateway, mme: MatchmakerService | None = None) -> FastAPI:
    """The node's HTTP API: data access, audit proofs, and (with ``mme``) matchmaking."""
    app = FastAPI(title="ailedger node", docs_url=None, redoc_url=None)
    if mme is not None:
        _add_matchmaking(app, gateway, mme)
    _add_own_entries(app, gateway)

    @app.post("/v1/access")
    async def access(request: Request) -> Response:
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return JSONResponse({"error": "request body too large"}, status_code=413)
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = None
        try:
            granted = await run_in_threadpool(gateway.authorize, body)
        except AccessDeniedError as exc:
            return JSONResponse({"error": exc.reason}, status_code=exc.status_code)
        receipt = {"index": granted.audit_index, "entry": granted.audit_entry}
        headers = {
            WRAPPED_KEY_HEADER: granted.wrapped_key.hex(),
            VERSION_HEADER: str(granted.dataset.version),
            AUDIT_HEADER: base64.b64encode(json.dumps(receipt).encode()).decode(),
            "Content-Length": str(gateway.blobs.size(granted.dataset.blob_hash)),
        }
        return StreamingResponse(
            gateway.stream(granted), media_type="application/octet-stream", headers=headers
        )

    @app.get("/v1/datasets/{dataset_id}/metadata")
    def metadata(dataset_id: str) -> Response:
        try:
            record = gateway.store.get(bytes.fromhex(dataset_id.removeprefix("0x")))
        except ValueError:
            record = None
        if record is None:
            return JSONResponse({"error": "no such dataset at this node"}, status_code=404)
        return JSONResponse(record.metadata)

    @app.get("/v1/audit/checkpoint")
    def checkpoint() -> Response:
        latest = gateway.audit.latest_checkpoint()
        if latest is None:
            return JSONResponse({"error": "no checkpoint yet"}, status_code=404)
        return Response(latest.note, media_type="text/plain")

    @app.get("/v1/audit/key")
    def audit_key() -> dict[str, str]:
        """The Ed25519 key that signs this log's checkpoints (raw, hex)."""
        return {"ed25519": gateway.audit.public_key.public_bytes_raw().hex()}

    @app.get("/v1/audit/receipts/{index}")
    def audit_receipt(index: int) -> Response:
        """Proof that entry ``index`` is in the log: entry, signed checkpoint, path."""
        if not 0 <= index < gateway.audit.size:
            return JSONResponse({"error": "no such audit entry"}, status_code=404)
        return JSONResponse(gateway.audit.receipt(index))

    @app.get("/v1/health")
    def health() -> dict[str, Any]:
        return {"ok": True, "audit_size": gateway.audit.size}

    return app


def add_matchmaking_routes(app: FastAPI, mme: MatchmakerService) -> None:
    """Matchmaker Exchange API v1.1 ``POST /match``, under ``/mme``."""
    from ailedger.health.mme_schema import MME_CONTENT_TYPE, REQUEST_SCHEMA

    body_schema = {"content": {MME_CONTENT_TYPE: {"schema": REQUEST_SCHEMA}}, "required": True}
    auth = [
        {"name": "X-Auth-Token", "in": "header", "required": True, "schema": {"type": "string"}}
    ]

    @app.post("/mme/match", openapi_extra={"requestBody": body_schema, "parameters": auth})
    async def match(request: Request) -> Response:
        """Find patients like the one described; answers only for consented patients."""
        body = await request.body()
        if len(body) > MAX_MME_BODY:
            return JSONResponse({"message": "request body too large"}, status_code=413)
        headers = {k.lower(): v for k, v in request.headers.items()}
        reply = await run_in_threadpool(mme.handle, headers, body)
        return JSONResponse(reply.body, status_code=reply.status, media_type=MME_CONTENT_TYPE)


def _add_matchmaking(app: FastAPI, gateway: Gateway, mme: MatchmakerService) -> None:
    add_matchmaking_routes(app, mme)


# What the node's own processes (the CLI, the provider agent) may log through the node
# while it holds the audit log: an outgoing MME query, a compute-to-data read.
OWN_ENTRY_KINDS = {"mme-query": {"direction": "outgoing"}, "compute-read": {}}


def _add_own_entries(app: FastAPI, gateway: Gateway) -> None:
    from ailedger.health.mme_auth import node_token_signer

    @app.post("/v1/audit/outgoing")
    async def outgoing(request: Request) -> Response:
        """The node's own processes log here while the node holds the log."""
        me = gateway.owner_address
        signer = node_token_signer(request.headers.get("x-auth-token", ""), me)
        if signer is None or signer.lower() != me.lower():
            return JSONResponse(
                {"error": "only this node's own account may log here"}, status_code=401
            )
        try:
            entry = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"error": "the body is not JSON"}, status_code=400)
        if not isinstance(entry, dict) or entry.get("kind") not in OWN_ENTRY_KINDS:
            return JSONResponse(
                {"error": f"only {', '.join(OWN_ENTRY_KINDS)} entries are logged here"},
                status_code=422,
            )
        clean = {k: v for k, v in entry.items() if isinstance(v, str | int | bool)}
        fixed = OWN_ENTRY_KINDS[entry["kind"]]
        index = await run_in_threadpool(gateway.audit.append, {**clean, **fixed})
        return JSONResponse({"index": index})
