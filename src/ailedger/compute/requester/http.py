"""HTTP face of the job inbox: providers fetch specs and bundles, send logs and outputs.

Reads each request's signature (:mod:`ailedger.peer.signing`) and bounded body, then
calls the :class:`~ailedger.compute.requester.inbox.JobInbox`, which decides. Refusals are raised;
the node turns them into statuses in one place (``ailedger.peer.http_errors``).
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ailedger.compute.jobs import MAX_BUNDLE_BYTES
from ailedger.compute.requester.files import MAX_LOG_BATCH
from ailedger.compute.requester.inbox import JobInbox
from ailedger.errors import PayloadTooLargeError
from ailedger.peer import wire
from ailedger.peer.signing import EMPTY_BODY_SHA256, request_signer

# An output is at most the sandbox's output cap (1 GiB) plus STREAM overhead and the key.
MAX_UPLOAD = MAX_BUNDLE_BYTES + (64 << 20)


def job_router(inbox: JobInbox) -> APIRouter:
    router = APIRouter(tags=["compute"])

    def signer_of(request: Request, body_sha256: bytes) -> str | None:
        return request_signer(
            request.headers.get(wire.SIGNATURE_HEADER),
            inbox.me,
            request.method,
            request.url.path,
            body_sha256=body_sha256,
        )

    @router.get(wire.JOB_SPEC)
    async def spec(job_id: int, request: Request) -> Response:
        """The job's ``job.toml``, for a registered provider deciding whether to bid."""
        signer = signer_of(request, EMPTY_BODY_SHA256)
        text = await run_in_threadpool(inbox.spec, job_id, signer)
        return Response(text, media_type="application/toml")

    @router.get(wire.JOB_BUNDLE)
    async def bundle(job_id: int, request: Request) -> Response:
        """The packed bundle, for a provider assigned to the job."""
        signer = signer_of(request, EMPTY_BODY_SHA256)
        path = await run_in_threadpool(inbox.bundle, job_id, signer)
        return FileResponse(path, media_type="application/x-tar")

    @router.post(wire.JOB_LOGS)
    async def logs(job_id: int, seq: int, request: Request) -> Response:
        """A sealed batch of log lines from an assigned provider."""
        body = await _bounded_body(request, MAX_LOG_BATCH)
        signer = signer_of(request, hashlib.sha256(body).digest())
        await run_in_threadpool(inbox.log, job_id, signer, seq, body)
        return JSONResponse({"ok": True})

    @router.put(wire.JOB_OUTPUT)
    async def output(job_id: int, request: Request) -> Response:
        """The encrypted output of an assigned provider, streamed to disk."""
        # Stream to a temporary file while hashing: the signature covers the body's hash.
        inbox.files.root.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".upload-", dir=inbox.files.root)
        digest, size = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > MAX_UPLOAD:
                        raise PayloadTooLargeError("output too large")
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            signer = signer_of(request, digest.digest())
            await run_in_threadpool(inbox.output, job_id, signer, Path(name))
        finally:
            Path(name).unlink(missing_ok=True)
        return JSONResponse({"ok": True, "bytes": size})

    return router


async def _bounded_body(request: Request, limit: int) -> bytes:
    buffer = io.BytesIO()
    async for chunk in request.stream():
        if buffer.tell() + len(chunk) > limit:
            raise PayloadTooLargeError("log batch too large")
        buffer.write(chunk)
    return buffer.getvalue()
