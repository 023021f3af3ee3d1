"""The requester's node, for its compute jobs: hand bundles to providers, take results back.

Routes (each request signed by the provider, see :mod:`ailedger.compute.signing`):

* ``GET /v1/jobs/{id}/spec``: the job's ``job.toml``, for any registered provider deciding
  whether to bid (it names the runtime, which is not on chain). The code stays private.
* ``GET /v1/jobs/{id}/bundle``: the packed bundle, only to a provider assigned to the job.
* ``POST /v1/jobs/{id}/logs/{seq}``: a sealed batch of log lines from an assigned provider.
* ``PUT /v1/jobs/{id}/output``: the encrypted output of an assigned provider.

Who may do what is read from the chain at each request (the job's requester must be this
node's account; the signer must be registered or assigned), so a provider that lost the
auction, a stranger, or a replay against another job gets 403. Nothing here can spend the
requester's tokens: paying happens on chain, against hashes the requester checks itself.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

# At module level, not in add_job_routes: with postponed annotations FastAPI resolves the
# routes' ``request: Request`` in this module's globals, and an unresolved name turns into
# a required query parameter (every request would be answered 422).
from fastapi import Request

from ailedger._durable import fsync_file, replace_durably
from ailedger.compute.job_files import MAX_LOG_BATCH, MAX_LOG_BATCHES, JobFiles
from ailedger.compute.jobs import JOB_FILE, MAX_BUNDLE_BYTES
from ailedger.compute.signing import SIGNATURE_HEADER, request_signer
from ailedger.errors import AiledgerError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ailedger.compute.market import ComputeMarketClient

# An output is at most the sandbox's output cap (1 GiB) plus STREAM overhead and the key.
MAX_UPLOAD = MAX_BUNDLE_BYTES + (64 << 20)


@dataclass
class InboxRefusal(AiledgerError):
    status: int
    reason: str

    def __str__(self) -> str:
        return self.reason


class JobInbox:
    """The checks behind the routes; no HTTP here, so each rule is unit-testable."""

    def __init__(self, files: JobFiles, me: str, market: ComputeMarketClient) -> None:
        self.files = files
        self.me = me
        self.market = market

    def _own_job(self, job_id: int) -> dict[str, Any]:
        info = self.market.info(job_id)
        if info is None or info["requester"].lower() != self.me.lower():
            raise InboxRefusal(404, f"job {job_id} was not posted by this node")
        return info

    def _assigned(self, job_id: int, signer: str | None) -> dict[str, Any]:
        info = self._own_job(job_id)
        if signer is None:
            raise InboxRefusal(401, "missing or invalid request signature")
        if not any(
            a["provider"].lower() == signer.lower() for a in self.market.assignments(job_id)
        ):
            raise InboxRefusal(403, f"{signer} is not assigned to job {job_id}")
        return info

    def _bundle_tar(self, info: dict[str, Any]) -> Path:
        path = self.files.bundle_path(bytes(info["bundle_hash"]))
        if not path.is_file():
            raise InboxRefusal(410, "this node no longer holds the job's bundle")
        return path

    def spec(self, job_id: int, signer: str | None) -> bytes:
        info = self._own_job(job_id)
        if signer is None:
            raise InboxRefusal(401, "missing or invalid request signature")
        if not self.market.provider(signer)["registered"]:
            raise InboxRefusal(403, f"{signer} is not a registered provider")
        with tarfile.open(self._bundle_tar(info), mode="r:") as tar:
            member = tar.extractfile(JOB_FILE)
            assert member is not None  # save_bundle validated the bundle
            return member.read()

    def bundle(self, job_id: int, signer: str | None) -> Path:
        return self._bundle_tar(self._assigned(job_id, signer))

    def log(self, job_id: int, signer: str | None, seq: int, sealed: bytes) -> None:
        self._assigned(job_id, signer)
        assert signer is not None
        if not 0 <= seq < MAX_LOG_BATCHES or len(sealed) > MAX_LOG_BATCH:
            raise InboxRefusal(413, "log batch out of range or too large")
        self.files.save_log_batch(job_id, signer, seq, sealed)

    def output(self, job_id: int, signer: str | None, upload: Path) -> None:
        self._assigned(job_id, signer)
        assert signer is not None
        target = self.files.output_path(job_id, signer)
        target.parent.mkdir(parents=True, exist_ok=True)
        replace_durably(upload, target)


def add_job_routes(app: FastAPI, inbox: JobInbox) -> None:
    from fastapi.responses import FileResponse, JSONResponse, Response
    from starlette.concurrency import run_in_threadpool

    def refuse(exc: InboxRefusal) -> Response:
        return JSONResponse({"error": exc.reason}, status_code=exc.status)

    def signer_of(request: Request, body_sha256: bytes) -> str | None:
        return request_signer(
            request.headers.get(SIGNATURE_HEADER),
            inbox.me,
            request.method,
            request.url.path,
            body_sha256=body_sha256,
        )

    empty = hashlib.sha256(b"").digest()

    @app.get("/v1/jobs/{job_id}/spec")
    async def spec(job_id: int, request: Request) -> Response:
        try:
            text = await run_in_threadpool(inbox.spec, job_id, signer_of(request, empty))
        except InboxRefusal as exc:
            return refuse(exc)
        return Response(text, media_type="application/toml")

    @app.get("/v1/jobs/{job_id}/bundle")
    async def bundle(job_id: int, request: Request) -> Response:
        try:
            path = await run_in_threadpool(inbox.bundle, job_id, signer_of(request, empty))
        except InboxRefusal as exc:
            return refuse(exc)
        return FileResponse(path, media_type="application/x-tar")

    @app.post("/v1/jobs/{job_id}/logs/{seq}")
    async def logs(job_id: int, seq: int, request: Request) -> Response:
        body = await _bounded_body(request, MAX_LOG_BATCH)
        if body is None:
            return JSONResponse({"error": "log batch too large"}, status_code=413)
        signer = signer_of(request, hashlib.sha256(body).digest())
        try:
            await run_in_threadpool(inbox.log, job_id, signer, seq, body)
        except InboxRefusal as exc:
            return refuse(exc)
        return JSONResponse({"ok": True})

    @app.put("/v1/jobs/{job_id}/output")
    async def output(job_id: int, request: Request) -> Response:
        # Stream to a temporary file while hashing: the signature covers the body's hash.
        inbox.files.root.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".upload-", dir=inbox.files.root)
        digest, size = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > MAX_UPLOAD:
                        return JSONResponse({"error": "output too large"}, status_code=413)
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                fsync_file(out.fileno())
            signer = signer_of(request, digest.digest())
            await run_in_threadpool(inbox.output, job_id, signer, Path(name))
        except InboxRefusal as exc:
            return refuse(exc)
        finally:
            Path(name).unlink(missing_ok=True)
        return JSONResponse({"ok": True, "bytes": size})


async def _bounded_body(request: Any, limit: int) -> bytes | None:
    buffer = io.BytesIO()
    async for chunk in request.stream():
        if buffer.tell() + len(chunk) > limit:
            return None
        buffer.write(chunk)
    return buffer.getvalue()
