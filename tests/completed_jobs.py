"""A COMPLETED compute-to-data job on chain, for tests of what cites one (a model's
lineage): the market's whole path, with no provider process behind it."""

from __future__ import annotations

import time

from ailedger.chain.contracts.compute_market import (
    ComputeMarketClient,
    JobStatus,
    JobTerms,
    new_salt,
)
from ailedger.chain.contracts.data_market import DataMarketClient

AIL = 10**18
BUNDLE = b"\x42" * 32
"""The algorithm the jobs run; the dataset's owner must have allowed it."""


def completed_job(
    requester_data: DataMarketClient,
    requester: ComputeMarketClient,
    provider: ComputeMarketClient,
    dataset: bytes,
    purpose: int,
    output: bytes,
) -> int:
    """A k = 1 job by ``requester`` over ``dataset`` under a grant it asks for ``purpose``,
    won by ``provider`` (which must hold an offer and have allowed ``BUNDLE``), settled on
    the output hash ``output`` and accepted: COMPLETED. Returns the job id."""
    grant, _ = requester_data.request_access(dataset, purpose)
    terms = JobTerms(
        bundle_hash=BUNDLE,
        cpu_cores=1,
        ram_mb=1024,
        gpu_mem_mb=0,
        max_price_per_hour=5 * AIL,
        max_hours=2,
        deadline=int(time.time()) + 3600,
        datasets=(dataset,),
        grant_ids=(grant,),
        purpose=purpose,
    )
    job, _ = requester.post_job(terms)
    provider.bid(job, 3 * AIL)
    requester.close_auction(job)
    salt = new_salt()
    provider.commit_result(job, output, salt)
    provider.reveal_result(job, output, salt, 60)
    requester.accept(job)
    settled = requester.job(job)
    assert settled is not None and settled.status == JobStatus.COMPLETED
    return job
