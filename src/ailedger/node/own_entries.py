"""Entries the node's own processes log through it while it holds the audit log.

The audit log has one owner, the running node. The home's other processes (the CLI
logging an outgoing MME query, the provider agent logging a compute-to-data read) hand
their entries to it with a request signed by the home's own account
(:func:`ailedger.peer.client.log_via_own_node`); no one else may write here, and only
these kinds of entry are taken.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ailedger.errors import (
    MalformedRequestError,
    PayloadTooLargeError,
    UnauthenticatedError,
    UnprocessableError,
)
from ailedger.peer import wire
from ailedger.peer.signing import request_signer
from ailedger.untrusted_json import parse_untrusted

# kind -> fields the node sets itself, whatever the process sent
OWN_ENTRY_KINDS: dict[str, dict[str, Any]] = {
    "mme-query": {"direction": "outgoing"},
    "compute-read": {},
    "privacy-cap": {},
}
MAX_ENTRY = 64 * 1024


def own_entry(raw: bytes) -> dict[str, Any]:
    """The entry to log for body ``raw``: one of the own kinds, flat values only."""
    try:
        entry = parse_untrusted(raw)
    except ValueError:
        raise MalformedRequestError("the body is not JSON") from None
    if not isinstance(entry, dict) or entry.get("kind") not in OWN_ENTRY_KINDS:
        raise UnprocessableError(f"only {', '.join(OWN_ENTRY_KINDS)} entries are logged here")
    clean = {k: v for k, v in entry.items() if isinstance(v, str | int | bool)}
    return {**clean, **OWN_ENTRY_KINDS[entry["kind"]]}


def own_entries_router(append: Callable[[dict[str, Any]], int], me: str) -> APIRouter:
    """``append`` logs an entry and returns its index: the gateway's
    :meth:`~ailedger.sharing.gateway.Gateway.append_own`, so a compute-to-data read
    passes its grant's read limit here as a fetch does."""
    router = APIRouter(tags=["audit"])

    @router.post(wire.OWN_ENTRIES)
    async def outgoing(request: Request) -> Response:
        """The node's own processes log here while the node holds the log."""
        raw = await request.body()
        if len(raw) > MAX_ENTRY:
            raise PayloadTooLargeError("request body too large")
        signer = request_signer(
            request.headers.get(wire.SIGNATURE_HEADER),
            me,
            request.method,
            request.url.path,
            body_sha256=hashlib.sha256(raw).digest(),
        )
        if signer is None or signer.lower() != me.lower():
            raise UnauthenticatedError("only this node's own account may log here")
        index = await run_in_threadpool(append, own_entry(raw))
        return JSONResponse({"index": index})

    return router
