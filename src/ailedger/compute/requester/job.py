"""The requester's side of a compute job: submit, follow, fetch the result, cancel.

The CLI (``ailedger job ...``) and the web app call the same functions here. The ones a
caller aims at one job (logs, result, cancel, accept, dispute) act only on this home's own
jobs (:func:`own_job`): another requester's job id is "not found", and nothing is sent.

``submit`` validates the bundle completely before a token moves, keeps the packed bundle
where the requester's node serves it to the winners, escrows the maximum cost on chain,
and (by default) closes the auction as soon as k eligible bids are in: the requester is
the only party an early close can hurt (a cheaper bid might have come), so the contract
lets only the requester do it. The result is accepted only if it decrypts, authenticates
as the provider's, and hashes to what was settled (or revealed) on chain.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ailedger.chain.contracts.compute_market import POST_GAS, JobStatus, JobTerms
from ailedger.compute.jobs import JobBundle
from ailedger.compute.output_schema import OutputSchema
from ailedger.compute.requester.files import JobFiles
from ailedger.compute.transfer import open_log_batch, open_output
from ailedger.errors import AiledgerError, ConfigError, NotFoundError, PeerUnreachableError
from ailedger.peer import wire
from ailedger.peer.client import shared_client

if TYPE_CHECKING:
    from ailedger.chain.contracts import ComputeMarketClient, JobInfo
    from ailedger.chain.transactions import TxResult
    from ailedger.session import Session


class JobStateError(AiledgerError):
    """The job is not in a state that allows this action; the message says what does."""


@dataclass(frozen=True)
class Submitted:
    job_id: int
    bundle_hash: bytes
    escrow: int
    tx_hash: str
    status: JobStatus
    providers: list[str]
    # What became of an auction that did not start the job (auction_outcome), if so.
    outcome: str | None = None


@dataclass(frozen=True)
class BundleCheck:
    """What ``job check`` reports of a valid bundle."""

    bundle_hash: bytes
    entry: str
    runtime: str
    inputs: tuple[str, ...]
    redundancy: int
    deterministic: bool
    max_cost: int
    # What an aggregate-only dataset may release: the owner reviews it before allowing
    # the bundle's hash (None: the job declares nothing and such datasets release nothing).
    output: OutputSchema | None = None


def check_bundle(bundle: Path) -> BundleCheck:
    """Validate the bundle completely (``job.toml``, the entry, no links) and say what
    goes on chain: its hash, and the most the job can cost."""
    read = JobBundle.read(bundle)
    spec = read.spec
    # k runs, plus one reserve share for a tie-break run when k >= 2 (refunded if unused).
    shares = spec.redundancy + (1 if spec.redundancy >= 2 else 0)
    return BundleCheck(
        read.digest,
        spec.entry,
        spec.runtime,
        spec.inputs,
        spec.redundancy,
        spec.deterministic,
        spec.max_price_per_hour * math.ceil(spec.max_hours) * shares,
        spec.output,
    )


@dataclass(frozen=True)
class PostedJob:
    """One of this home's jobs, as the chain has it now."""

    job_id: int
    status: JobStatus
    escrow: int
    redundancy: int
    deadline: int
    bundle_hash: bytes
    posted_block: int


def my_jobs(session: Session) -> list[PostedJob]:
    """Every job this home posted, newest first, with its state now. Read from the
    market's ``JobPosted`` events filtered by requester (the node does the filtering)."""
    market = session.compute_market
    posted = market.account_events(["JobPosted"], session.address, session.deployment.block)
    jobs = []
    for event in reversed(posted):
        job_id = int(event.args["job_id"])
        info = market.info(job_id)
        if info is None:
            continue
        jobs.append(
            PostedJob(
                job_id,
                JobStatus(int(info["status"])),
                int(info["escrow"]),
                int(info["redundancy"]),
                int(info["deadline"]),
                bytes(info["bundle_hash"]),
                event.block_number,
            )
        )
    return jobs


def own_job(session: Session, job_id: int) -> JobInfo:
    """The job, if this home posted it; "not found" otherwise (another requester's job
    is not this home's to read or act on, and its existence is not confirmed here)."""
    info = session.compute_market.info(job_id)
    if info is None or str(info["requester"]).lower() != session.address.lower():
        raise NotFoundError(
            f"job {job_id} is not one of this home's jobs; list them with `ailedger job list`"
        )
    return info


def check_own_node(session: Session) -> str:
    """Providers fetch the bundle from the requester's node and send results there."""
    import httpx

    url = session.node_registry.url_of(session.address)
    hint = "start it first with `ailedger node start` (it serves the bundle and takes results)"
    if url is None:
        raise PeerUnreachableError(f"this home has no node URL on chain; {hint}")
    try:
        shared_client().get(url + wire.HEALTH, timeout=5).raise_for_status()
    except httpx.HTTPError as exc:
        raise PeerUnreachableError(f"your node at {url} does not answer ({exc}); {hint}") from None
    return str(url)


def _grants_for(
    session: Session, datasets: list[bytes], purpose: int, reads_needed: int
) -> list[int]:
    """This requester's valid grant for each dataset and purpose, newest first, that has
    ``reads_needed`` reads left as far as the owner's node says: each provider's run
    reads each dataset once, and the owner's node refuses a run past the grant's limit,
    so posting a job the grant cannot cover would only pay for refusals. If the owner's
    node does not answer, the grant is taken: its node still checks before reading."""
    from ailedger.sharing.catalog import Catalog

    market = session.data_market
    catalog = Catalog(session.database)
    catalog.sync(session)
    mine = catalog.requests(requester=session.address)
    grants = []
    for dataset in datasets:
        name = "0x" + dataset.hex()
        candidates = sorted(
            (int(r["request_id"]) for r in mine if r["dataset_id"].lower() == name),
            reverse=True,
        )
        valid = [g for g in candidates if market.check_access(g, session.address, dataset, purpose)]
        if not valid:
            raise ConfigError(
                f"no valid grant for dataset {name} and this purpose; request access first "
                f"(ailedger data request {name} --purpose ...) and wait for the owner's grant"
            )
        grant = next((g for g in valid if _covers(session, dataset, g, reads_needed)), None)
        if grant is None:
            raise ConfigError(
                f"your grants for dataset {name} have fewer than {reads_needed} reads left "
                f"(fetches and compute-to-data count alike); request access again "
                f"(ailedger data request {name} --purpose ...)"
            )
        grants.append(grant)
    return grants


def _covers(session: Session, dataset: bytes, grant: int, reads_needed: int) -> bool:
    from ailedger.sharing.requester import reads_left

    try:
        left = reads_left(session, dataset, grant)
    except PeerUnreachableError:
        return True
    return left is None or left >= reads_needed


def submit(
    session: Session,
    bundle: Path,
    *,
    purpose: int = 0,
    min_reputation: int = 0,
    require_confined: bool = True,
    wait_s: float | None = 30.0,
    collect_s: float = 0.0,
) -> Submitted:
    read = JobBundle.read(bundle)  # every field checked before anything is paid
    spec = read.spec
    datasets = [bytes.fromhex(i[2:]) for i in spec.inputs]
    if datasets and not purpose:
        raise ConfigError("this job reads datasets: give the purpose your grant is for (--purpose)")
    _refuse_private(session, datasets)
    check_own_node(session)
    digest = JobFiles(session.home.path).save_bundle(read)
    grants = _grants_for(session, datasets, purpose, spec.redundancy) if datasets else []
    terms = JobTerms(
        bundle_hash=digest,
        cpu_cores=spec.cpu_cores,
        ram_mb=spec.ram_mb,
        gpu_mem_mb=spec.gpu_mem_mb,
        max_price_per_hour=spec.max_price_per_hour,
        max_hours=math.ceil(spec.max_hours),
        deadline=int(time.time() + spec.deadline_hours * 3600),
        redundancy=spec.redundancy,
        min_reputation=min_reputation,
        require_confined=require_confined,
        datasets=tuple(datasets),
        grant_ids=tuple(grants),
        purpose=purpose if datasets else 0,
    )
    market = session.compute_market
    # The approval and the posting go out back to back (nonce order keeps them in order),
    # so the job is on chain one block sooner; a refusal still names its reason.
    session.token.submit_approval(market.address, terms.max_cost)
    job_id, result = market.post_job(terms, gas=POST_GAS)
    status, providers = JobStatus.OPEN, list[str]()
    if wait_s:
        status, providers = close_when_ready(market, job_id, spec.redundancy, wait_s, collect_s)
    outcome = auction_outcome(market, job_id) if wait_s else None
    return Submitted(job_id, digest, terms.max_cost, result.tx_hash, status, providers, outcome)


def _refuse_private(session: Session, datasets: list[bytes]) -> None:
    """A private dataset's rows go into no job (its owner's node would refuse to run
    it): say so before anything is paid."""
    from ailedger.sharing.owner import is_private

    for dataset in datasets:
        if is_private(session, dataset):
            raise ConfigError(
                f"dataset 0x{dataset.hex()} is private: no job's code runs over its rows; "
                "ask it differentially private questions with `ailedger privacy query` or "
                "train with `ailedger privacy train`"
            )


def auction_outcome(market: ComputeMarketClient, job_id: int) -> str | None:
    """In words, when the job's auction did not start it: it failed (fewer than k
    eligible bids: cancelled, escrow refunded in full), or its window closed without
    enough bids and closing it will refund. None while bidding is open or once assigned."""
    info = market.info(job_id)
    if info is None:
        return None
    k, status = int(info["redundancy"]), JobStatus(int(info["status"]))
    if status == JobStatus.CANCELLED and not market.assignments(job_id):
        eligible = market.auction_failed(job_id)
        if eligible is not None:
            return (
                f"auction failed: {eligible} eligible bid(s) of the {k} needed; "
                "the job was cancelled and its escrow refunded in full"
            )
    if status == JobStatus.OPEN and time.time() >= int(info["bid_deadline"]):
        bids = len(market.job_bids(job_id))
        if bids < k:
            return (
                f"bidding closed with {bids} bid(s) of the {k} needed: closing the auction "
                f"refunds the escrow in full (ailedger job cancel {job_id})"
            )
    return None


def close_when_ready(
    market: ComputeMarketClient, job_id: int, k: int, wait_s: float, collect_s: float = 0.0
) -> tuple[JobStatus, list[str]]:
    """Close the auction once k bids are in and ``collect_s`` seconds have passed (more
    bids, a cheaper pick; 0: start as soon as possible), or when the window ended; returns
    the status and the assigned providers. Leaves the job open if neither happens within
    ``wait_s``."""
    started = time.monotonic()
    give_up = started + wait_s
    while time.monotonic() < give_up:
        record = market.job(job_id)
        assert record is not None
        if record.status != JobStatus.OPEN:
            break
        collected = time.monotonic() - started >= collect_s
        enough = collected and len(market.job_bids(job_id)) >= k
        if enough or time.time() >= record.bid_deadline + 0.2:
            # Another party may have closed it first, or a bidder fell below the stake.
            with contextlib.suppress(AiledgerError):
                market.close_auction(job_id)
            continue
        time.sleep(0.02)
    record = market.job(job_id)
    assert record is not None
    return record.status, [a["provider"] for a in market.assignments(job_id)]


def status(session: Session, job_id: int) -> dict[str, Any]:
    market = session.compute_market
    info = market.info(job_id)
    if info is None:
        raise ConfigError(f"no job {job_id} on chain; check the id (ailedger job list)")
    files = JobFiles(session.home.path)
    slots = []
    for a in market.assignments(job_id):
        slots.append(
            {
                "provider": a["provider"],
                "price_per_hour": int(a["price_per_hour"]),
                "committed": bytes(a["commitment"]) != bytes(32),
                "revealed": bool(a["revealed"]),
                "output_hash": "0x" + bytes(a["output_hash"]).hex() if a["revealed"] else None,
                "seconds": int(a["seconds_used"]),
                "paid": int(a["paid"]),
                "output_received": files.output_path(job_id, a["provider"]).exists(),
            }
        )
    return {
        "job_id": job_id,
        "status": JobStatus(int(info["status"])).name.lower(),
        "requester": info["requester"],
        "bundle_hash": "0x" + bytes(info["bundle_hash"]).hex(),
        "redundancy": int(info["redundancy"]),
        "escrow": int(info["escrow"]),
        "deadline": int(info["deadline"]),
        "bids": len(market.job_bids(job_id)),
        "assignments": slots,
        "result_hash": "0x" + bytes(info["result_hash"]).hex()
        if int(info["status"]) == JobStatus.COMPLETED
        else None,
        "log_batches": sum(1 for _ in files.log_batches(job_id)),
        "auction": auction_outcome(market, job_id),
    }


def own_status(session: Session, job_id: int) -> dict[str, Any]:
    """:func:`status` of one of this home's jobs (see :func:`own_job`)."""
    own_job(session, job_id)
    return status(session, job_id)


@dataclass(frozen=True)
class LogPage:
    """Log lines after the first ``after`` (``lines``: (provider, line)), where the next
    page starts, and whether more can come (the job is still bidding or running)."""

    lines: list[tuple[str, str]]
    next: int
    running: bool


MAX_LOG_PAGE = 5_000


def log_page(session: Session, job_id: int, after: int = 0) -> LogPage:
    """The job's log lines from line ``after`` on (at most ``MAX_LOG_PAGE``), for a
    reader that polls: it asks again from ``next`` while ``running``. Lines are counted
    in the order :func:`logs` yields them (provider, then batch)."""
    info = own_job(session, job_id)
    running = JobStatus(int(info["status"])).running
    lines = [
        (provider, line) for provider, text in logs(session, job_id) for line in text.splitlines()
    ]
    page = lines[after : after + MAX_LOG_PAGE]
    return LogPage(page, after + len(page), running or after + len(page) < len(lines))


def logs(session: Session, job_id: int) -> Iterator[tuple[str, str]]:
    """(provider, text) of every log batch received so far, decrypted and authenticated."""
    key = session.encryption_key()
    keys: dict[str, bytes | None] = {}
    for provider, seq, sealed in JobFiles(session.home.path).log_batches(job_id):
        if provider not in keys:
            keys[provider] = session.key_registry.key_of(provider)
        public = keys[provider]
        if public is None:
            continue
        yield (
            provider,
            open_log_batch(
                sealed,
                requester_key=key,
                provider_public=public,
                chain_id=session.chain.chain_id,
                job_id=job_id,
                provider=provider,
                seq=seq,
            ),
        )


def expected_result(market: ComputeMarketClient, job_id: int) -> tuple[bytes, list[str]]:
    """The output hash the chain vouches for, and the providers who revealed it."""
    info = market.info(job_id)
    if info is None:
        raise ConfigError(f"no job {job_id} on chain")
    state = JobStatus(int(info["status"]))
    revealed = [a for a in market.assignments(job_id) if a["revealed"]]
    if state == JobStatus.COMPLETED:
        expected = bytes(info["result_hash"])
    elif state == JobStatus.REVIEW and revealed:
        expected = bytes(revealed[0]["output_hash"])
    else:
        raise JobStateError(
            f"job {job_id} is {state.name.lower()}: no result is settled or under review yet "
            "(see ailedger job status)"
        )
    providers = [a["provider"] for a in revealed if bytes(a["output_hash"]) == expected]
    return expected, providers


def fetch_result(session: Session, job_id: int, dest: Path) -> tuple[bytes, str]:
    """Decrypt the output that matches the chain to ``dest``; returns (hash, provider)."""
    market = session.compute_market
    expected, providers = expected_result(market, job_id)
    files = JobFiles(session.home.path)
    for provider in providers:
        upload = files.output_path(job_id, provider)
        public = session.key_registry.key_of(provider)
        if not upload.exists() or public is None:
            continue
        open_output(
            upload,
            dest,
            requester=session.address,
            requester_key=session.encryption_key(),
            provider_public=public,
            chain_id=session.chain.chain_id,
            job_id=job_id,
            expected_hash=expected,
        )
        return expected, provider
    raise JobStateError(
        f"job {job_id}: no provider that revealed 0x{expected.hex()} has uploaded its output "
        "to your node yet (is `ailedger node start` running?)"
    )


def result_archive(session: Session, job_id: int, workdir: Path) -> tuple[Path, bytes, str]:
    """:func:`fetch_result` of one of this home's jobs, packed as ``workdir/result.tar.gz``
    for a download; returns (archive, hash, provider). The caller removes ``workdir``."""
    import tarfile

    own_job(session, job_id)
    out = workdir / "output"
    digest, provider = fetch_result(session, job_id, out)
    archive = workdir / "result.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(out, arcname=f"job-{job_id}")
    return archive, digest, provider


def accept(session: Session, job_id: int) -> TxResult:
    """Accept a k = 1 result under review: its provider is paid now."""
    own_job(session, job_id)
    return session.compute_market.accept(job_id)


def cancel(session: Session, job_id: int) -> tuple[str, str]:
    """Cancel (open or running: refund of the unused part) or expire (deadline passed);
    returns (what was done, tx hash)."""
    market = session.compute_market
    info = own_job(session, job_id)
    state = JobStatus(int(info["status"]))
    if time.time() >= int(info["deadline"]) and state.running:
        return "expired", market.expire(job_id).tx_hash
    if state.running:
        return "cancelled", market.cancel(job_id).tx_hash
    raise JobStateError(f"job {job_id} is {state.name.lower()}; only open or running jobs cancel")


def dispute(session: Session, job_id: int) -> tuple[int, str]:
    """Dispute a k = 1 result under review: approve and post the bond (the job's max
    price x max hours); another provider re-executes the job and the loser pays.
    Returns (bond, tx hash)."""
    market = session.compute_market
    info = own_job(session, job_id)
    state = JobStatus(int(info["status"]))
    if state != JobStatus.REVIEW:
        raise JobStateError(
            f"job {job_id} is {state.name.lower()}; only a single-provider result under "
            "review can be disputed"
        )
    bond = market.dispute_bond(info)
    session.token.approve(market.address, bond)
    return bond, market.dispute(job_id).tx_hash
