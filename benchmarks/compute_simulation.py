"""A compute-market simulation against the real contracts: many providers, many jobs at once.

Goal (issue): 100 providers and 1,000 jobs in a simulation against the real contracts; every
job assigned or refunded, tokens conserved. ``contracts/Token.vy``, ``contracts/DataMarket.vy``,
``contracts/ComputePolicy.vy`` and ``contracts/ComputeMarket.vy`` are deployed in titanoboa
(the EVM version ailedger compiles for) and driven by an event queue over simulated time
(``boa.env.time_travel``), about ``--in-flight`` jobs at once:

* providers register with random stakes and post random offers (cpu cores, RAM, GPU memory,
  price; about 10% unconfined); about 5% cheat (commit a wrong output hash, half the time one
  shared with the other cheaters of the job; they bid on many jobs, cheaply, and top their
  stake up after slashes), about 3% never deliver; other providers under the minimum stake
  sometimes top it up;
* each job has random resources, redundancy k in 1..4, price cap, hour cap, deadline, minimum
  reputation and confinement requirement (no datasets); a random subset of providers bids at
  random prices <= the cap during the bid window (refusals are expected and counted by
  reason); about 30% of requesters close the auction early, as soon as k eligible bids are in;
* some requesters cancel before the auction closes, some cancel the running job (metered pay
  to the providers), a few auctions are never closed (the job expires); winners commit and
  reveal, then ``settle`` (k >= 2), ``accept`` / ``dispute`` / ``finalize`` (k = 1) or
  ``expire`` end the job;
* a tie at ``settle`` before the deadline (a cheater among k = 2 or k = 4 assignees, say)
  starts a tie-break: the job's first-round bidders (and a few others) bid again, the
  cheapest eligible one that is not assigned yet (a cheater or a no-show too) commits and
  reveals, and ``settle`` (or ``expire``) counts every revealed result;
* a k = 1 dispute posts a bond and goes through the same tie-break auction: the
  re-execution's hash decides who pays (the provider's slash or the requester's bond);
* pay is by the second: ``min(claimed, commit time - assignment time, max hours)``;
* at the end every provider withdraws its whole stake.

A plain-Python model predicts every call's outcome (refusal reason or success), the auction's
winners and assignment times, every job's status and escrow, and every account's token
balance, stake and reputation counters; any difference fails the run. Checked before the
withdrawals: ``escrowed() == 0`` and ComputeProviders' balance == ``total_staked()`` == the
model's stakes. Checked at the end: every job terminal (as the model says); token supply
conserved over all holders; balances == the model's; the market's balance == ``escrowed()``
and ComputeProviders' == ``total_staked()``, both 0; counters and ``reputation()`` equal
the model's and the counted pays/slashes. The reference figure is the fraction of jobs that
ended assigned-and-settled or refunded; the last line is ``jobs_assigned_or_refunded: x``
(must be 1.000; the exit status is non-zero on any failure).
"""

from __future__ import annotations

import argparse
import heapq
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import boa
from boa.contracts.vyper.vyper_contract import VyperContract
from eth_utils import keccak

from ailedger.chain.compiler import EVM_VERSION, source_path

UNIT = 10**18
SUPPLY = 100_000_000 * UNIT
MIN_STAKE = 100 * UNIT
BID_WINDOW = 600
REVEAL_WINDOW = 3600
DISPUTE_WINDOW = 86400
SLASH_BPS = 2000
HOUR = 3600
MAX_BIDS = 32
MAX_UINT = 2**256 - 1

(
    NONE,
    OPEN,
    ASSIGNED,
    REVIEW,
    COMPLETED,
    DISPUTED,
    REJECTED,
    CANCELLED,
    EXPIRED,
    TIEBREAK,
) = range(10)
NAMES = {
    OPEN: "OPEN",
    ASSIGNED: "ASSIGNED",
    REVIEW: "REVIEW",
    COMPLETED: "COMPLETED",
    DISPUTED: "DISPUTED",
    REJECTED: "REJECTED",
    CANCELLED: "CANCELLED",
    EXPIRED: "EXPIRED",
    TIEBREAK: "TIEBREAK",
}
TERMINAL = {COMPLETED, DISPUTED, REJECTED, CANCELLED, EXPIRED}


class _QuietContract(VyperContract):
    """boa renders a contract's whole storage into every revert (``repr``, a debugging aid
    that takes ~0.1 s per revert here and grows with the number of jobs); the expected
    refusals of this simulation would then measure that renderer, not the EVM."""

    def __repr__(self) -> str:
        return f"<{self.contract_name} at {self.address}>"


def revert_reasons(exc: Exception) -> list[str]:
    """The revert strings in a boa error, innermost call first (without formatting it)."""
    trace = getattr(exc, "stack_trace", None)
    if trace is None:
        return [str(exc)]
    return [f.pretty_vm_reason for f in trace if hasattr(f, "vm_error")]


# ---------------------------------------------------------------- contract-version seams
# The places that change with a ComputeMarket revision (constructor args, post_job's
# trailing args, the escrow formula): keep them here and small.


def deploy(supply: int) -> tuple[VyperContract, VyperContract, VyperContract]:
    """Deploy Token, DataMarket, ComputePolicy, ComputeProviders and ComputeMarket from the
    sources ailedger compiles, and bind the providers contract to the market; returns the
    token, the market and the providers contract."""
    args = {"evm_version": EVM_VERSION}

    def load(name: str) -> Any:
        return boa.load_partial(str(source_path(name)), compiler_args=args)

    token = load("Token").deploy(supply)
    data = load("DataMarket").deploy(token.address)
    policy = load("ComputePolicy").deploy(data.address)
    providers = load("ComputeProviders").deploy(token.address, MIN_STAKE, SLASH_BPS)
    market = load("ComputeMarket").deploy(
        token.address,
        data.address,
        policy.address,
        providers.address,
        BID_WINDOW,
        REVEAL_WINDOW,
        DISPUTE_WINDOW,
    )
    providers.bind_market(market.address)
    for contract in (token, market, providers):
        contract.__class__ = _QuietContract
    return token, market, providers


def post_job(market: VyperContract, job: Job) -> int:
    """Post ``job`` (the caller pranks the requester); returns the job id. No datasets."""
    job_id: int = market.post_job(
        job.bundle,
        job.cpu,
        job.ram,
        job.gpu_mem,
        job.max_price,
        job.max_hours,
        job.deadline,
        job.k,
        job.min_rep,
        job.confined,
        [],
        [],
        0,
    )
    return job_id


def reserve_for(max_price: int, max_hours: int, k: int) -> int:
    """The tie-break reserve post_job escrows on top of k shares (k >= 2)."""
    return max_price * max_hours if k >= 2 else 0


def escrow_for(max_price: int, max_hours: int, k: int) -> int:
    """What post_job escrows."""
    return max_price * max_hours * k + reserve_for(max_price, max_hours, k)


# ---------------------------------------------------------------- model


@dataclass(eq=False)  # compared by identity
class Prov:
    addr: Any
    kind: str  # "honest", "cheat" or "noshow"
    stake: int
    cpu: int
    ram: int
    gpu_mem: int
    price: int
    confined: bool
    active: int = 0
    completed: int = 0
    failed: int = 0
    slashed: int = 0

    def rep(self) -> int:
        return self.completed - self.failed - 2 * self.slashed


@dataclass(eq=False)
class Slot:
    prov: Prov
    price: int
    assigned_at: int
    output: bytes = b""
    salt: bytes = b""
    committed: bool = False
    revealed: bool = False
    hours: int = 0  # claimed at the reveal (sent in seconds)
    committed_at: int = 0


@dataclass
class Job:
    requester: Any
    bundle: bytes
    cpu: int
    ram: int
    gpu_mem: int
    max_price: int
    max_hours: int
    deadline: int
    k: int
    min_rep: int
    confined: bool
    # "run", "cancel" (before the auction closes), "stop" (cancel the running job) or
    # "abandon" (nobody closes the auction)
    plan: str
    close_early: bool  # the requester closes as soon as enough eligible bids are in
    id: int = 0
    status: int = OPEN
    escrow: int = 0
    bid_end: int = 0
    round: int = 1  # 1: first auction and run; 2: tie-break
    bids: list[tuple[Prov, int]] = field(default_factory=list)
    first_bidders: list[Prov] = field(default_factory=list)
    bid_round: dict[Any, int] = field(default_factory=dict)  # the contract's _bid_round
    early_close_sent: bool = False  # an early close is scheduled for this round
    slots: list[Slot] = field(default_factory=list)
    pending_commits: int = 0
    pending_reveals: int = 0
    commits: int = 0
    reveals: int = 0
    reveal_end: int = 0  # the contract's reveal_deadline field
    review_end: int = 0
    assigned: bool = False
    failed_auction: bool = False
    closed_early: bool = False
    tiebreak: bool = False  # a tie-break was started
    tb_end_sent: bool = False
    outcome: str = ""  # how a tie-break or a running cancel ended (for the summary)
    metered: int = 0  # paid for time on a running cancel


class Mismatch(Exception):
    pass


class Sim:
    def __init__(self, args: argparse.Namespace) -> None:
        self.rng = random.Random(args.seed)
        self.n_jobs = args.jobs
        self.in_flight_target = args.in_flight
        self.owner = boa.env.eoa
        self.token, self.market, self.providers = deploy(SUPPLY)
        self.m = self.market.address
        self.r = self.providers.address  # holds the stakes
        self.bal: Counter[Any] = Counter({self.owner: SUPPLY})
        self.tx = 0
        self.reverts: Counter[str] = Counter()
        self.paid_events = 0
        self.slash_events: Counter[str] = Counter()
        self.jobs: list[Job] = []
        self.queue: list[tuple[int, int, Any, tuple[Any, ...]]] = []
        self.seq = 0
        self.posted = 0
        self.scheduled = 0  # posts scheduled (a job ending schedules the next one)
        self.finished = 0
        self.requesters = [boa.env.generate_address(f"req{i}") for i in range(args.requesters)]
        for r in self.requesters:
            self._fund(r, 1_000_000 * UNIT)
        self.provs: list[Prov] = []
        n = args.providers
        kinds = ["cheat"] * max(1, round(n * 0.05)) + ["noshow"] * max(1, round(n * 0.03))
        kinds += ["honest"] * (n - len(kinds))
        self.rng.shuffle(kinds)
        for i, kind in enumerate(kinds):
            self._register(i, kind)
        self.cheaters = [p for p in self.provs if p.kind == "cheat"]

    # ------------------------------------------------------------ plumbing

    def now(self) -> int:
        return int(boa.env.evm.patch.timestamp)

    def _move(self, src: Any, dst: Any, amount: int) -> None:
        self.bal[src] -= amount
        self.bal[dst] += amount

    def call(self, who: Any, reason: str | None, fn: Any, *args: Any) -> Any:
        """Send one transaction; ``reason`` is the model's predicted revert (None: success)."""
        self.tx += 1
        with boa.env.prank(who):
            try:
                result = fn(*args)
            except Exception as exc:  # boa raises BoaError with the revert reason inside
                got = revert_reasons(exc)
                if reason is None or reason not in got:
                    raise Mismatch(f"{fn}{args[:1]}: expected {reason!r}, got {got}") from exc
                self.reverts[reason] += 1
                return None
        if reason is not None:
            raise Mismatch(f"{fn}{args[:1]}: expected revert {reason!r}, but it succeeded")
        return result

    def at(self, when: int, action: Any, *args: Any) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (when, self.seq, action, args))

    def _fund(self, who: Any, amount: int) -> None:
        self.call(self.owner, None, self.token.transfer, who, amount)
        self._move(self.owner, who, amount)
        self.call(who, None, self.token.approve, self.m, MAX_UINT)
        self.call(who, None, self.token.approve, self.r, MAX_UINT)

    def _register(self, i: int, kind: str) -> None:
        rng = self.rng
        addr = boa.env.generate_address(f"prov{i}")
        self._fund(addr, 20_000 * UNIT)
        gpu_mem = rng.choice([0, 0, 16384, 24576, 40960, 81920])
        p = Prov(
            addr=addr,
            kind=kind,
            stake=MIN_STAKE + rng.randrange(0, 10) * 50 * UNIT,
            cpu=rng.choice([4, 8, 16, 32, 64]),
            ram=rng.choice([16, 32, 64, 128, 256, 512]) * 1024,
            gpu_mem=gpu_mem,
            price=rng.randint(1, 40) * UNIT // 10,
            confined=rng.random() >= 0.1,
        )
        self.call(addr, None, self.providers.register_provider, p.stake)
        self._move(addr, self.r, p.stake)
        gpu = "" if gpu_mem == 0 else "GPU"
        self.call(
            addr, None, self.providers.post_offer, p.cpu, p.ram, gpu, p.gpu_mem, p.price, p.confined
        )
        self.provs.append(p)

    def _slash(self, job: Job, p: Prov, reason: str) -> int:
        amount = p.stake * SLASH_BPS // 10_000
        p.stake -= amount
        self._move(self.r, self.m, amount)  # to the market, which passes it on
        if reason == "no-result":
            p.failed += 1
        else:
            p.slashed += 1
        self.slash_events[reason] += 1
        return amount

    def _pay(self, job: Job, s: Slot) -> int:
        # By the second, never for more time than passed before the commitment.
        seconds = min(s.hours * HOUR, s.committed_at - s.assigned_at, job.max_hours * HOUR)
        amount = seconds * s.price // HOUR
        s.prov.completed += 1
        self.paid_events += 1
        self._move(self.m, s.prov.addr, amount)
        return amount

    def _end(self, job: Job, status: int, to_requester: int) -> None:
        for s in job.slots:
            s.prov.active -= 1
        job.status = status
        job.escrow = 0
        self._move(self.m, job.requester, to_requester)
        self.finished += 1
        if self.scheduled < self.n_jobs:
            self.scheduled += 1
            self.at(self.now() + self.rng.randrange(0, 600), self.post)

    def check_status(self, job: Job) -> None:
        info = self.market.job_info(job.id)
        if (info.status, info.escrow) != (job.status, job.escrow):
            raise Mismatch(
                f"job {job.id}: status/escrow {info.status}/{info.escrow},"
                f" model {job.status}/{job.escrow}"
            )

    # ------------------------------------------------------------ model helpers

    def _reveal_deadline(self, job: Job) -> int:
        """The contract's _reveal_deadline: in a tie-break, the tie-break provider's own
        window (0 until it commits)."""
        if job.status == TIEBREAK or job.commits == job.k:
            return job.reveal_end
        return job.deadline + REVEAL_WINDOW

    def _tb_revealed(self, job: Job) -> bool:
        return len(job.slots) > job.k and job.slots[job.k].revealed

    def _tb_over(self, job: Job) -> bool:
        if self._tb_revealed(job):
            return True
        if job.reveal_end:
            return self.now() >= job.reveal_end
        return self.now() >= job.deadline

    def _running(self, job: Job, s: Slot) -> bool:
        """May ``s`` commit/reveal now: the job runs, or ``s`` is the tie-break slot."""
        return job.status == ASSIGNED or (job.status == TIEBREAK and s in job.slots[job.k :])

    def _eligible(self, job: Job) -> list[tuple[int, int, int, Prov]]:
        """This round's bids from providers still staked >= MIN_STAKE, best first."""
        return sorted(
            (price, -p.rep(), n, p) for n, (p, price) in enumerate(job.bids) if p.stake >= MIN_STAKE
        )

    def _wanted(self, job: Job) -> int:
        return job.k if not job.slots else 1

    def _schedule_bids(self, job: Job, bidders: list[Prov]) -> None:
        rng, now = self.rng, self.now()
        for p in bidders:
            # Cheaters undercut: a wrong answer costs them nothing to compute.
            top = 3 if p.kind == "cheat" else job.max_price // (UNIT // 10)
            price = rng.randint(1, top) * UNIT // 10
            self.at(now + rng.randrange(0, BID_WINDOW), self.bid, job, p, price)

    # ------------------------------------------------------------ job lifecycle

    def post(self) -> None:
        rng, now = self.rng, self.now()
        self.posted += 1
        k = rng.choices([1, 2, 3, 4], weights=[5, 3, 2, 2])[0]
        plan = rng.choices(["run", "cancel", "stop", "abandon"], weights=[86, 5, 7, 2])[0]
        job = Job(
            requester=rng.choice(self.requesters),
            bundle=keccak(b"bundle" + self.posted.to_bytes(8, "big")),
            cpu=rng.choice([1, 2, 4, 8, 16]),
            ram=rng.choice([1, 4, 16, 32, 64]) * 1024,
            gpu_mem=rng.choice([0, 0, 0, 8192, 16384, 40960]),
            max_price=rng.randint(5, 40) * UNIT // 10,
            max_hours=rng.randint(1, 24),
            deadline=now + BID_WINDOW + rng.randint(2 * HOUR, 48 * HOUR),
            k=k,
            min_rep=rng.choice([0, 0, -5, -1000, -1000, 1]),
            confined=rng.random() < 0.7,
            plan=plan,
            close_early=plan in ("run", "stop") and rng.random() < 0.3,
        )
        job.escrow = escrow_for(job.max_price, job.max_hours, k)
        job.id = self.call(job.requester, None, post_job, self.market, job)
        if job.id != len(self.jobs) + 1:
            raise Mismatch(f"post_job returned id {job.id}, expected {len(self.jobs) + 1}")
        self.jobs.append(job)
        job.bid_end = now + BID_WINDOW
        info = self.market.job_info(job.id)
        if (info.escrow, info.bid_deadline) != (job.escrow, job.bid_end):
            raise Mismatch(f"job {job.id}: escrow {info.escrow}, model {job.escrow}")
        self._move(job.requester, self.m, job.escrow)
        # Occasionally a provider below the minimum stake tops it up; cheaters always do.
        low = [p for p in self.provs if p.stake < MIN_STAKE]
        topup = [p for p in low if p.kind == "cheat"]
        if low and rng.random() < 0.2:
            topup.append(rng.choice(low))
        for p in dict.fromkeys(topup):
            self.call(p.addr, None, self.providers.add_stake, MIN_STAKE)
            p.stake += MIN_STAKE
            self._move(p.addr, self.r, MIN_STAKE)
        # Bidders: a random subset (sometimes a crowd, past MAX_BIDS), at random times.
        # Cheaters bid on many jobs (cheaply, see _schedule_bids).
        crowd = 45 if rng.random() < 0.03 else rng.randint(0, 16)
        bidders = rng.sample(self.provs, min(crowd, len(self.provs)))
        bidders += [p for p in self.cheaters if p not in bidders and rng.random() < 0.4]
        self._schedule_bids(job, bidders)
        if job.plan == "cancel":
            self.at(now + rng.randrange(0, BID_WINDOW + 300), self.cancel, job)
        elif job.plan == "abandon":
            self.at(job.deadline + rng.randrange(0, HOUR), self.expire, job)
        else:
            self.at(job.bid_end + rng.randrange(0, 900), self.close, job, 1, self.owner)
            if job.close_early and rng.random() < 0.1:
                # Someone other than the requester tries to close early: refused.
                self.at(now + rng.randrange(0, BID_WINDOW), self.close, job, 1, self.owner)

    def bid(self, job: Job, p: Prov, price: int) -> None:
        tb = job.status == TIEBREAK
        rnd = 2 if tb else 1
        reason = None
        if not (job.status == OPEN or (tb and len(job.slots) == job.k)):
            reason = "bid: job not open"
        elif self.now() >= job.bid_end:
            reason = "bid: bidding closed"
        elif job.bid_round.get(p.addr, 0) >= rnd:
            reason = "bid: already bid"  # assigned providers may not bid in the tie-break
        # Price is always under the cap here; then ComputeProviders' checks.
        elif p.stake < MIN_STAKE:
            reason = "bid: stake below minimum"
        elif not (p.cpu >= job.cpu and p.ram >= job.ram and p.gpu_mem >= job.gpu_mem):
            reason = "bid: offer lacks resources"
        elif job.confined and not p.confined:
            reason = "bid: machine not confined"
        elif p.rep() < job.min_rep:
            reason = "bid: reputation too low"
        elif len(job.bids) >= MAX_BIDS:
            reason = "bid: too many bids"
        self.call(p.addr, reason, self.market.bid, job.id, price)
        if reason is not None:
            return
        job.bids.append((p, price))
        job.bid_round[p.addr] = rnd
        if (
            job.close_early
            and not job.early_close_sent
            and len(self._eligible(job)) >= self._wanted(job)
        ):
            job.early_close_sent = True
            self.at(self.now() + self.rng.randrange(0, 120), self.close, job, job.round, None)

    def cancel(self, job: Job) -> None:
        """The requester cancels: OPEN (full refund), or running before any (tie-break)
        result is revealed (metered pay)."""
        reason = None
        if job.status != OPEN:
            if job.status not in (ASSIGNED, TIEBREAK, REVIEW):
                reason = "cancel: job has ended"
            elif job.status == TIEBREAK and job.k == 1:
                reason = "cancel: job under dispute"
            elif job.status == TIEBREAK:
                if self._tb_revealed(job):
                    reason = "cancel: a result was revealed"
            elif job.reveals:
                reason = "cancel: a result was revealed"
        self.call(job.requester, reason, self.market.cancel_job, job.id)
        if reason is not None:
            return
        now, paid = self.now(), 0
        for s in job.slots:
            seconds = min(now - s.assigned_at, job.max_hours * HOUR)
            amount = seconds * s.price // HOUR
            self._move(self.m, s.prov.addr, amount)
            paid += amount
        if job.slots:
            job.outcome = "cancelled in tie-break" if job.status == TIEBREAK else "stopped"
            job.metered = paid
        self._end(job, CANCELLED, job.escrow - paid)
        self.check_status(job)

    def close(self, job: Job, rnd: int, who: Any) -> None:
        """close_auction by ``who`` (None: the requester) for auction round ``rnd``."""
        if rnd != job.round:
            return  # scheduled for an auction round that is over
        rng, now = self.rng, self.now()
        who = job.requester if who is None else who
        base = len(job.slots)
        wanted = self._wanted(job)
        early = now < job.bid_end
        cands = self._eligible(job)
        reason = None
        if not (job.status == OPEN or (job.status == TIEBREAK and base == job.k)):
            reason = "close: job not open"
        elif early and who != job.requester:
            reason = "close: bidding still open"
        elif now >= job.deadline:
            reason = "close: deadline passed (expire it)"
        elif early and len(cands) < wanted:
            reason = "close: too few eligible bids"
        self.call(who, reason, self.market.close_auction, job.id)
        if reason is not None:
            if job.status == TIEBREAK and reason.startswith("close: deadline"):
                self._end_tiebreak_later(job)
            return
        job.closed_early = job.closed_early or early
        if len(cands) < wanted:
            if base:
                self._settle_all(job)  # nobody can break the tie: DISPUTED
            else:
                job.failed_auction = True
                self._end(job, CANCELLED, job.escrow)
                self.check_status(job)
            return
        for price, _, _, p in cands[:wanted]:
            job.slots.append(Slot(prov=p, price=price, assigned_at=now))
            job.bid_round[p.addr] = 2
            p.active += 1
        chain = [
            (a.provider, a.price_per_hour, a.assigned_at)
            for a in self.market.job_assignments(job.id)
        ]
        if chain != [(s.prov.addr, s.price, s.assigned_at) for s in job.slots]:
            raise Mismatch(f"job {job.id}: assignments {chain}, model {job.slots}")
        if base:
            # The tie-break provider, paid from the reserve: the escrow stays.
            self.check_status(job)
            self._start(job, job.slots[base], now)
            if job.slots[base].prov.kind == "noshow":
                self._end_tiebreak_later(job)
            return
        needed = sum(s.price for s in job.slots) * job.max_hours
        needed += reserve_for(job.max_price, job.max_hours, job.k)
        self._move(self.m, job.requester, job.escrow - needed)
        job.escrow = needed
        job.status = ASSIGNED
        job.assigned = True
        self.check_status(job)
        for s in job.slots:
            self._start(job, s, now)
        if job.pending_commits == 0:
            self.at(job.deadline + rng.randrange(0, HOUR), self.expire, job)
        if job.plan == "stop":
            self.at(now + rng.randrange(60, 12 * HOUR), self.cancel, job)

    def _start(self, job: Job, s: Slot, now: int) -> None:
        """An assigned provider starts the job: it commits later (unless it never delivers)."""
        rng = self.rng
        if s.prov.kind == "noshow":
            return
        if s.prov.kind == "honest":
            s.output = keccak(b"output" + job.bundle)
        elif rng.random() < 0.5:
            s.output = keccak(b"wrong" + job.bundle)  # the cheaters' shared wrong answer
        else:
            s.output = keccak(rng.randbytes(32))
        s.salt = rng.randbytes(32)
        s.hours = rng.randint(1, job.max_hours + 2)  # sometimes above the cap
        if job.status == ASSIGNED:
            job.pending_commits += 1
        self.at(rng.randrange(now, job.deadline), self.commit, job, s)

    def commit(self, job: Job, s: Slot) -> None:
        reason = None
        if not self._running(job, s):
            reason = "commit: job not running"
        elif self.now() >= job.deadline:
            reason = "commit: deadline passed"
        self.call(s.prov.addr, reason, self.market.commit_result, job.id, keccak(s.output + s.salt))
        if reason is not None:
            return
        s.committed = True
        job.commits += 1
        now = self.now()
        s.committed_at = now
        if job.status == TIEBREAK:
            # The tie-break provider's reveal opens at its commitment.
            job.reveal_end = now + REVEAL_WINDOW
            self.at(now + self.rng.randrange(0, REVEAL_WINDOW // 2), self.reveal, job, s)
            return
        job.pending_commits -= 1
        if job.pending_commits:
            return
        # Every provider that will commit has: reveals open now if all k did, else at the
        # deadline; either way they last REVEAL_WINDOW.
        start = now if job.commits == job.k else job.deadline
        job.reveal_end = start + REVEAL_WINDOW
        for slot in job.slots:
            if slot.committed:
                job.pending_reveals += 1
                self.at(start + self.rng.randrange(0, REVEAL_WINDOW // 2), self.reveal, job, slot)

    def reveal(self, job: Job, s: Slot) -> None:
        tb = job.status == TIEBREAK
        reason = None
        if not self._running(job, s):
            reason = "reveal: job not running"
        elif not (tb or job.commits == job.k or self.now() >= job.deadline):
            reason = "reveal: commit phase still open"
        elif self.now() >= self._reveal_deadline(job):
            reason = "reveal: reveal window closed"
        args = (job.id, s.output, s.salt, s.hours * HOUR)
        self.call(s.prov.addr, reason, self.market.reveal_result, *args)
        if reason is not None:
            return
        s.revealed = True
        job.reveals += 1
        rng, now = self.rng, self.now()
        if tb:
            self.at(now + rng.randrange(0, 600), self.settle, job)
            return
        job.pending_reveals -= 1
        if job.k == 1:
            job.status = REVIEW
            job.review_end = now + DISPUTE_WINDOW
            good = s.output == keccak(b"output" + job.bundle)
            if good and rng.random() < 0.5:
                self.at(now + rng.randrange(0, HOUR), self.accept, job)
            elif not good and rng.random() < 0.9:
                self.at(now + rng.randrange(0, HOUR), self.dispute, job)
            else:  # silence accepts
                self.at(job.review_end + rng.randrange(0, HOUR), self.finalize, job)
        elif job.pending_reveals == 0:
            when = now if job.reveals == job.k else job.reveal_end
            self.at(when + rng.randrange(0, 600), self.settle, job)

    def _complete_single(self, job: Job) -> None:
        amount = self._pay(job, job.slots[0])
        self._end(job, COMPLETED, job.escrow - amount)
        self.check_status(job)

    def accept(self, job: Job) -> None:
        self.call(job.requester, None, self.market.accept, job.id)
        self._complete_single(job)

    def finalize(self, job: Job) -> None:
        self.call(self.owner, None, self.market.finalize, job.id)
        self._complete_single(job)

    def dispute(self, job: Job) -> None:
        """The requester challenges a k = 1 result with a bond: another provider re-executes
        it through the tie-break machinery, and the re-execution decides."""
        self.call(job.requester, None, self.market.dispute, job.id)
        bond = job.max_price * job.max_hours
        self._move(job.requester, self.m, bond)
        job.escrow += bond
        now = self.now()
        job.deadline = max(job.deadline, now + BID_WINDOW + job.max_hours * HOUR)
        self._start_tiebreak(job, now)

    def _settle_dispute(self, job: Job) -> None:
        """The contract's _settle_dispute: the loser pays."""
        first = job.slots[0]
        check = job.slots[1] if len(job.slots) > 1 else None
        bond = job.max_price * job.max_hours
        check_pay = comp = provider_pay = 0
        evidence = check is not None and check.revealed
        if check is not None and evidence:
            check_pay = self._pay(job, check)
        elif check is not None:
            comp += self._slash(job, check.prov, "no-result")
        right = evidence and check is not None and check.output != first.output
        if right:
            comp += self._slash(job, first.prov, "rejected")
        else:
            provider_pay = self._pay(job, first)
            if evidence:  # a false dispute: the bond, less the re-execution, to the provider
                self._move(self.m, first.prov.addr, bond - check_pay)
                provider_pay += bond - check_pay
        job.outcome = (
            "dispute upheld" if right else "dispute refuted" if evidence else "dispute unproven"
        )
        self._end(
            job, REJECTED if right else COMPLETED, job.escrow - check_pay - provider_pay + comp
        )
        self.check_status(job)

    def settle(self, job: Job) -> None:
        reason = None
        if job.status == TIEBREAK:
            if not self._tb_over(job):
                reason = "settle: tie-break still running"
        elif job.status != ASSIGNED:
            reason = "settle: job not running"
        elif job.k < 2:
            reason = "settle: single-provider job"
        elif job.reveals == 0:
            reason = "settle: nothing revealed"
        elif not (job.reveals == job.k or self.now() >= self._reveal_deadline(job)):
            reason = "settle: reveals still open"
        self.call(self.owner, reason, self.market.settle, job.id)
        if reason is None:
            self._settle_all(job)

    def _settle_all(self, job: Job) -> None:
        """The contract's _settle_all, after a successful settle / close / expire."""
        if job.k == 1:
            self._settle_dispute(job)
            return
        votes = Counter(s.output for s in job.slots if s.revealed)
        best, n = votes.most_common(1)[0] if votes else (b"", 0)
        majority = n * 2 > job.reveals
        now = self.now()
        if not majority and job.status == ASSIGNED and now < job.deadline:
            self._start_tiebreak(job, now)
            return
        paid = comp = 0
        for s in job.slots:
            if not s.revealed:
                comp += self._slash(job, s.prov, "no-result")
            elif majority and s.output == best:
                paid += self._pay(job, s)
            elif majority:
                comp += self._slash(job, s.prov, "wrong-result")
        if job.tiebreak:
            if majority:
                job.outcome = "resolved"
            elif len(job.slots) == job.k:
                job.outcome = "no tie-break provider"
            elif not job.slots[job.k].revealed:
                job.outcome = "tie-break provider revealed nothing"
            else:
                job.outcome = "still tied"
        self._end(job, COMPLETED if majority else DISPUTED, job.escrow - paid + comp)
        self.check_status(job)

    def _start_tiebreak(self, job: Job, now: int) -> None:
        """A first-round tie before the deadline: one more provider is auctioned."""
        if not any(type(e).__name__ == "TieBreakStarted" for e in self.market.get_logs()):
            raise Mismatch(f"job {job.id}: no TieBreakStarted event")
        rng = self.rng
        job.status = TIEBREAK
        job.tiebreak = True
        job.round = 2
        job.bid_end = now + BID_WINDOW
        job.reveal_end = 0
        job.first_bidders = [p for p, _ in job.bids]
        job.bids = []
        job.early_close_sent = False
        self.check_status(job)
        if self.market.job_bids(job.id):
            raise Mismatch(f"job {job.id}: bids not cleared at the tie-break")
        # The first round's bidders try again (the assigned ones are refused), plus a few
        # providers that did not bid before.
        again = [p for p in job.first_bidders if rng.random() < 0.8]
        others = [p for p in self.provs if p not in job.first_bidders]
        again += rng.sample(others, min(rng.randint(0, 3), len(others)))
        self._schedule_bids(job, again)
        self.at(job.bid_end + rng.randrange(0, 900), self.close, job, 2, self.owner)

    def _end_tiebreak_later(self, job: Job) -> None:
        """No tie-break result can come: settle or expire it after the deadline."""
        if not job.tb_end_sent:
            job.tb_end_sent = True
            action = self.rng.choice([self.settle, self.expire])
            self.at(job.deadline + self.rng.randrange(0, HOUR), action, job)

    def expire(self, job: Job) -> None:
        reason = None
        if job.status not in (OPEN, ASSIGNED, TIEBREAK):
            reason = "expire: job not running"
        elif self.now() < job.deadline:
            reason = "expire: deadline not reached"
        elif job.status != OPEN:
            if job.status == TIEBREAK:
                revealed, committed = self._tb_revealed(job), job.reveal_end != 0
            else:
                revealed, committed = job.reveals != 0, job.commits != 0
            if revealed:
                reason = "expire: a result was revealed (settle it)"
            elif committed and self.now() < self._reveal_deadline(job):
                reason = "expire: reveal window open"
        self.call(self.owner, reason, self.market.expire, job.id)
        if reason is not None:
            return
        if job.status == TIEBREAK:
            self._settle_all(job)  # DISPUTED, as settle would end it
            return
        comp = sum(self._slash(job, s.prov, "no-result") for s in job.slots)
        self._end(job, EXPIRED, job.escrow + comp)
        self.check_status(job)

    # ------------------------------------------------------------ driver

    def run(self) -> None:
        start = self.now()
        for _ in range(min(self.in_flight_target, self.n_jobs)):
            self.scheduled += 1
            self.at(start + self.rng.randrange(0, 2 * HOUR), self.post)
        while self.queue:
            when, _, action, args = heapq.heappop(self.queue)
            if when > self.now():
                boa.env.time_travel(seconds=when - self.now())
            action(*args)

    def withdraw_all(self) -> None:
        """Every stake is free now: everyone withdraws everything."""
        for p in self.provs:
            if p.active:
                raise Mismatch(f"provider {p.addr} still has {p.active} active jobs")
            if p.stake:
                self.call(p.addr, None, self.providers.withdraw_stake, p.stake)
                self._move(self.r, p.addr, p.stake)
                p.stake = 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 providers, 100 jobs")
    parser.add_argument("--providers", type=int, help="default 100 (quick: 10)")
    parser.add_argument("--jobs", type=int, help="default 1000 (quick: 100)")
    parser.add_argument("--requesters", type=int, default=20)
    parser.add_argument("--in-flight", type=int, default=50, help="jobs open at once")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    args.providers = args.providers or (10 if args.quick else 100)
    args.jobs = args.jobs or (100 if args.quick else 1000)

    t0 = time.monotonic()
    sim = Sim(args)
    setup_tx, setup_s = sim.tx, time.monotonic() - t0
    sim_start = sim.now()
    failures: list[str] = []
    market, token, providers = sim.market, sim.token, sim.providers
    t1 = time.monotonic()
    try:
        sim.run()
        # ---- before the withdrawals: no escrow left, the market holds exactly the stakes
        held = token.balanceOf(sim.r)
        staked = sum(p.stake for p in sim.provs)
        if market.escrowed() != 0 or token.balanceOf(sim.m) != 0:
            failures.append(f"escrowed() is {market.escrowed()} after every job ended")
        if not held == providers.total_staked() == staked:
            failures.append(
                f"before withdrawals: providers' balance {held}, total_staked"
                f" {providers.total_staked()}, model stakes {staked}"
            )
        sim.withdraw_all()
    except Mismatch as exc:
        failures.append(f"model mismatch: {exc}")
    elapsed = time.monotonic() - t1
    run_tx = sim.tx - setup_tx

    # ---- invariants read from the chain
    jobs = sim.jobs
    chain_status = [market.job_info(j).status for j in range(1, market.job_count() + 1)]
    statuses = Counter(chain_status)
    if market.job_count() != args.jobs or sim.posted != args.jobs:
        failures.append(f"{market.job_count()} jobs on chain, {args.jobs} wanted")
    ended = sum(statuses[s] for s in TERMINAL)
    if ended != market.job_count():
        failures.append(f"non-terminal jobs: { {NAMES[s]: c for s, c in statuses.items()} }")
    if chain_status != [j.status for j in jobs]:
        failures.append("job statuses on chain differ from the model")
    holders = [sim.owner, *sim.requesters, *(p.addr for p in sim.provs), sim.m, sim.r]
    balances = {h: token.balanceOf(h) for h in holders}
    if sum(balances.values()) != SUPPLY or token.totalSupply() != SUPPLY:
        failures.append(f"tokens not conserved: {sum(balances.values())} != {SUPPLY}")
    if balances != {h: sim.bal[h] for h in holders}:
        bad = [h for h in holders if balances[h] != sim.bal[h]]
        failures.append(f"{len(bad)} balances differ from the model, e.g. {bad[0]}")
    if balances[sim.m] != market.escrowed() or balances[sim.r] != providers.total_staked():
        failures.append("market balance != escrowed, or providers' != total_staked")
    if market.escrowed() != 0 or providers.total_staked() != 0 or balances[sim.m] != 0:
        failures.append(
            f"left in the market: escrowed {market.escrowed()}, staked {providers.total_staked()}"
        )
    completed = failed = slashed = 0
    for p in sim.provs:
        info = providers.provider_info(p.addr)
        got = (info.stake, info.active_jobs, info.completed, info.failed, info.slashed)
        want = (p.stake, p.active, p.completed, p.failed, p.slashed)
        if got != want:
            failures.append(f"provider {p.addr}: chain {got}, model {want}")
        if providers.reputation(p.addr) != p.rep():
            failures.append(f"provider {p.addr}: reputation {providers.reputation(p.addr)}")
        completed, failed, slashed = (
            completed + info.completed,
            failed + info.failed,
            slashed + info.slashed,
        )
    se = sim.slash_events
    if (completed, failed, slashed) != (
        sim.paid_events,
        se["no-result"],
        se["wrong-result"] + se["rejected"],
    ):
        failures.append("reputation counters do not match the counted pays/slashes")

    assigned = sum(j.assigned and j.status in (COMPLETED, REJECTED, DISPUTED) for j in jobs)
    refunded = sum(j.status in (CANCELLED, EXPIRED) for j in jobs)
    fraction = (assigned + refunded) / max(1, len(jobs))

    kinds = Counter(p.kind for p in sim.provs)
    tb = Counter(j.outcome for j in jobs if j.tiebreak)
    stopped = [j for j in jobs if j.outcome == "stopped"]
    print(
        f"providers: {len(sim.provs)} ({kinds['honest']} honest, {kinds['cheat']} cheating,"
        f" {kinds['noshow']} never delivering); requesters: {len(sim.requesters)};"
        f" jobs: {len(jobs)}, up to {args.in_flight} in flight"
    )
    print(f"simulated time: {(sim.now() - sim_start) / 86400:.1f} days")
    print("final status: " + ", ".join(f"{NAMES[s]} {c}" for s, c in sorted(statuses.items())))
    print(
        f"  of which: auction failed {sum(j.failed_auction for j in jobs)},"
        f" cancelled while open {sum(j.plan == 'cancel' for j in jobs)},"
        f" cancelled while running {len(stopped) + tb['cancelled in tie-break']},"
        f" expired after assignment {sum(j.assigned and j.status == EXPIRED for j in jobs)},"
        f" closed early by the requester {sum(j.closed_early for j in jobs)},"
        f" k=1/2/3/4: {'/'.join(str(sum(j.k == k for j in jobs)) for k in (1, 2, 3, 4))}"
    )
    print(
        f"tie-breaks: {sum(tb.values())} started; resolved (COMPLETED) {tb['resolved']},"
        f" still tied {tb['still tied']}, no tie-break provider {tb['no tie-break provider']},"
        f" tie-break provider revealed nothing {tb['tie-break provider revealed nothing']},"
        f" cancelled {tb['cancelled in tie-break']}"
    )
    metered = sum(j.metered for j in jobs)
    print(
        f"running cancels: {len(stopped) + tb['cancelled in tie-break']}, metered pay"
        f" {metered / UNIT:.1f} tokens; stop attempts refused (result revealed / job ended):"
        f" {sim.reverts['cancel: a result was revealed']}"
        f" / {sim.reverts['cancel: job has ended']}"
    )
    print(
        f"pays {sim.paid_events}; slashes: wrong result {se['wrong-result']},"
        f" rejected {se['rejected']}, no result {se['no-result']}"
    )
    print("expected refusals: " + ", ".join(f"{r} {c}" for r, c in sim.reverts.most_common()))
    print(f"setup: {setup_tx} tx in {setup_s:.1f} s")
    print(
        f"simulation: {run_tx} tx ({sum(sim.reverts.values())} reverted as predicted)"
        f" in {elapsed:.1f} s = {run_tx / elapsed:.0f} tx/s"
    )
    print(f"assigned and settled {assigned}, refunded {refunded}, of {len(jobs)}")
    for f in failures:
        print(f"FAIL: {f}")
    if not failures:
        print(
            "invariants: all jobs terminal, supply conserved, escrowed 0, market balance ="
            " total staked before withdrawals, balances/stakes/counters/reputation = model"
        )
    print(f"jobs_assigned_or_refunded: {fraction:.3f}")
    return 1 if failures or fraction != 1.0 else 0


if __name__ == "__main__":
    sys.exit(main())
