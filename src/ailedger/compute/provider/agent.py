"""The provider agent (``ailedger provider start``): rent this machine out, job by job.

One loop follows the market's events a few times a second and keeps a list of chores:

* **offer**: at start, stake (once), register the encryption key, post an offer with
  the machine's cores, memory and GPU, the asking price and whether jobs can be confined.
* **bid**: on ``JobPosted`` for a job that fits the offer and the free capacity now
  (cores, memory, a free GPU, a job slot), read its ``job.toml`` from the requester's
  node (the runtime is not on chain), and bid the asking price if it is under the cap.
  Compute-to-data jobs are bid on only over datasets this node owns and may host.
  Bids are weighed by a small pool of threads, each within the job's bid window: a
  requester's node that answers slowly (or never) costs its own job the bid, not the
  jobs posted beside it, and a job whose window has passed (an agent catching up after
  a restart) is skipped without a request or a transaction.
* **close**: after the bid window, close auctions it bid in that nobody closed yet.
* **run**: on ``ProviderAssigned`` to this account, a :class:`~.runner.Runner` thread
  fetches, runs, uploads and commits; several run at once within the capacity.
* **reveal / settle / finalize**: reveal once every assignee committed, then settle a
  k >= 2 job when all revealed, or finalize a k = 1 job when its dispute window ends,
  which is when the provider gets paid.
* **expire**: every job it bid on or ran that gets stuck past its deadline (nobody
  revealed) is expired (:mod:`ailedger.compute.expiry`), once a second at most: the
  requester is refunded without being there, and stake locks end.

Progress per assignment is kept in ``provider/jobs/<id>.json`` (salt before commit), and
the last block read in ``provider/agent.json``, so a restarted agent reveals what it
committed and does not lose jobs assigned while it was down. Transactions take the
account's nonce one at a time (:mod:`ailedger.chain.transactions`) and wait for their
receipts side by side.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ailedger._durable import atomic_write_json
from ailedger.chain.contracts.compute_market import JobStatus, new_salt
from ailedger.compute.expiry import ExpiryWatch, chain_time
from ailedger.compute.jobs import JobSpecError, parse_job
from ailedger.compute.provider.c2d import DataInputs
from ailedger.compute.provider.runner import AssignmentState, JobFetchError, Runner, scratch_dir
from ailedger.errors import AiledgerError
from ailedger.peer import wire
from ailedger.peer.client import SignedRequestError, send_signed
from ailedger.units import format_amount

if TYPE_CHECKING:
    from ailedger.chain.contracts import JobInfo
    from ailedger.compute.provider.machine import MachineInfo
    from ailedger.compute.provider.sandbox import Sandbox
    from ailedger.session import Session

log = logging.getLogger(__name__)

# How often the agent looks for stuck jobs to expire.
EXPIRY_EVERY_S = 1.0
# Jobs weighed for a bid at once; each waits at most the rest of its bid window (and at
# most SPEC_TIMEOUT_S) for the requester's node to hand over its job.toml.
BIDDERS = 4
SPEC_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class AgentSettings:
    price_per_hour: int
    stake: int
    max_jobs: int
    poll_seconds: float = 0.02
    work_dir: Path | None = None
    max_output_mb: int = 1024


@dataclass
class Capacity:
    cores: int
    ram_mb: int
    gpus: list[int]
    slots: int

    def fits(self, cores: int, ram_mb: int, gpu_mem_mb: int) -> bool:
        return (
            self.slots > 0
            and cores <= self.cores
            and ram_mb <= self.ram_mb
            and (gpu_mem_mb == 0 or bool(self.gpus))
        )

    def take(self, cores: int, ram_mb: int, gpu_mem_mb: int) -> int | None:
        self.slots -= 1
        self.cores -= cores
        self.ram_mb -= ram_mb
        return self.gpus.pop(0) if gpu_mem_mb else None

    def give(self, cores: int, ram_mb: int, gpu: int | None) -> None:
        self.slots += 1
        self.cores += cores
        self.ram_mb += ram_mb
        if gpu is not None:
            self.gpus.append(gpu)


class ProviderAgent:
    def __init__(
        self,
        session: Session,
        sandbox: Sandbox,
        machine: MachineInfo,
        settings: AgentSettings,
        say: Callable[[str], None] = print,
    ) -> None:
        self.session = session
        self.sandbox = sandbox
        self.machine = machine
        self.settings = settings
        self.say = say
        self.me = session.address
        self.market = session.compute_market
        self.layout = session.home.layout
        self.layout.provider_jobs.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # capacity, bids, runners
        self._bidders = ThreadPoolExecutor(BIDDERS, thread_name_prefix="bid")
        self.capacity = Capacity(
            machine.cpu_cores,
            machine.ram_mb,
            [g.index for g in machine.gpus],
            settings.max_jobs,
        )
        self._bids: dict[int, dict[str, Any]] = {}  # job id -> JobPosted args (+ reservation)
        self._runners: dict[int, Runner] = {}
        self._states: dict[int, AssignmentState] = {}
        self._urls: dict[str, str] = {}
        self._next_block = 0
        self.earned = 0
        self.expiry = ExpiryWatch(self.market)
        self._expiry_at = 0.0

    # ---------------------------------------------------------------- startup

    def prepare(self) -> list[str]:
        """Stake if new, register the encryption key, post (or refresh) the offer."""
        done = []
        token, market, providers = self.session.token, self.market, self.session.compute_providers
        if not providers.provider(self.me)["registered"]:
            token.approve(providers.address, self.settings.stake)
            providers.register_provider(self.settings.stake)
            done.append(f"registered as a provider, {format_amount(self.settings.stake)} staked")
        keys = self.session.key_registry
        if keys.key_of(self.me) != self.session.home.encryption_public_key:
            keys.register(self.session.home.encryption_public_key)
            done.append("registered encryption key")
        gpu = self.machine.gpus[0] if self.machine.gpus else None
        providers.post_offer(
            self.machine.cpu_cores,
            self.machine.ram_mb,
            gpu.name if gpu else "",
            gpu.memory_mb if gpu else 0,
            self.settings.price_per_hour,
            self.sandbox.mode is not None,
        )
        done.append(
            f"offer: {self.machine.cpu_cores} cores, {self.machine.ram_mb} MB"
            + (f", {gpu.name}" if gpu else "")
            + ("" if self.sandbox.mode else ", UNCONFINED (declared on chain)")
        )
        # The windows were chosen for this network at deploy; the operator sees them here.
        w = market.windows()
        done.append(
            f"market windows: bids {w.bid_s} s, reveal {w.reveal_s} s, dispute {w.dispute_s} s"
        )
        self._next_block = self._load_progress()
        self._resume()
        return done

    def _load_progress(self) -> int:
        try:
            return int(json.loads(self.layout.provider_progress.read_text())["next_block"])
        except (OSError, ValueError, KeyError):
            return int(self.session.chain.web3.eth.block_number) + 1

    def _save_progress(self) -> None:
        atomic_write_json(self.layout.provider_progress, {"next_block": self._next_block})

    def _resume(self) -> None:
        """Pick up assignments a previous run left unfinished."""
        for path in sorted(self.layout.provider_jobs.glob("*.json")):
            state = AssignmentState.load(path)
            if state.phase == "done":
                continue
            self._states[state.job_id] = state
            state.extra["held"] = False  # a fresh process: nothing is reserved yet
            if state.phase == "committing":  # stopped between keeping the salt and committing
                self._recommit(state)
            if state.phase == "assigned":
                with self._lock:
                    gpu_wanted = 1 if state.extra.get("gpu") is not None else 0
                    state.extra["gpu"] = self.capacity.take(
                        state.extra["cores"], state.extra["ram_mb"], gpu_wanted
                    )
                    state.extra["held"] = True
                self._start_runner(state.job_id)

    # ------------------------------------------------------------------- loop

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    self.step()
                except AiledgerError as exc:  # the chain or a peer is briefly away
                    log.warning("provider agent: %s", exc)
                    self.say(f"warning: {exc}")
                    stop.wait(1.0)
                stop.wait(self.settings.poll_seconds)
        finally:
            # Bids in flight end within their windows; none not yet started begins.
            self._bidders.shutdown(wait=True, cancel_futures=True)

    def step(self) -> None:
        head = int(self.session.chain.web3.eth.block_number)
        if head >= self._next_block:
            for name, args, _ in self.market.events(self._next_block, head):
                self._on_event(name, args)
            self._next_block = head + 1
            self._save_progress()
        self._chores()

    def _on_event(self, name: str, args: dict[str, Any]) -> None:
        job_id = int(args.get("job_id", 0))
        if name == "JobPosted":
            self._bidders.submit(self._weigh, self._consider, args)
        elif name == "TieBreakStarted":
            self._bidders.submit(
                self._weigh, self._consider_tiebreak, job_id, int(args["bid_deadline"])
            )
        elif name == "ProviderAssigned" and args["provider"].lower() == self.me.lower():
            self._assigned(job_id, int(args["price_per_hour"]))
        elif name in ("AuctionClosed", "AuctionFailed", "JobCancelled", "JobExpired"):
            self._drop_bid(job_id)
            runner = self._runners.get(job_id)
            if runner is not None and name in ("JobCancelled", "JobExpired"):
                runner.cancel.set()

    # ---------------------------------------------------------------- bidding

    def _weigh(self, consider: Callable[..., None], *args: Any) -> None:
        """Run one bid decision on a pool thread; what goes wrong is said, not lost."""
        try:
            consider(*args)
        except AiledgerError as exc:
            self.say(f"warning: weighing a bid failed: {exc}")
        except Exception:  # a bug must not end the pool's thread silently
            log.exception("provider agent: weighing a bid failed")

    def _consider(self, job: dict[str, Any]) -> None:
        job_id = int(job["job_id"])
        left = int(job["bid_deadline"]) - time.time()
        if left <= 0:
            self.say(f"job {job_id}: not bidding: its bid window closed {-left:.0f} s ago")
            return
        price = self.settings.price_per_hour
        cores, ram, gpu_mem = int(job["cpu_cores"]), int(job["ram_mb"]), int(job["gpu_mem_mb"])
        if job["requester"].lower() == self.me.lower() or price > int(job["max_price_per_hour"]):
            return
        if job["require_confined"] and self.sandbox.mode is None:
            return
        with self._lock:
            if not self.capacity.fits(cores, ram, gpu_mem):
                return
        datasets = [bytes(d) for d in job.get("datasets", [])]
        try:
            spec = parse_job(self._spec_text(job_id, job["requester"], min(left, SPEC_TIMEOUT_S)))
        except (JobFetchError, JobSpecError, SignedRequestError) as exc:
            self.say(f"job {job_id}: not bidding: {exc}")
            return
        if spec.runtime not in self.sandbox.runtimes:
            return
        if datasets and not self._hosts(datasets):
            return
        if datasets and not self._reads_left([int(g) for g in job.get("grant_ids", [])]):
            self.say(f"job {job_id}: not bidding: a grant has no read left")
            return
        with self._lock:
            if not self.capacity.fits(cores, ram, gpu_mem):
                return
            gpu = self.capacity.take(cores, ram, gpu_mem)
            self._bids[job_id] = {**job, "gpu": gpu, "datasets": datasets}
        try:
            self.market.bid(job_id, price)
            self.say(f"job {job_id}: bid {price} per hour")
            self.expiry.watch(job_id, int(job["deadline"]))
        except AiledgerError as exc:
            self.say(f"job {job_id}: bid refused: {exc}")
            self._drop_bid(job_id)

    def _consider_tiebreak(self, job_id: int, bid_deadline: int) -> None:
        """A k >= 2 job whose results tied, or a disputed k = 1 job: one more provider, not
        one of the first k, runs it again. Bid as for a new job, from the job's stored
        terms."""
        info = self.market.info(job_id)
        if info is None or any(
            a["provider"].lower() == self.me.lower() for a in self.market.assignments(job_id)
        ):
            return
        datasets, _ = self.market.job_datasets(job_id)
        self._consider(
            {**info, "job_id": job_id, "bid_deadline": bid_deadline, "datasets": datasets}
        )

    def _hosts(self, datasets: list[bytes]) -> bool:
        from ailedger.sharing.owner import owned_dataset

        return all(owned_dataset(self.session, d) is not None for d in datasets)

    def _reads_left(self, grants: list[int]) -> bool:
        """False if one of ``grants`` has used all its reads: no bid, so no provider is
        assigned and the requester is refunded rather than paying for a refusal. If the
        count cannot be had now, the run itself still checks before reading."""
        from ailedger.sharing.owner import OwnerNode

        try:
            with OwnerNode(self.session) as node:
                return all(node.reads_left(grant) != 0 for grant in grants)
        except AiledgerError as exc:
            self.say(f"cannot count the grants' reads now ({exc}); the run will check")
            return True

    def _drop_bid(self, job_id: int) -> None:
        with self._lock:
            bid = self._bids.pop(job_id, None)
            if bid is not None and job_id not in self._states:
                self.capacity.give(int(bid["cpu_cores"]), int(bid["ram_mb"]), bid["gpu"])

    def _node_url(self, requester: str) -> str:
        if requester not in self._urls:
            url = self.session.node_registry.url_of(requester)
            if url is None:
                raise JobFetchError(f"requester {requester} has no node URL on chain")
            self._urls[requester] = url
        return self._urls[requester]

    def _spec_text(self, job_id: int, requester: str, timeout: float) -> str:
        account, url = self.session.require_account(), self._node_url(requester)
        path = wire.path(wire.JOB_SPEC, job_id=job_id)
        return send_signed(account, url, requester, "GET", path, timeout=timeout).text

    # -------------------------------------------------------------- assignments

    def _assigned(self, job_id: int, price: int) -> None:
        with self._lock:
            bid = self._bids.pop(job_id, None)
        info = self.market.info(job_id)
        if info is None or job_id in self._states:
            return
        state = AssignmentState(
            job_id,
            str(info["requester"]),
            int(info["redundancy"]),
            int(info["deadline"]),
            price,
            extra={
                "gpu": bid["gpu"] if bid else None,
                "grants": [int(g) for g in bid.get("grant_ids", [])] if bid else [],
            },
        )
        if bid is None:  # assigned from an auction we did not see start (e.g. restarted)
            with self._lock:
                state.extra["gpu"] = self.capacity.take(
                    int(info["cpu_cores"]), int(info["ram_mb"]), int(info["gpu_mem_mb"])
                )
        state.extra.update(cores=int(info["cpu_cores"]), ram_mb=int(info["ram_mb"]), held=True)
        state.save(self.layout.provider_jobs)
        self._states[job_id] = state
        self.expiry.watch(job_id, state.deadline)
        self.say(f"job {job_id}: assigned at {format_amount(price)} per hour")
        self._start_runner(job_id, info)

    def _start_runner(self, job_id: int, info: JobInfo | None = None) -> None:
        state = self._states[job_id]
        info = info or self.market.info(job_id)
        if info is None or JobStatus(int(info["status"])).ended:
            self._release(state)
            self._finish(state, "job already ended")
            return
        datasets, purpose = self.market.job_datasets(job_id)
        inputs = None
        if datasets:
            inputs = DataInputs(
                self.session,
                job_id,
                state.requester,
                bytes(info["bundle_hash"]),
                [bytes(d) for d in datasets],
                purpose,
                state.extra.get("grants", []),
            )
        runner = Runner(
            self.session,
            self.sandbox,
            state,
            self._node_url(state.requester),
            bytes(info["bundle_hash"]),
            inputs,
            state.extra.get("gpu"),
            self.say,
            self.settings.max_output_mb,
        )
        self._runners[job_id] = runner
        threading.Thread(target=self._run_assignment, args=(runner,), daemon=True).start()

    def _run_assignment(self, runner: Runner) -> None:
        state = runner.state
        scratch = scratch_dir(self.settings.work_dir)
        try:
            digest, seconds = runner.run(scratch)
            salt = new_salt()
            state.output_hash, state.salt, state.seconds = digest.hex(), salt.hex(), seconds
            state.phase = "committing"
            state.save(self.layout.provider_jobs)  # the salt is on disk before the commitment
            self.market.commit_result(state.job_id, digest, salt)
            state.phase = "committed"
            state.save(self.layout.provider_jobs)
            self.say(f"job {state.job_id}: done ({state.reason}), committed 0x{digest.hex()[:16]}")
        except (AiledgerError, OSError) as exc:
            self.say(f"job {state.job_id}: failed: {exc}")
            self._finish(state, f"failed: {exc}")
        finally:
            import shutil

            shutil.rmtree(scratch, ignore_errors=True)
            self._runners.pop(state.job_id, None)
            self._release(state)

    def _recommit(self, state: AssignmentState) -> None:
        """Send the commitment a previous run kept on disk but may not have sent."""
        mine = [
            a
            for a in self.market.assignments(state.job_id)
            if a["provider"].lower() == self.me.lower()
        ]
        if not (mine and bytes(mine[0]["commitment"]) != bytes(32)):
            digest, salt = bytes.fromhex(state.output_hash), bytes.fromhex(state.salt)
            if not self._try(self.market.commit_result, state.job_id, digest, salt):
                return  # too late (deadline) or ended: the chores will see the outcome
        state.phase = "committed"
        state.save(self.layout.provider_jobs)

    def _release(self, state: AssignmentState) -> None:
        """Give back the cores, memory and GPU of a run that ended (once)."""
        if state.extra.get("held"):
            with self._lock:
                self.capacity.give(state.extra["cores"], state.extra["ram_mb"], state.extra["gpu"])
            state.extra["held"] = False
            state.save(self.layout.provider_jobs)

    def _finish(self, state: AssignmentState, why: str) -> None:
        state.phase, state.reason = "done", why
        state.save(self.layout.provider_jobs)
        self._states.pop(state.job_id, None)

    # ----------------------------------------------------------------- chores

    def _chores(self) -> None:
        now = time.time()
        if now >= self._expiry_at:  # chain reads only when something is due, once a second
            self._expiry_at = now + EXPIRY_EVERY_S
            if self.expiry.watched:
                for job_id in self.expiry.tick(chain_time(self.market)):
                    self.say(f"job {job_id}: past its deadline with no result: expired")
        for job_id, bid in list(self._bids.items()):
            if now >= int(bid["bid_deadline"]) + 0.2 and not bid.get("close_tried"):
                bid["close_tried"] = True
                self._try(self.market.close_auction, job_id)
        for state in list(self._states.values()):
            # A state whose runner is still at work belongs to that thread.
            if state.phase in ("committed", "revealed") and state.job_id not in self._runners:
                self._advance(state, now)

    def _advance(self, state: AssignmentState, now: float) -> None:
        info = self.market.info(state.job_id)
        if info is None:
            return
        status = JobStatus(int(info["status"]))
        if status.ended:
            self._settled(state, status)
            return
        assigned = len(self.market.assignments(state.job_id))
        if state.phase == "committed" and (
            int(info["commits"]) >= assigned or now >= int(info["deadline"])
        ):
            salt, digest = bytes.fromhex(state.salt), bytes.fromhex(state.output_hash)
            if self._try(self.market.reveal_result, state.job_id, digest, salt, state.seconds):
                state.phase = "revealed"
                state.save(self.layout.provider_jobs)
                self.say(f"job {state.job_id}: revealed")
        elif state.phase == "revealed":
            if status == JobStatus.REVIEW and now >= int(info["review_deadline"]):
                self._try(self.market.finalize, state.job_id)
            elif (
                # A k = 1 job in TIEBREAK is disputed: its re-execution settles it too.
                (status == JobStatus.TIEBREAK or state.redundancy >= 2)
                and status in (JobStatus.ASSIGNED, JobStatus.TIEBREAK)
                and (
                    int(info["reveals"]) >= assigned
                    or now >= self.market.reveal_deadline(state.job_id)
                )
            ):
                self._try(self.market.settle, state.job_id)

    def _settled(self, state: AssignmentState, status: JobStatus) -> None:
        paid = 0
        for a in self.market.assignments(state.job_id):
            if a["provider"].lower() == self.me.lower():
                paid = int(a["paid"])
        self.earned += paid
        self.say(f"job {state.job_id}: {status.name.lower()}, paid {paid}")
        self._finish(state, f"{status.name.lower()}, paid {paid}")

    def _try(self, fn: Callable[..., Any], *args: Any) -> bool:
        """Send a follow-up transaction another party may have sent first; False if it
        could not go through (the next round re-reads the chain and decides again)."""
        try:
            fn(*args)
            return True
        except AiledgerError as exc:
            log.info("provider agent: %s%s skipped: %s", getattr(fn, "__name__", fn), args, exc)
            return False
