# pragma version ~=0.4.3
"""
@title ailedger compute market
@notice Owners of idle GPUs/CPUs rent them out to requesters, who pay in the payment token.

        Providers stake tokens (`register_provider`, `add_stake`), advertise one machine
        (`post_offer`) and bid on jobs. An offer with `confined = False` declares on chain
        that the machine cannot sandbox jobs, so a requester (or a data owner, through the
        requester's job) can exclude it with `require_confined`.

        A job names a bundle (by hash), the resources it needs, a price cap per hour, an
        hour cap, a deadline and a redundancy k (1..5: how many independent providers run
        it). Posting escrows `max_price_per_hour * max_hours * k`.

        Job lifecycle:
            OPEN     -> CANCELLED (requester cancels before the auction closes: full refund;
                                   or the auction closes with fewer than k eligible bids)
            OPEN     -> EXPIRED   (deadline passed before anyone closed the auction)
            OPEN     -> ASSIGNED  (close_auction: the k cheapest eligible bids win)
            ASSIGNED -> REVIEW    (k = 1: the provider revealed; the dispute window runs)
            ASSIGNED -> COMPLETED (k >= 2: settle found a strict majority of revealed results)
            ASSIGNED -> DISPUTED  (k >= 2: settle found no majority, i.e. a tie)
            ASSIGNED -> EXPIRED   (nobody revealed a result and none can come any more)
            REVIEW   -> COMPLETED (requester accepts, or anyone finalizes after the window)
            REVIEW   -> REJECTED  (requester disputes within the window)

        Reverse auction: for `bid_window` seconds after posting, eligible providers bid a
        price per hour (<= the cap). Eligibility is checked at bid time: registered, stake
        >= min_stake, an offer with at least the job's cpu cores, RAM and GPU memory,
        reputation >= the job's minimum, confined if the job requires it. `close_auction`
        (anyone, after the window, before the deadline) picks the k cheapest bids among
        bidders still staked >= min_stake; ties go to the higher reputation
        (completed - failed - 2 * slashed), then to the earlier bid. Winners are paid their
        own bid (pay-as-bid), and the escrow above `sum(winning prices) * max_hours` is
        refunded at once. A winner's whole stake stays locked (no withdrawal) while it has
        any assignment that is not finished.

        Results, by commit-reveal: each winner commits keccak256(output_hash ++ salt)
        before the deadline. Reveals open when all k have committed (or at the deadline,
        for those that did) and stay open `reveal_window` seconds. Nobody can reveal
        before every commitment is in or the commit phase is over, so nobody can copy a
        revealed result into a late commitment.

        Settlement, k >= 2 (`settle`, anyone, once all revealed or the reveal window
        ended): if one output hash has a strict majority of the revealed results, its
        revealers are paid `min(hours_used, max_hours) * price` each; the others that
        revealed are slashed as wrong (`slashed` += 1). If no hash has a majority (a tie),
        the job is DISPUTED: nobody is paid, no revealer is slashed (the chain cannot tell
        who is right) and the escrow is refunded in full; the requester breaks the tie by
        posting the same bundle again, which picks fresh providers through a new auction.
        (A re-auction inside this job would need a new deadline and escrow top-up rules
        for little gain; reposting gives the same outcome with rules already tested.)

        Settlement, k = 1: the reveal starts a `dispute_window`. The requester may
        `accept` (the provider is paid at once) or `dispute` (the provider is slashed,
        `slashed` += 1, and the escrow refunded; a real deployment would put an arbiter
        here, this contract takes the requester's word and the provider's stake is the
        price of that word being wrong). Silence accepts: anyone may `finalize` after the
        window.

        Every assigned provider that reveals nothing by the end of the reveal phase is
        slashed and counted `failed`, on every path (settle, expire), whether or not it
        committed: the chain cannot tell a crashed machine from one withholding a result
        it does not like, and the locked stake is the bond for delivery. Slashing takes
        `slash_fraction_bps` / 10000 of the provider's stake at that moment, and the
        slashed tokens go to the job's requester as compensation for the lost time.

        `expire` (anyone) ends a job no result can settle any more (past its deadline,
        nothing revealed, reveal phase over): the requester gets the whole escrow back;
        nobody is paid for a stuck job.

        Events (each transition emits one; replaying them in order rebuilds every job,
        bid, assignment and provider, reputation counters included):
            ProviderRegistered, StakeAdded, StakeWithdrawn, OfferPosted,
            JobPosted, BidPlaced, JobCancelled, AuctionFailed, ProviderAssigned,
            AuctionClosed, ResultCommitted, ResultRevealed, ReviewStarted,
            ProviderPaid (completed += 1), ProviderSlashed (reason 1 or 2: slashed += 1;
            reason 3: failed += 1), JobCompleted, JobDisputed, JobRejected, JobExpired.
        An assignment's stake lock ends with its job's terminal event (JobCompleted,
        JobDisputed, JobRejected, JobExpired).
@dev Funds move only through the token fixed at construction. Every state-changing
     function is @nonreentrant (on Shanghai, a storage lock) and follows checks-effects-
     interactions: statuses, escrow and stakes change before any token call, so even a
     token that calls back cannot pay or refund twice. The token balance of this contract
     is at least `escrowed + total_staked`. Token calls must return True.
"""

from ethereum.ercs import IERC20

# ---------------------------------------------------------------- job status

STATUS_NONE: public(constant(uint8)) = 0
STATUS_OPEN: public(constant(uint8)) = 1
STATUS_ASSIGNED: public(constant(uint8)) = 2
STATUS_REVIEW: public(constant(uint8)) = 3
STATUS_COMPLETED: public(constant(uint8)) = 4
STATUS_DISPUTED: public(constant(uint8)) = 5
STATUS_REJECTED: public(constant(uint8)) = 6
STATUS_CANCELLED: public(constant(uint8)) = 7
STATUS_EXPIRED: public(constant(uint8)) = 8

# ---------------------------------------------------------------- slash reasons

SLASH_WRONG_RESULT: public(constant(uint8)) = 1  # minority result (k >= 2)
SLASH_REJECTED: public(constant(uint8)) = 2  # requester disputed (k = 1)
SLASH_NO_RESULT: public(constant(uint8)) = 3  # assigned, revealed nothing

MAX_REDUNDANCY: public(constant(uint256)) = 5
# Bids per job. Bounded so close_auction's cost is bounded (k passes over the bids).
MAX_BIDS: public(constant(uint256)) = 32
# Windows, deadlines and hour caps are bounded so timestamps and products stay far
# from overflow, and so a typo cannot lock funds for centuries.
MAX_WINDOW: public(constant(uint256)) = 365 * 86400
MAX_JOB_DURATION: public(constant(uint256)) = 5 * 365 * 86400
MAX_HOURS: public(constant(uint256)) = 5 * 365 * 24
BPS: constant(uint256) = 10_000


struct Provider:
    registered: bool
    stake: uint256
    # Jobs this provider is assigned to that have not reached a terminal state.
    active_jobs: uint256
    completed: uint256
    failed: uint256
    slashed: uint256


struct Offer:
    cpu_cores: uint256
    ram_mb: uint256
    gpu_model: String[64]
    gpu_mem_mb: uint256
    price_per_hour: uint256
    confined: bool
    posted: bool


struct Job:
    requester: address
    bundle_hash: bytes32
    cpu_cores: uint256
    ram_mb: uint256
    gpu_mem_mb: uint256
    max_price_per_hour: uint256
    max_hours: uint256
    deadline: uint256
    redundancy: uint256
    min_reputation: int256
    require_confined: bool
    status: uint8
    # Tokens held for this job now (falls at close_auction and to 0 at the end).
    escrow: uint256
    bid_deadline: uint256
    commits: uint256
    reveals: uint256
    # Set when the k-th commitment arrives; until then reveals end at deadline + window.
    reveal_deadline: uint256
    # k = 1 only: end of the dispute window.
    review_deadline: uint256
    # The settled output hash (COMPLETED only).
    result_hash: bytes32


struct Bid:
    provider: address
    price_per_hour: uint256


struct Assignment:
    provider: address
    price_per_hour: uint256
    commitment: bytes32
    output_hash: bytes32
    hours_used: uint256
    revealed: bool
    paid: uint256


event ProviderRegistered:
    provider: indexed(address)
    stake: uint256


event StakeAdded:
    provider: indexed(address)
    amount: uint256
    stake: uint256


event StakeWithdrawn:
    provider: indexed(address)
    amount: uint256
    stake: uint256


event OfferPosted:
    provider: indexed(address)
    cpu_cores: uint256
    ram_mb: uint256
    gpu_model: String[64]
    gpu_mem_mb: uint256
    price_per_hour: uint256
    confined: bool


event JobPosted:
    job_id: indexed(uint256)
    requester: indexed(address)
    bundle_hash: bytes32
    cpu_cores: uint256
    ram_mb: uint256
    gpu_mem_mb: uint256
    max_price_per_hour: uint256
    max_hours: uint256
    deadline: uint256
    redundancy: uint256
    min_reputation: int256
    require_confined: bool
    escrow: uint256
    bid_deadline: uint256


event BidPlaced:
    job_id: indexed(uint256)
    provider: indexed(address)
    price_per_hour: uint256
    bid_index: uint256


event JobCancelled:
    job_id: indexed(uint256)
    requester: indexed(address)
    refund: uint256


event AuctionFailed:
    job_id: indexed(uint256)
    requester: indexed(address)
    eligible_bids: uint256
    refund: uint256


event ProviderAssigned:
    job_id: indexed(uint256)
    provider: indexed(address)
    slot: uint256
    price_per_hour: uint256


event AuctionClosed:
    job_id: indexed(uint256)
    requester: indexed(address)
    escrow: uint256
    refund: uint256


event ResultCommitted:
    job_id: indexed(uint256)
    provider: indexed(address)
    commitment: bytes32
    # Non-zero when this commitment is the k-th: reveals are open until then.
    reveal_deadline: uint256


event ResultRevealed:
    job_id: indexed(uint256)
    provider: indexed(address)
    output_hash: bytes32
    hours_used: uint256


event ReviewStarted:
    job_id: indexed(uint256)
    provider: indexed(address)
    review_deadline: uint256


event ProviderPaid:
    job_id: indexed(uint256)
    provider: indexed(address)
    hours: uint256
    amount: uint256


event ProviderSlashed:
    job_id: indexed(uint256)
    provider: indexed(address)
    amount: uint256
    reason: uint8
    stake: uint256


event JobCompleted:
    job_id: indexed(uint256)
    requester: indexed(address)
    result_hash: bytes32
    paid: uint256
    refund: uint256
    compensation: uint256


event JobDisputed:
    job_id: indexed(uint256)
    requester: indexed(address)
    refund: uint256
    compensation: uint256


event JobRejected:
    job_id: indexed(uint256)
    requester: indexed(address)
    refund: uint256
    compensation: uint256


event JobExpired:
    job_id: indexed(uint256)
    requester: indexed(address)
    refund: uint256
    compensation: uint256


TOKEN: public(immutable(IERC20))
MIN_STAKE: public(immutable(uint256))
BID_WINDOW: public(immutable(uint256))
REVEAL_WINDOW: public(immutable(uint256))
DISPUTE_WINDOW: public(immutable(uint256))
SLASH_FRACTION_BPS: public(immutable(uint256))

_providers: HashMap[address, Provider]
_offers: HashMap[address, Offer]
_jobs: HashMap[uint256, Job]
_bids: HashMap[uint256, DynArray[Bid, MAX_BIDS]]
_has_bid: HashMap[uint256, HashMap[address, bool]]
_assignments: HashMap[uint256, DynArray[Assignment, MAX_REDUNDANCY]]
# slot + 1 of a provider in a job's assignments; 0 = not assigned.
_slot_of: HashMap[uint256, HashMap[address, uint256]]
# Number of jobs posted; ids run from 1.
job_count: public(uint256)
# Tokens held for jobs, and tokens staked by providers.
escrowed: public(uint256)
total_staked: public(uint256)


@deploy
def __init__(
    token: address,
    min_stake: uint256,
    bid_window: uint256,
    reveal_window: uint256,
    dispute_window: uint256,
    slash_fraction_bps: uint256,
):
    """
    @param min_stake Least stake (token units) a provider needs to bid; must be > 0.
    @param bid_window Seconds after posting during which bids are taken.
    @param reveal_window Seconds the reveal phase lasts.
    @param dispute_window Seconds a k = 1 requester has to dispute a revealed result.
    @param slash_fraction_bps Share of a provider's stake taken per slash, in 1/10000.
    """
    assert token.is_contract, "init: token is not a contract"
    assert min_stake != 0, "init: min stake is zero"
    assert bid_window != 0 and bid_window <= MAX_WINDOW, "init: bad bid window"
    assert reveal_window != 0 and reveal_window <= MAX_WINDOW, "init: bad reveal window"
    assert dispute_window != 0 and dispute_window <= MAX_WINDOW, "init: bad dispute window"
    assert slash_fraction_bps <= BPS, "init: slash fraction above 100%"
    TOKEN = IERC20(token)
    MIN_STAKE = min_stake
    BID_WINDOW = bid_window
    REVEAL_WINDOW = reveal_window
    DISPUTE_WINDOW = dispute_window
    SLASH_FRACTION_BPS = slash_fraction_bps


# ---------------------------------------------------------------- token helpers


@internal
def _pay(to: address, amount: uint256):
    # A zero amount makes no token call: some tokens reject zero transfers.
    if amount != 0:
        assert extcall TOKEN.transfer(to, amount), "token: transfer failed"


@internal
def _pull(src: address, amount: uint256):
    if amount != 0:
        assert extcall TOKEN.transferFrom(src, self, amount), "token: transferFrom failed"


@internal
@view
def _reputation(who: address) -> int256:
    p: Provider = self._providers[who]
    return convert(p.completed, int256) - convert(p.failed, int256) - 2 * convert(
        p.slashed, int256
    )


# ---------------------------------------------------------------- providers


@external
@nonreentrant
def register_provider(stake: uint256):
    """
    @notice Become a provider, staking `stake` tokens (at least MIN_STAKE; the caller
            must have approved this contract for them).
    """
    assert not self._providers[msg.sender].registered, "register: already registered"
    assert stake >= MIN_STAKE, "register: stake below minimum"
    self._providers[msg.sender].registered = True
    self._providers[msg.sender].stake = stake
    self.total_staked += stake
    log ProviderRegistered(provider=msg.sender, stake=stake)
    self._pull(msg.sender, stake)


@external
@nonreentrant
def add_stake(amount: uint256):
    """
    @notice Add to the caller's stake (e.g. to get back above MIN_STAKE after a slash).
    """
    assert self._providers[msg.sender].registered, "add_stake: not a provider"
    assert amount != 0, "add_stake: amount is zero"
    stake: uint256 = self._providers[msg.sender].stake + amount
    self._providers[msg.sender].stake = stake
    self.total_staked += amount
    log StakeAdded(provider=msg.sender, amount=amount, stake=stake)
    self._pull(msg.sender, amount)


@external
@nonreentrant
def withdraw_stake(amount: uint256):
    """
    @notice Take back `amount` of the caller's stake. Refused while the caller has any
            assignment that has not finished. Stake below MIN_STAKE only stops bidding.
    """
    p: Provider = self._providers[msg.sender]
    assert p.registered, "withdraw: not a provider"
    assert p.active_jobs == 0, "withdraw: stake locked by active jobs"
    assert amount != 0, "withdraw: amount is zero"
    assert amount <= p.stake, "withdraw: amount exceeds stake"
    self._providers[msg.sender].stake = p.stake - amount
    self.total_staked -= amount
    log StakeWithdrawn(provider=msg.sender, amount=amount, stake=p.stake - amount)
    self._pay(msg.sender, amount)


@external
@nonreentrant
def post_offer(
    cpu_cores: uint256,
    ram_mb: uint256,
    gpu_model: String[64],
    gpu_mem_mb: uint256,
    price_per_hour: uint256,
    confined: bool,
):
    """
    @notice Advertise (or replace) the caller's machine. `confined = False` declares the
            machine cannot sandbox jobs; jobs that require confinement will refuse it.
            `gpu_model` is empty and `gpu_mem_mb` 0 for a CPU-only machine. A new offer
            applies to bids made after it.
    """
    assert self._providers[msg.sender].registered, "offer: not a provider"
    assert cpu_cores != 0, "offer: no cpu cores"
    self._offers[msg.sender] = Offer(
        cpu_cores=cpu_cores,
        ram_mb=ram_mb,
        gpu_model=gpu_model,
        gpu_mem_mb=gpu_mem_mb,
        price_per_hour=price_per_hour,
        confined=confined,
        posted=True,
    )
    log OfferPosted(
        provider=msg.sender,
        cpu_cores=cpu_cores,
        ram_mb=ram_mb,
        gpu_model=gpu_model,
        gpu_mem_mb=gpu_mem_mb,
        price_per_hour=price_per_hour,
        confined=confined,
    )


# ---------------------------------------------------------------- jobs and the auction


@external
@nonreentrant
def post_job(
    bundle_hash: bytes32,
    cpu_cores: uint256,
    ram_mb: uint256,
    gpu_mem_mb: uint256,
    max_price_per_hour: uint256,
    max_hours: uint256,
    deadline: uint256,
    redundancy: uint256,
    min_reputation: int256,
    require_confined: bool,
) -> uint256:
    """
    @notice Post a job and escrow `max_price_per_hour * max_hours * redundancy` (the
            caller must have approved this contract for it).
    @param deadline Unix time by which results must be committed; after the bid window.
    @param redundancy How many independent providers run the job (1..5).
    @param min_reputation Least completed - failed - 2 * slashed a bidder may have.
    @return The job id.
    """
    assert bundle_hash != empty(bytes32), "post: bundle hash is zero"
    assert redundancy >= 1 and redundancy <= MAX_REDUNDANCY, "post: redundancy not in 1..5"
    assert max_price_per_hour != 0, "post: max price is zero"
    assert max_hours != 0 and max_hours <= MAX_HOURS, "post: bad max hours"
    bid_deadline: uint256 = block.timestamp + BID_WINDOW
    assert deadline > bid_deadline, "post: deadline before bidding ends"
    assert deadline <= block.timestamp + MAX_JOB_DURATION, "post: deadline too far"
    escrow: uint256 = max_price_per_hour * max_hours * redundancy

    job_id: uint256 = self.job_count + 1
    self.job_count = job_id
    self._jobs[job_id] = Job(
        requester=msg.sender,
        bundle_hash=bundle_hash,
        cpu_cores=cpu_cores,
        ram_mb=ram_mb,
        gpu_mem_mb=gpu_mem_mb,
        max_price_per_hour=max_price_per_hour,
        max_hours=max_hours,
        deadline=deadline,
        redundancy=redundancy,
        min_reputation=min_reputation,
        require_confined=require_confined,
        status=STATUS_OPEN,
        escrow=escrow,
        bid_deadline=bid_deadline,
        commits=0,
        reveals=0,
        reveal_deadline=0,
        review_deadline=0,
        result_hash=empty(bytes32),
    )
    self.escrowed += escrow
    log JobPosted(
        job_id=job_id,
        requester=msg.sender,
        bundle_hash=bundle_hash,
        cpu_cores=cpu_cores,
        ram_mb=ram_mb,
        gpu_mem_mb=gpu_mem_mb,
        max_price_per_hour=max_price_per_hour,
        max_hours=max_hours,
        deadline=deadline,
        redundancy=redundancy,
        min_reputation=min_reputation,
        require_confined=require_confined,
        escrow=escrow,
        bid_deadline=bid_deadline,
    )
    self._pull(msg.sender, escrow)
    return job_id


@external
@nonreentrant
def bid(job_id: uint256, price_per_hour: uint256):
    """
    @notice Offer to run a job at `price_per_hour` (at most the job's cap), during its
            bid window. One bid per provider per job; it cannot be changed.
    """
    job: Job = self._jobs[job_id]
    assert job.status != STATUS_NONE, "bid: unknown job"
    assert job.status == STATUS_OPEN, "bid: job not open"
    assert block.timestamp < job.bid_deadline, "bid: bidding closed"
    assert msg.sender != job.requester, "bid: requester cannot bid"
    p: Provider = self._providers[msg.sender]
    assert p.registered, "bid: not a provider"
    assert p.stake >= MIN_STAKE, "bid: stake below minimum"
    assert not self._has_bid[job_id][msg.sender], "bid: already bid"
    offer: Offer = self._offers[msg.sender]
    assert offer.posted, "bid: no offer"
    assert (
        offer.cpu_cores >= job.cpu_cores
        and offer.ram_mb >= job.ram_mb
        and offer.gpu_mem_mb >= job.gpu_mem_mb
    ), "bid: offer lacks resources"
    assert offer.confined or not job.require_confined, "bid: machine not confined"
    assert price_per_hour <= job.max_price_per_hour, "bid: price above maximum"
    assert self._reputation(msg.sender) >= job.min_reputation, "bid: reputation too low"
    n: uint256 = len(self._bids[job_id])
    assert n < MAX_BIDS, "bid: too many bids"
    self._has_bid[job_id][msg.sender] = True
    self._bids[job_id].append(Bid(provider=msg.sender, price_per_hour=price_per_hour))
    log BidPlaced(job_id=job_id, provider=msg.sender, price_per_hour=price_per_hour, bid_index=n)


@external
@nonreentrant
def cancel_job(job_id: uint256):
    """
    @notice Withdraw a job whose auction has not closed (requester only): full refund.
    """
    job: Job = self._jobs[job_id]
    assert job.status != STATUS_NONE, "cancel: unknown job"
    assert job.requester == msg.sender, "cancel: caller is not the requester"
    assert job.status == STATUS_OPEN, "cancel: auction already closed"
    self._jobs[job_id].status = STATUS_CANCELLED
    self._jobs[job_id].escrow = 0
    self.escrowed -= job.escrow
    log JobCancelled(job_id=job_id, requester=msg.sender, refund=job.escrow)
    self._pay(msg.sender, job.escrow)


@external
@nonreentrant
def close_auction(job_id: uint256):
    """
    @notice End a job's auction (anyone, after its bid window, before its deadline). The
            k cheapest bids from providers still staked at least MIN_STAKE win (ties:
            higher reputation, then earlier bid). Fewer than k such bids: the job is
            cancelled and refunded. Otherwise the escrow above what the winners' prices
            can cost is refunded at once.
    """
    job: Job = self._jobs[job_id]
    assert job.status != STATUS_NONE, "close: unknown job"
    assert job.status == STATUS_OPEN, "close: job not open"
    assert block.timestamp >= job.bid_deadline, "close: bidding still open"
    assert block.timestamp < job.deadline, "close: deadline passed (expire it)"

    bids: DynArray[Bid, MAX_BIDS] = self._bids[job_id]
    available: DynArray[bool, MAX_BIDS] = []
    reps: DynArray[int256, MAX_BIDS] = []
    eligible: uint256 = 0
    for b: Bid in bids:
        ok: bool = self._providers[b.provider].stake >= MIN_STAKE
        available.append(ok)
        reps.append(self._reputation(b.provider))
        if ok:
            eligible += 1

    if eligible < job.redundancy:
        self._jobs[job_id].status = STATUS_CANCELLED
        self._jobs[job_id].escrow = 0
        self.escrowed -= job.escrow
        log AuctionFailed(
            job_id=job_id, requester=job.requester, eligible_bids=eligible, refund=job.escrow
        )
        self._pay(job.requester, job.escrow)
        return

    n: uint256 = len(bids)
    needed: uint256 = 0
    for slot: uint256 in range(MAX_REDUNDANCY):
        if slot >= job.redundancy:
            break
        best: uint256 = n
        for i: uint256 in range(MAX_BIDS):
            if i >= n:
                break
            if not available[i]:
                continue
            # Scanning in bid order and taking only strictly better bids keeps the
            # earlier bid on a full tie.
            if (
                best == n
                or bids[i].price_per_hour < bids[best].price_per_hour
                or (bids[i].price_per_hour == bids[best].price_per_hour and reps[i] > reps[best])
            ):
                best = i
        available[best] = False
        winner: Bid = bids[best]
        self._assignments[job_id].append(
            Assignment(
                provider=winner.provider,
                price_per_hour=winner.price_per_hour,
                commitment=empty(bytes32),
                output_hash=empty(bytes32),
                hours_used=0,
                revealed=False,
                paid=0,
            )
        )
        self._slot_of[job_id][winner.provider] = slot + 1
        self._providers[winner.provider].active_jobs += 1
        needed += winner.price_per_hour * job.max_hours
        log ProviderAssigned(
            job_id=job_id, provider=winner.provider, slot=slot, price_per_hour=winner.price_per_hour
        )

    refund: uint256 = job.escrow - needed
    self._jobs[job_id].status = STATUS_ASSIGNED
    self._jobs[job_id].escrow = needed
    self.escrowed -= refund
    log AuctionClosed(job_id=job_id, requester=job.requester, escrow=needed, refund=refund)
    self._pay(job.requester, refund)


# ---------------------------------------------------------------- results


@internal
@view
def _reveal_deadline(job: Job) -> uint256:
    if job.commits == job.redundancy:
        return job.reveal_deadline
    return job.deadline + REVEAL_WINDOW


@external
@nonreentrant
def commit_result(job_id: uint256, commitment: bytes32):
    """
    @notice Commit to a result (assigned providers, before the deadline):
            commitment = keccak256(output_hash ++ salt), both 32 bytes.
    """
    job: Job = self._jobs[job_id]
    assert job.status != STATUS_NONE, "commit: unknown job"
    slot: uint256 = self._slot_of[job_id][msg.sender]
    assert slot != 0, "commit: caller not assigned"
    assert job.status == STATUS_ASSIGNED, "commit: job not running"
    assert block.timestamp < job.deadline, "commit: deadline passed"
    assert commitment != empty(bytes32), "commit: commitment is zero"
    assert self._assignments[job_id][slot - 1].commitment == empty(bytes32), "commit: already committed"
    self._assignments[job_id][slot - 1].commitment = commitment
    commits: uint256 = job.commits + 1
    self._jobs[job_id].commits = commits
    reveal_deadline: uint256 = 0
    if commits == job.redundancy:
        reveal_deadline = block.timestamp + REVEAL_WINDOW
        self._jobs[job_id].reveal_deadline = reveal_deadline
    log ResultCommitted(
        job_id=job_id, provider=msg.sender, commitment=commitment, reveal_deadline=reveal_deadline
    )


@external
@nonreentrant
def reveal_result(job_id: uint256, output_hash: bytes32, salt: bytes32, hours_used: uint256):
    """
    @notice Reveal a committed result. Open once every assigned provider has committed,
            or from the deadline on, for `REVEAL_WINDOW` seconds. `hours_used` is the
            metered time claimed; payment is capped at the job's `max_hours`. With k = 1
            the reveal starts the dispute window.
    """
    job: Job = self._jobs[job_id]
    assert job.status != STATUS_NONE, "reveal: unknown job"
    slot: uint256 = self._slot_of[job_id][msg.sender]
    assert slot != 0, "reveal: caller not assigned"
    assert job.status == STATUS_ASSIGNED, "reveal: job not running"
    a: Assignment = self._assignments[job_id][slot - 1]
    assert a.commitment != empty(bytes32), "reveal: nothing committed"
    assert not a.revealed, "reveal: already revealed"
    assert (
        job.commits == job.redundancy or block.timestamp >= job.deadline
    ), "reveal: commit phase still open"
    assert block.timestamp < self._reveal_deadline(job), "reveal: reveal window closed"
    assert keccak256(concat(output_hash, salt)) == a.commitment, "reveal: does not match commitment"
    self._assignments[job_id][slot - 1].revealed = True
    self._assignments[job_id][slot - 1].output_hash = output_hash
    self._assignments[job_id][slot - 1].hours_used = hours_used
    self._jobs[job_id].reveals = job.reveals + 1
    log ResultRevealed(
        job_id=job_id, provider=msg.sender, output_hash=output_hash, hours_used=hours_used
    )
    if job.redundancy == 1:
        review_deadline: uint256 = block.timestamp + DISPUTE_WINDOW
        self._jobs[job_id].status = STATUS_REVIEW
        self._jobs[job_id].review_deadline = review_deadline
        log ReviewStarted(job_id=job_id, provider=msg.sender, review_deadline=review_deadline)


# ---------------------------------------------------------------- settlement


@internal
def _slash(job_id: uint256, provider: address, reason: uint8) -> uint256:
    """Take SLASH_FRACTION_BPS of the provider's stake (state only; the caller pays it
    to the requester) and count it against the provider's reputation."""
    stake: uint256 = self._providers[provider].stake
    amount: uint256 = stake * SLASH_FRACTION_BPS // BPS
    self._providers[provider].stake = stake - amount
    self.total_staked -= amount
    if reason == SLASH_NO_RESULT:
        self._providers[provider].failed += 1
    else:
        self._providers[provider].slashed += 1
    log ProviderSlashed(
        job_id=job_id, provider=provider, amount=amount, reason=reason, stake=stake - amount
    )
    return amount


@internal
def _pay_slot(job_id: uint256, slot: uint256, a: Assignment, max_hours: uint256) -> uint256:
    """Record the payment of an assignment (state only) and return its amount."""
    hours: uint256 = min(a.hours_used, max_hours)
    amount: uint256 = hours * a.price_per_hour
    self._assignments[job_id][slot].paid = amount
    self._providers[a.provider].completed += 1
    log ProviderPaid(job_id=job_id, provider=a.provider, hours=hours, amount=amount)
    return amount


@external
@nonreentrant
def settle(job_id: uint256):
    """
    @notice Settle a job with k >= 2 (anyone), once every assigned provider revealed or
            the reveal window ended with at least one reveal. A strict majority of the
            revealed output hashes is paid; the rest, and non-revealers, are slashed. No
            majority: DISPUTED, escrow refunded, only non-revealers slashed.
    """
    job: Job = self._jobs[job_id]
    assert job.status != STATUS_NONE, "settle: unknown job"
    assert job.status == STATUS_ASSIGNED, "settle: job not running"
    assert job.redundancy >= 2, "settle: single-provider job"
    assert job.reveals != 0, "settle: nothing revealed"
    assert (
        job.reveals == job.redundancy or block.timestamp >= self._reveal_deadline(job)
    ), "settle: reveals still open"

    slots: DynArray[Assignment, MAX_REDUNDANCY] = self._assignments[job_id]
    best: bytes32 = empty(bytes32)
    best_votes: uint256 = 0
    for a: Assignment in slots:
        if not a.revealed:
            continue
        votes: uint256 = 0
        for b: Assignment in slots:
            if b.revealed and b.output_hash == a.output_hash:
                votes += 1
        if votes > best_votes:
            best_votes = votes
            best = a.output_hash
    majority: bool = best_votes * 2 > job.reveals

    paid: uint256 = 0
    compensation: uint256 = 0
    payouts: DynArray[uint256, MAX_REDUNDANCY] = []
    for i: uint256 in range(MAX_REDUNDANCY):
        if i >= len(slots):
            break
        a: Assignment = slots[i]
        self._providers[a.provider].active_jobs -= 1
        amount: uint256 = 0
        if not a.revealed:
            compensation += self._slash(job_id, a.provider, SLASH_NO_RESULT)
        elif majority and a.output_hash == best:
            amount = self._pay_slot(job_id, i, a, job.max_hours)
            paid += amount
        elif majority:
            compensation += self._slash(job_id, a.provider, SLASH_WRONG_RESULT)
        payouts.append(amount)

    refund: uint256 = job.escrow - paid
    self._jobs[job_id].escrow = 0
    self.escrowed -= job.escrow
    if majority:
        self._jobs[job_id].status = STATUS_COMPLETED
        self._jobs[job_id].result_hash = best
        log JobCompleted(
            job_id=job_id,
            requester=job.requester,
            result_hash=best,
            paid=paid,
            refund=refund,
            compensation=compensation,
        )
    else:
        self._jobs[job_id].status = STATUS_DISPUTED
        log JobDisputed(
            job_id=job_id, requester=job.requester, refund=refund, compensation=compensation
        )

    for i: uint256 in range(MAX_REDUNDANCY):
        if i >= len(slots):
            break
        self._pay(slots[i].provider, payouts[i])
    self._pay(job.requester, refund + compensation)


@internal
def _complete_single(job_id: uint256, job: Job):
    a: Assignment = self._assignments[job_id][0]
    self._providers[a.provider].active_jobs -= 1
    amount: uint256 = self._pay_slot(job_id, 0, a, job.max_hours)
    refund: uint256 = job.escrow - amount
    self._jobs[job_id].status = STATUS_COMPLETED
    self._jobs[job_id].result_hash = a.output_hash
    self._jobs[job_id].escrow = 0
    self.escrowed -= job.escrow
    log JobCompleted(
        job_id=job_id,
        requester=job.requester,
        result_hash=a.output_hash,
        paid=amount,
        refund=refund,
        compensation=0,
    )
    self._pay(a.provider, amount)
    self._pay(job.requester, refund)


@external
@nonreentrant
def accept(job_id: uint256):
    """
    @notice Accept a k = 1 job's revealed result (requester only): the provider is paid.
    """
    job: Job = self._jobs[job_id]
    assert job.status != STATUS_NONE, "accept: unknown job"
    assert job.requester == msg.sender, "accept: caller is not the requester"
    assert job.status == STATUS_REVIEW, "accept: job not under review"
    self._complete_single(job_id, job)


@external
@nonreentrant
def finalize(job_id: uint256):
    """
    @notice Accept a k = 1 job's result once its dispute window is over (anyone).
    """
    job: Job = self._jobs[job_id]
    assert job.status != STATUS_NONE, "finalize: unknown job"
    assert job.status == STATUS_REVIEW, "finalize: job not under review"
    assert block.timestamp >= job.review_deadline, "finalize: dispute window open"
    self._complete_single(job_id, job)


@external
@nonreentrant
def dispute(job_id: uint256):
    """
    @notice Reject a k = 1 job's result within the dispute window (requester only): the
            provider is slashed (to the requester) and the escrow refunded. A real
            deployment would send this to an arbiter; see the contract notice.
    """
    job: Job = self._jobs[job_id]
    assert job.status != STATUS_NONE, "dispute: unknown job"
    assert job.requester == msg.sender, "dispute: caller is not the requester"
    assert job.status == STATUS_REVIEW, "dispute: job not under review"
    assert block.timestamp < job.review_deadline, "dispute: dispute window over"
    provider: address = self._assignments[job_id][0].provider
    self._providers[provider].active_jobs -= 1
    compensation: uint256 = self._slash(job_id, provider, SLASH_REJECTED)
    self._jobs[job_id].status = STATUS_REJECTED
    self._jobs[job_id].escrow = 0
    self.escrowed -= job.escrow
    log JobRejected(
        job_id=job_id, requester=msg.sender, refund=job.escrow, compensation=compensation
    )
    self._pay(msg.sender, job.escrow + compensation)


@external
@nonreentrant
def expire(job_id: uint256):
    """
    @notice End a job that can no longer produce a result (anyone): an OPEN job past its
            deadline, or an ASSIGNED one with nothing revealed once the commit phase
            (and, if anyone committed, the reveal window) is over. The requester gets the
            escrow back; every assigned provider is slashed and counted failed.
    """
    job: Job = self._jobs[job_id]
    assert job.status != STATUS_NONE, "expire: unknown job"
    assert job.status == STATUS_OPEN or job.status == STATUS_ASSIGNED, "expire: job not running"
    assert block.timestamp >= job.deadline, "expire: deadline not reached"
    compensation: uint256 = 0
    if job.status == STATUS_ASSIGNED:
        assert job.reveals == 0, "expire: a result was revealed (settle it)"
        assert (
            job.commits == 0 or block.timestamp >= self._reveal_deadline(job)
        ), "expire: reveal window open"
        for a: Assignment in self._assignments[job_id]:
            self._providers[a.provider].active_jobs -= 1
            compensation += self._slash(job_id, a.provider, SLASH_NO_RESULT)
    self._jobs[job_id].status = STATUS_EXPIRED
    self._jobs[job_id].escrow = 0
    self.escrowed -= job.escrow
    log JobExpired(
        job_id=job_id, requester=job.requester, refund=job.escrow, compensation=compensation
    )
    self._pay(job.requester, job.escrow + compensation)


# ---------------------------------------------------------------- views


@view
@external
def job_info(job_id: uint256) -> Job:
    """
    @notice Everything recorded about a job (all zero for an unknown id).
    """
    return self._jobs[job_id]


@view
@external
def job_bids(job_id: uint256) -> DynArray[Bid, MAX_BIDS]:
    """
    @notice A job's bids, in the order they were placed.
    """
    return self._bids[job_id]


@view
@external
def job_assignments(job_id: uint256) -> DynArray[Assignment, MAX_REDUNDANCY]:
    """
    @notice A job's winners by slot (empty before its auction closes).
    """
    return self._assignments[job_id]


@view
@external
def provider_info(provider: address) -> Provider:
    """
    @notice A provider's stake, lock count and reputation counters.
    """
    return self._providers[provider]


@view
@external
def offer_info(provider: address) -> Offer:
    """
    @notice A provider's current offer (`posted` is False if none).
    """
    return self._offers[provider]


@view
@external
def reputation(provider: address) -> int256:
    """
    @notice completed - failed - 2 * slashed.
    """
    return self._reputation(provider)


@view
@external
def reveal_deadline(job_id: uint256) -> uint256:
    """
    @notice When the job's reveal phase ends (as things stand: it moves earlier when the
            last commitment arrives before the deadline).
    """
    return self._reveal_deadline(self._jobs[job_id])
