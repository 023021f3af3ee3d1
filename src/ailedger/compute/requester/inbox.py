"""The requester's node, for its compute jobs: hand bundles to providers, take results back.

Served by :mod:`ailedger.compute.requester.http`, each request signed by the provider
(:mod:`ailedger.peer.signing`):

* ``GET /v1/jobs/{id}/spec``: the job's ``job.toml``, for any registered provider deciding
  whether to bid (it names the runtime, which is not on chain). The code stays private.
* ``GET /v1/jobs/{id}/bundle``: the packed bundle, only to a provider assigned to the job.
* ``POST /v1/jobs/{id}/logs/{seq}``: a sealed batch of log lines from an assigned provider.
* ``PUT /v1/jobs/{id}/output``: the encrypted output of an assigned provider.

Who may do what is read from the chain at each request (the job's requester must be this
node's account; the signer must be registered or assigned), so a provider that lost the
auction, a stranger, or a replay against another job is refused. Nothing here can spend the
requester's tokens: paying happens on chain, against hashes the requester checks itself.
"""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import TYPE_CHECKING

from ailedger._durable import replace_durably
from ailedger.compute.jobs import JOB_FILE
from ailedger.compute.requester.files import MAX_LOG_BATCH, MAX_LOG_BATCHES, JobFiles
from ailedger.errors import (
    ForbiddenError,
    GoneError,
    NotFoundError,
    PayloadTooLargeError,
    UnauthenticatedError,
)

if TYPE_CHECKING:
    from ailedger.chain.contracts import ComputeMarketClient, ComputeProvidersClient, JobInfo

NO_SIGNATURE = "missing or invalid request signature"


class JobInbox:
    """The checks behind the routes; no HTTP here, so each rule is unit-testable."""

    def __init__(
        self,
        files: JobFiles,
        me: str,
        market: ComputeMarketClient,
        providers: ComputeProvidersClient,
    ) -> None:
        self.files = files
        self.me = me
        self.market = market
        self.providers = providers

    def _own_job(self, job_id: int) -> JobInfo:
        info = self.market.info(job_id)
        if info is None or info["requester"].lower() != self.me.lower():
            raise NotFoundError(f"job {job_id} was not posted by this node")
        return info

    def _assigned(self, job_id: int, signer: str | None) -> JobInfo:
        info = self._own_job(job_id)
        if signer is None:
            raise UnauthenticatedError(NO_SIGNATURE)
        if not any(
            a["provider"].lower() == signer.lower() for a in self.market.assignments(job_id)
        ):
            raise ForbiddenError(f"{signer} is not assigned to job {job_id}")
        return info

    def _bundle_tar(self, info: JobInfo) -> Path:
        path = self.files.bundle_path(bytes(info["bundle_hash"]))
        if not path.is_file():
            raise GoneError("this node no longer holds the job's bundle")
        return path

    def spec(self, job_id: int, signer: str | None) -> bytes:
        info = self._own_job(job_id)
        if signer is None:
            raise UnauthenticatedError(NO_SIGNATURE)
        if not self.providers.provider(signer)["registered"]:
            raise ForbiddenError(f"{signer} is not a registered provider")
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
            raise PayloadTooLargeError("log batch out of range or too large")
        self.files.save_log_batch(job_id, signer, seq, sealed)

    def output(self, job_id: int, signer: str | None, upload: Path) -> None:
        self._assigned(job_id, signer)
        assert signer is not None
        target = self.files.output_path(job_id, signer)
        target.parent.mkdir(parents=True, exist_ok=True)
        replace_durably(upload, target)
