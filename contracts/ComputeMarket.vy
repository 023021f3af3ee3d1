# pragma version ~=0.4.3
# Optimized for size: the runtime code must stay under the EIP-170 limit of 24,576 bytes,
# with 20% to spare (tests/contracts/test_contract_sizes.py).
# pragma optimize codesize
"""
@title ailedger compute market
@notice Owners of idle GPUs/CPUs rent them out to requesters, who pay in the payment token.

        Providers stake tokens, advertise one machine and keep their reputation in the
        ComputeProviders contract (`ComputeProviders.vy`: `register_provider`,
        `add_stake`, `post_offer`, `provider_info`, `reputation`), and bid on jobs here.
        An offer with `confined = False` declares on chain that the machine cannot
        sandbox jobs, so a requester (or a data owner, through the requester's job) can
        exclude it with `require_confined`. This market asks ComputeProviders whether a
        bidder is eligible, locks a winner's stake there and ends each assignment there
        (paid, slashed, or neither); the two are split so each keeps 20% headroom
        under the EIP-170 code size limit.

        A job names a bundle (by hash), the resources it needs, a price cap per hour, an
        hour cap, a deadline, a redundancy k (1..5: how many independent providers run
        it) and the datasets it computes on (compute-to-data, below). Posting escrows
        `max_price_per_hour * max_hours * k`, and for k >= 2 one share more,
        `max_price_per_hour * max_hours * (k + 1)`: the reserve that pays a tie-break
        provider. The reserve stays in escrow until the job's terminal event, which
        refunds whatever of it was not paid out.

        Job lifecycle:
            OPEN     -> CANCELLED (requester cancels before the auction closes: full refund;
                                   or the auction closes with fewer than k eligible bids)
            OPEN     -> EXPIRED   (deadline passed before anyone closed the auction)
            OPEN     -> ASSIGNED  (close_auction: the k cheapest eligible bids win)
            ASSIGNED -> CANCELLED (requester cancels before any result is revealed:
                                   metered pay, the rest refunded)
            ASSIGNED -> REVIEW    (k = 1: the provider revealed; the dispute window runs)
            ASSIGNED -> COMPLETED (k >= 2: settle found a strict majority of revealed results)
            ASSIGNED -> TIEBREAK  (k >= 2: settle found no majority, before the deadline)
            ASSIGNED -> DISPUTED  (k >= 2: settle found no majority at or after the deadline)
            ASSIGNED -> EXPIRED   (nobody revealed a result and none can come any more)
            TIEBREAK -> COMPLETED (settle: a strict majority of all revealed results)
            TIEBREAK -> DISPUTED  (still no majority; no eligible tie-break bid; or the
                                   tie-break provider revealed nothing in time)
            TIEBREAK -> CANCELLED (requester cancels before the tie-break result is revealed)
            REVIEW   -> COMPLETED (requester accepts, or anyone finalizes after the window)
            REVIEW   -> TIEBREAK  (requester disputes within the window, posting a bond:
                                   the job is re-executed by another provider)
            TIEBREAK -> REJECTED  (k = 1: the re-execution revealed another hash)
            TIEBREAK -> COMPLETED (k = 1: the re-execution agreed, or gave no result)

        Reverse auction: for `bid_window` seconds after posting, eligible providers bid a
        price per hour (<= the cap). Eligibility is checked at bid time: registered, stake
        >= min_stake, an offer with at least the job's cpu cores, RAM and GPU memory,
        reputation >= the job's minimum, confined if the job requires it, allowed to host
        every dataset of the job. `close_auction` (anyone after the window; the requester
        earlier, as soon as k eligible bids are in, so a job can start within a block or
        two; never at or after the deadline) picks the k cheapest bids among bidders
        still staked >= min_stake; ties go to the higher reputation (completed - failed -
        2 * slashed), then to the earlier bid. Winners are paid their own bid
        (pay-as-bid), and the escrow above `sum(winning prices) * max_hours` (plus the
        reserve, for k >= 2) is refunded at once. A winner's whole stake stays locked (no
        withdrawal) while it has any assignment that is not finished.

        Billing is by the second, at the winner's price per hour: a winner whose result
        is paid gets `min(seconds_used, max(committed_at - assigned_at, 1), max_hours *
        3600) * price / 3600`, where `seconds_used` is what it claimed at its reveal and
        the middle term the time that passed on chain between its assignment (the
        auction's close) and its commitment, at least the one second the chain's clock
        cannot split: nobody is paid for time that did not pass.

        Results, by commit-reveal: each winner commits keccak256(output_hash ++ salt)
        before the deadline. Reveals open when all k have committed (or at the deadline,
        for those that did) and stay open `reveal_window` seconds. Nobody can reveal
        before every commitment is in or the commit phase is over, so nobody can copy a
        revealed result into a late commitment.

        Settlement, k >= 2 (`settle`, anyone, once all revealed or the reveal window
        ended with at least one reveal): if one output hash has a strict majority of the
        revealed results, its revealers are paid for their metered time (below)
        each; the others that revealed are slashed as wrong (`slashed` += 1). If no hash
        has a majority (a tie) and the deadline has not passed, the job goes to TIEBREAK:
        - one extra slot is auctioned: bids for `bid_window` seconds from then, by the
          same eligibility rules, except that providers assigned to this job may not bid
          (a provider that lost the first auction may); the job's bids are cleared, so
          `job_bids` and `bid_index` count this round's bids. `close_auction` picks the
          cheapest eligible bid (anyone after the new window; the requester as soon as
          one eligible bid is in; never at or after the deadline). Its price is paid from
          the reserve, so nothing is refunded at this close. No eligible bid: DISPUTED.
        - the winner (slot k) commits before the deadline; its reveal opens at its
          commitment and stays open `reveal_window` seconds from then.
        - `settle` (anyone, once the tie-break provider revealed, or its reveal window
          ended, or the deadline passed without its commitment) counts every revealed
          result, the first round's and the tie-break's: a strict majority is paid and
          the revealers of other hashes are slashed as wrong; still no majority, or no
          tie-break result: DISPUTED.
        DISPUTED (a tie at settle at or after the deadline, or one the tie-break did not
        break): nobody is paid, no revealer is slashed (the chain cannot tell who is
        right) and the escrow is refunded in full. The tie-break provider sees the tied
        hashes before it commits, so the chain cannot tell whether it computed or chose a
        side; the tie-break is worth what the stake and reputation of an independent,
        auction-picked provider are worth, and a requester who wants more reposts the
        bundle with a larger k.

        Settlement, k = 1: the reveal starts a `dispute_window`. The requester may
        `accept` (the provider is paid at once) or `dispute`. Silence accepts: anyone may
        `finalize` after the window. A dispute is settled by evidence, not by word: the
        requester posts a bond of `max_price_per_hour * max_hours` and the job goes to
        TIEBREAK, where the tie-break machinery above picks one other staked provider
        (the assigned one may not bid) to re-execute it; the job's deadline moves to at
        least `max_hours` after that auction. `settle` (or `expire`, or a tie-break
        auction without eligible bids) then ends it:
        - the re-execution revealed a different hash: the requester was right. The
          provider is slashed (`slashed` += 1, to the requester) and not paid; the
          re-execution is paid from the bond; the rest of the escrow and bond is
          refunded. REJECTED.
        - the re-execution revealed the same hash: the dispute was false. The provider
          is paid for its result and gets what the re-execution did not cost of the
          bond; the re-execution is paid from the bond; the requester gets back only
          the unused escrow. COMPLETED.
        - no re-execution result (no eligible bid, or the re-executor revealed nothing
          in time, which slashes it to the requester): nothing proves the provider
          wrong, so it is paid as if accepted and the bond is refunded. COMPLETED.
        An honest provider is never slashed by a dispute; a false dispute costs the
        disputer the bond. As with k >= 2 tie-breaks, the evidence is worth what an
        independent, auction-picked, staked provider is worth. A disputed job cannot
        be cancelled.

        Every assigned provider (the tie-break provider included) that reveals nothing by
        the end of its reveal phase is slashed and counted `failed`, on every path
        (settle, expire, a tie-break that fails), whether or not it committed: the chain
        cannot tell a crashed machine from one withholding a result it does not like,
        and the locked stake is the bond for delivery. Slashing takes
        ComputeProviders' `slash_fraction_bps` / 10000 of the provider's stake at that moment, and the
        slashed tokens go to the job's requester as compensation for the lost time.

        Cancelling a running job (`cancel_job` on an ASSIGNED job before any result is
        revealed, or on a TIEBREAK job before the tie-break result is revealed): each
        assigned provider is paid for the time since it was assigned,
        `min(now - assigned_at, max_hours * 3600) * its price / 3600` (whether or not it
        committed: the requester stops the work, not the provider); nobody is slashed,
        no reputation counter moves, the rest of the escrow is refunded and the stake
        locks end.

        `expire` (anyone) ends a job no result can settle any more (past its deadline,
        nothing revealed, reveal phase over): the requester gets the whole escrow back;
        nobody is paid for a stuck job. A TIEBREAK job past its deadline whose tie-break
        provider revealed nothing (none assigned, or its reveal window over) can be
        expired too; it ends DISPUTED, as `settle` would end it.
        Every path ends by the deadline plus `reveal_window`: after that, `settle` or
        `expire` can end any job that is not under k = 1 review (whose dispute window is
        bounded as well).

        Compute-to-data: a job may name up to 4 datasets of the DataMarket, each with the
        requester's grant id, and one purpose (a single purpose bit of the DataMarket;
        the grant must be for it, so 0 only works without datasets). At posting, each
        grant must be valid for the requester, dataset and purpose
        (`DataMarket.check_access`), and the ComputePolicy must list the bundle hash among
        the dataset's allowed algorithms (`may_compute`). At each bid (first round and
        tie-break) the ComputePolicy must allow the bidder to host each dataset
        (`may_host`: its owner or on its provider list). The datasets, grant ids and
        purpose are in JobPosted, so providers watching events know what a job needs;
        `job_datasets` returns the datasets and purpose.

        Events (each transition emits one; replaying them in order, with the
        ComputeProviders events, rebuilds every job, bid, assignment and provider,
        reputation counters included; assignment times are the timestamps of the blocks
        holding ProviderAssigned):
            JobPosted, BidPlaced, JobCancelled, AuctionFailed, ProviderAssigned (slot = k:
            the tie-break provider; the job stays TIEBREAK), AuctionClosed,
            ResultCommitted, ResultRevealed, ReviewStarted, TieBreakStarted (status
            TIEBREAK, the new bid deadline, the job's bids cleared),
            ProviderPaid (completed += 1), ProviderPaidForTime (a cancelled running job's
            metered pay; no counter moves), JobCompleted, JobDisputed, JobRejected, JobExpired.
        ComputeProviders emits ProviderSlashed (reason 1 or 2: slashed += 1; reason 3:
        failed += 1). An assignment's stake lock ends with its job's terminal event (JobCompleted,
        JobDisputed, JobRejected, JobExpired, JobCancelled).
@dev Funds move only through the token fixed at construction. Every state-changing
     function is @nonreentrant (on Shanghai, a storage lock) and follows checks-effects-
     interactions: statuses, escrow and stakes change before any token call, so even a
     token that calls back cannot pay or refund twice. The DataMarket and ComputePolicy
     are only read (staticcall). The token balance of this contract is at least
     `escrowed` (stakes are held by ComputeProviders, which sends slashed tokens
     here to be passed on). Token calls must return True.
"""

from ethereum.ercs import IERC20


interface DataMarket:
    def check_access(
        request_id: uint256, requester: address, dataset_id: bytes32, purpose: uint256
    ) -> bool: view


interface ComputePolicy:
    def may_compute(dataset_id: bytes32, code_hash: bytes32) -> bool: view
    def may_host(dataset_id: bytes32, provider: address) -> bool: view


interface ComputeProviders:
    def check_bidder(
        provider: address,
        cpu_cores: uint256,
        ram_mb: uint256,
        gpu_mem_mb: uint256,
        require_confined: bool,
        min_reputation: int256,
    ) -> bool: view
    def standing(provider: address) -> (bool, int256): view
    def lock(provider: address): nonpayable
    def release(job_id: uint256, provider: address, outcome: uint8) -> uint256: nonpayable

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
# k >= 2: a tie at settle; one extra provider is being found or is running the job.
STATUS_TIEBREAK: public(constant(uint8)) = 9

# ---------------------------------------------------------------- slash reasons

SLASH_WRONG_RESULT: public(constant(uint8)) = 1  # minority result (k >= 2)
SLASH_REJECTED: public(constant(uint8)) = 2  # requester disputed (k = 1)
SLASH_NO_RESULT: public(constant(uint8)) = 3  # assigned, revealed nothing
# An assignment that ends without pay or slash, and one that is paid (ComputeProviders).
OUTCOME_NONE: constant(uint8) = 0
OUTCOME_PAID: constant(uint8) = 4

MAX_REDUNDANCY: public(constant(uint256)) = 5
# Assignments per job: k, plus one tie-break provider.
MAX_SLOTS: public(constant(uint256)) = MAX_REDUNDANCY + 1
# Datasets a compute-to-data job may name.
MAX_DATASETS: public(constant(uint256)) = 4
# Bids per job. Bounded so close_auction's cost is bounded (k passes over the bids).
MAX_BIDS: public(constant(uint256)) = 32
# Windows, deadlines and hour caps are bounded so timestamps and products stay far
# from overflow, and so a typo cannot lock funds for centuries.
MAX_WINDOW: public(constant(uint256)) = 365 * 86400
MAX_JOB_DURATION: public(constant(uint256)) = 5 * 365 * 86400
MAX_HOURS: public(constant(uint256)) = 5 * 365 * 24


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
    # Seconds of work the provider claimed at its reveal.
    seconds_used: uint256
    revealed: bool
    paid: uint256
    # When the auction that picked this provider closed (metered pay on cancel).
    assigned_at: uint256
    # When its commitment landed: it is paid for no more time than passed until then.
    committed_at: uint256


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
    datasets: DynArray[bytes32, MAX_DATASETS]
    grant_ids: DynArray[uint256, MAX_DATASETS]
    purpose: uint256


event BidPlaced:
    job_id: indexed(uint256)
    provider: indexed(address)
    price_per_hour: uint256
    bid_index: uint256


event JobCancelled:
    job_id: indexed(uint256)
    requester: indexed(address)
    # Metered pay to the providers of a running job (0 for an OPEN one).
    paid: uint256
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
    seconds_used: uint256


event ReviewStarted:
    job_id: indexed(uint256)
    provider: indexed(address)
    review_deadline: uint256


event TieBreakStarted:
    job_id: indexed(uint256)
    requester: indexed(address)
    bid_deadline: uint256


event ProviderPaid:
    job_id: indexed(uint256)
    provider: indexed(address)
    seconds: uint256
    amount: uint256


event ProviderPaidForTime:
    job_id: indexed(uint256)
    provider: indexed(address)
    seconds: uint256
    amount: uint256


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


event DisputeOpened:
    job_id: indexed(uint256)
    requester: indexed(address)
    bond: uint256
    # The job's deadline, moved so the re-execution has max_hours after its auction.
    deadline: uint256


event DisputeSettled:
    job_id: indexed(uint256)
    # The re-execution revealed a hash other than the provider's.
    requester_right: bool
    # False: no re-execution result (no eligible bid, or none revealed in time).
    evidence: bool
    provider_paid: uint256


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
DATA_MARKET: public(immutable(DataMarket))
COMPUTE_POLICY: public(immutable(ComputePolicy))
PROVIDERS: public(immutable(ComputeProviders))
BID_WINDOW: public(immutable(uint256))
REVEAL_WINDOW: public(immutable(uint256))
DISPUTE_WINDOW: public(immutable(uint256))

_jobs: HashMap[uint256, Job]
_bids: HashMap[uint256, DynArray[Bid, MAX_BIDS]]
# The round a provider last bid in on a job: 1 = first auction, 2 = tie-break (or
# assigned to the job, which bars it from the tie-break).
_bid_round: HashMap[uint256, HashMap[address, uint256]]
_assignments: HashMap[uint256, DynArray[Assignment, MAX_SLOTS]]
_datasets: HashMap[uint256, DynArray[bytes32, MAX_DATASETS]]
_purpose: HashMap[uint256, uint256]
# slot + 1 of a provider in a job's assignments; 0 = not assigned.
_slot_of: HashMap[uint256, HashMap[address, uint256]]
# Number of jobs posted; ids run from 1.
job_count: public(uint256)
# Tokens held for jobs.
escrowed: public(uint256)


@deploy
def __init__(
    token: address,
    data_market: address,
    compute_policy: address,
    providers: address,
    bid_window: uint256,
    reveal_window: uint256,
    dispute_window: uint256,
):
    """
    @param data_market The DataMarket whose grants compute-to-data jobs name.
    @param compute_policy The ComputePolicy that says which algorithms may run on a
           dataset and which providers may host it.
    @param providers The ComputeProviders contract holding stakes, offers and
           reputation (bound to this market after deployment).
    @param bid_window Seconds after posting during which bids are taken.
    @param reveal_window Seconds the reveal phase lasts.
    @param dispute_window Seconds a k = 1 requester has to dispute a revealed result.
    """
    assert token.is_contract, "init: token is not a contract"
    assert data_market.is_contract, "init: data market is not a contract"
    assert compute_policy.is_contract, "init: compute policy is not a contract"
    assert providers.is_contract, "init: providers is not a contract"
    assert bid_window != 0 and bid_window <= MAX_WINDOW, "init: bad bid window"
    assert reveal_window != 0 and reveal_window <= MAX_WINDOW, "init: bad reveal window"
    assert dispute_window != 0 and dispute_window <= MAX_WINDOW, "init: bad dispute window"
    TOKEN = IERC20(token)
    DATA_MARKET = DataMarket(data_market)
    COMPUTE_POLICY = ComputePolicy(compute_policy)
    PROVIDERS = ComputeProviders(providers)
    BID_WINDOW = bid_window
    REVEAL_WINDOW = reveal_window
    DISPUTE_WINDOW = dispute_window


@internal
@pure
def _req(ok: bool, reason: String[48]):
    # Every check reverts through here: one copy of the revert-with-reason code instead
    # of one per check keeps the runtime well under EIP-170 (the reasons are unchanged).
    assert ok, reason


# ---------------------------------------------------------------- token helpers


@internal
def _pay(to: address, amount: uint256):
    # A zero amount makes no token call: some tokens reject zero transfers.
    if amount != 0:
        self._req(extcall TOKEN.transfer(to, amount), "token: transfer failed")


@internal
def _pull(src: address, amount: uint256):
    if amount != 0:
        self._req(extcall TOKEN.transferFrom(src, self, amount), "token: transferFrom failed")


# ---------------------------------------------------------------- jobs and the auction


@internal
@pure
def _reserve(max_price_per_hour: uint256, max_hours: uint256, redundancy: uint256) -> uint256:
    """The share escrowed for a tie-break provider: one slot at the cap (k >= 2)."""
    if redundancy >= 2:
        return max_price_per_hour * max_hours
    return 0


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
    datasets: DynArray[bytes32, MAX_DATASETS],
    grant_ids: DynArray[uint256, MAX_DATASETS],
    purpose: uint256,
) -> uint256:
    """
    @notice Post a job and escrow `max_price_per_hour * max_hours * k`, times (k + 1)
            for k >= 2 (the tie-break reserve); the caller must have approved this
            contract for it.
    @param deadline Unix time by which results must be committed; after the bid window.
    @param redundancy How many independent providers run the job (1..5).
    @param min_reputation Least completed - failed - 2 * slashed a bidder may have.
    @param datasets DataMarket datasets the job computes on (compute-to-data; may be empty).
    @param grant_ids The caller's DataMarket grant for each dataset, in the same order.
    @param purpose The single DataMarket purpose bit the grants are for (0 without datasets).
    @return The job id.
    """
    self._req(bundle_hash != empty(bytes32), "post: bundle hash is zero")
    self._req(redundancy >= 1 and redundancy <= MAX_REDUNDANCY, "post: redundancy not in 1..5")
    self._req(max_price_per_hour != 0, "post: max price is zero")
    self._req(max_hours != 0 and max_hours <= MAX_HOURS, "post: bad max hours")
    bid_deadline: uint256 = block.timestamp + BID_WINDOW
    self._req(deadline > bid_deadline, "post: deadline before bidding ends")
    self._req(deadline <= block.timestamp + MAX_JOB_DURATION, "post: deadline too far")
    self._req(len(grant_ids) == len(datasets), "post: one grant id per dataset")
    for i: uint256 in range(MAX_DATASETS):
        if i >= len(datasets):
            break
        self._req(staticcall DATA_MARKET.check_access(
            grant_ids[i], msg.sender, datasets[i], purpose
        ), "post: no valid grant for dataset")
        self._req(staticcall COMPUTE_POLICY.may_compute(
            datasets[i], bundle_hash
        ), "post: algorithm not allowed for dataset")
    escrow: uint256 = max_price_per_hour * max_hours * redundancy + self._reserve(
        max_price_per_hour, max_hours, redundancy
    )

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
    if len(datasets) != 0:
        self._datasets[job_id] = datasets
    if purpose != 0:
        self._purpose[job_id] = purpose
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
        datasets=datasets,
        grant_ids=grant_ids,
        purpose=purpose,
    )
    self._pull(msg.sender, escrow)
    return job_id


@external
@nonreentrant
def bid(job_id: uint256, price_per_hour: uint256):
    """
    @notice Offer to run a job at `price_per_hour` (at most the job's cap), during its
            bid window: the first auction of an OPEN job, or the tie-break auction of a
            TIEBREAK job (providers assigned to the job may not bid there). One bid per
            provider per round; it cannot be changed.
    """
    job: Job = self._jobs[job_id]
    self._req(job.status != STATUS_NONE, "bid: unknown job")
    # A TIEBREAK job takes bids until its tie-break provider is picked (slot k filled).
    tiebreak: bool = job.status == STATUS_TIEBREAK
    self._req(job.status == STATUS_OPEN or (
        tiebreak and len(self._assignments[job_id]) == job.redundancy
    ), "bid: job not open")
    bid_round: uint256 = 1
    if tiebreak:
        bid_round = 2
    self._req(block.timestamp < job.bid_deadline, "bid: bidding closed")
    self._req(msg.sender != job.requester, "bid: requester cannot bid")
    # Winners are recorded as having bid in the tie-break round: they may not bid there.
    self._req(self._bid_round[job_id][msg.sender] < bid_round, "bid: already bid")
    self._req(price_per_hour <= job.max_price_per_hour, "bid: price above maximum")
    # Registered, staked, an offer that fits, reputation: reverts with the reason if not.
    assert staticcall PROVIDERS.check_bidder(
        msg.sender,
        job.cpu_cores,
        job.ram_mb,
        job.gpu_mem_mb,
        job.require_confined,
        job.min_reputation,
    )
    for d: bytes32 in self._datasets[job_id]:
        self._req(staticcall COMPUTE_POLICY.may_host(
            d, msg.sender
        ), "bid: provider may not host dataset")
    n: uint256 = len(self._bids[job_id])
    self._req(n < MAX_BIDS, "bid: too many bids")
    self._bid_round[job_id][msg.sender] = bid_round
    self._bids[job_id].append(Bid(provider=msg.sender, price_per_hour=price_per_hour))
    log BidPlaced(job_id=job_id, provider=msg.sender, price_per_hour=price_per_hour, bid_index=n)


@internal
@view
def _tiebreak_revealed(job_id: uint256, redundancy: uint256) -> bool:
    if len(self._assignments[job_id]) > redundancy:
        return self._assignments[job_id][redundancy].revealed
    return False


@external
@nonreentrant
def cancel_job(job_id: uint256):
    """
    @notice Withdraw a job (requester only). OPEN: full refund. ASSIGNED before any
            result is revealed, or TIEBREAK before the tie-break result is revealed:
            each assigned provider is paid `min(now - assigned_at, max_hours * 3600) *
            its price / 3600`, nobody is slashed, the rest is refunded.
    """
    job: Job = self._jobs[job_id]
    self._req(job.status != STATUS_NONE, "cancel: unknown job")
    self._req(job.requester == msg.sender, "cancel: caller is not the requester")
    slots: DynArray[Assignment, MAX_SLOTS] = []
    payouts: DynArray[uint256, MAX_SLOTS] = []
    paid: uint256 = 0
    if job.status != STATUS_OPEN:
        self._req((
            job.status == STATUS_ASSIGNED
            or job.status == STATUS_TIEBREAK
            or job.status == STATUS_REVIEW
        ), "cancel: job has ended")
        # A dispute is settled by its re-execution, not withdrawn.
        self._req(
            job.status != STATUS_TIEBREAK or job.redundancy >= 2, "cancel: job under dispute"
        )
        if job.status == STATUS_TIEBREAK:
            self._req(not self._tiebreak_revealed(
                job_id, job.redundancy
            ), "cancel: a result was revealed")
        else:
            self._req(job.reveals == 0, "cancel: a result was revealed")
        slots = self._assignments[job_id]
        for i: uint256 in range(MAX_SLOTS):
            if i >= len(slots):
                break
            a: Assignment = slots[i]
            seconds: uint256 = min(block.timestamp - a.assigned_at, job.max_hours * 3600)
            amount: uint256 = seconds * a.price_per_hour // 3600
            self._assignments[job_id][i].paid = amount
            extcall PROVIDERS.release(job_id, a.provider, OUTCOME_NONE)
            paid += amount
            payouts.append(amount)
            log ProviderPaidForTime(
                job_id=job_id, provider=a.provider, seconds=seconds, amount=amount
            )
    refund: uint256 = job.escrow - paid
    self._jobs[job_id].status = STATUS_CANCELLED
    self._jobs[job_id].escrow = 0
    self.escrowed -= job.escrow
    log JobCancelled(job_id=job_id, requester=msg.sender, paid=paid, refund=refund)
    for i: uint256 in range(MAX_SLOTS):
        if i >= len(slots):
            break
        self._pay(slots[i].provider, payouts[i])
    self._pay(msg.sender, refund)


@external
@nonreentrant
def close_auction(job_id: uint256):
    """
    @notice End a job's auction: anyone after its bid window, the requester earlier once
            enough eligible bids are in; never at or after the deadline. First auction:
            the k cheapest bids from providers still staked at least MIN_STAKE win (ties:
            higher reputation, then earlier bid); fewer than k such bids: the job is
            cancelled and refunded; otherwise the escrow above what the winners' prices
            can cost (and the reserve) is refunded at once. Tie-break auction: the one
            cheapest such bid wins slot k, paid from the reserve; no such bid: DISPUTED.
    """
    job: Job = self._jobs[job_id]
    self._req(job.status != STATUS_NONE, "close: unknown job")
    # The first slot to fill: 0, or k in a tie-break (whose auction fills one slot).
    base: uint256 = len(self._assignments[job_id])
    self._req(job.status == STATUS_OPEN or (
        job.status == STATUS_TIEBREAK and base == job.redundancy
    ), "close: job not open")
    wanted: uint256 = job.redundancy
    if base != 0:
        wanted = 1
    early: bool = block.timestamp < job.bid_deadline
    self._req(not early or msg.sender == job.requester, "close: bidding still open")
    self._req(block.timestamp < job.deadline, "close: deadline passed (expire it)")

    bids: DynArray[Bid, MAX_BIDS] = self._bids[job_id]
    available: DynArray[bool, MAX_BIDS] = []
    reps: DynArray[int256, MAX_BIDS] = []
    eligible: uint256 = 0
    for b: Bid in bids:
        ok: bool = False
        rep: int256 = 0
        ok, rep = staticcall PROVIDERS.standing(b.provider)
        available.append(ok)
        reps.append(rep)
        if ok:
            eligible += 1
    self._req(not early or eligible >= wanted, "close: too few eligible bids")

    if eligible < wanted:
        if base != 0:
            # Nobody can break the tie: the job ends as it stood.
            self._settle_all(job_id, job)
            return
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
    for i: uint256 in range(MAX_REDUNDANCY):
        if i >= wanted:
            break
        best: uint256 = n
        for j: uint256 in range(MAX_BIDS):
            if j >= n:
                break
            if not available[j]:
                continue
            # Scanning in bid order and taking only strictly better bids keeps the
            # earlier bid on a full tie.
            if (
                best == n
                or bids[j].price_per_hour < bids[best].price_per_hour
                or (bids[j].price_per_hour == bids[best].price_per_hour and reps[j] > reps[best])
            ):
                best = j
        available[best] = False
        winner: Bid = bids[best]
        slot: uint256 = base + i
        self._assignments[job_id].append(
            Assignment(
                provider=winner.provider,
                price_per_hour=winner.price_per_hour,
                commitment=empty(bytes32),
                output_hash=empty(bytes32),
                seconds_used=0,
                revealed=False,
                paid=0,
                assigned_at=block.timestamp,
                committed_at=0,
            )
        )
        self._slot_of[job_id][winner.provider] = slot + 1
        self._bid_round[job_id][winner.provider] = 2
        extcall PROVIDERS.lock(winner.provider)
        needed += winner.price_per_hour * job.max_hours
        log ProviderAssigned(
            job_id=job_id, provider=winner.provider, slot=slot, price_per_hour=winner.price_per_hour
        )
    if base != 0:
        # The tie-break provider is paid from the reserve; the escrow stays as it is.
        return

    needed += self._reserve(job.max_price_per_hour, job.max_hours, job.redundancy)
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
    # In a tie-break, the tie-break provider's own window (0 until it commits).
    if job.status == STATUS_TIEBREAK or job.commits == job.redundancy:
        return job.reveal_deadline
    return job.deadline + REVEAL_WINDOW


@external
@nonreentrant
def commit_result(job_id: uint256, commitment: bytes32):
    """
    @notice Commit to a result (assigned providers, before the deadline; in a tie-break,
            only the tie-break provider): commitment = keccak256(output_hash ++ salt),
            both 32 bytes.
    """
    job: Job = self._jobs[job_id]
    self._req(job.status != STATUS_NONE, "commit: unknown job")
    slot: uint256 = self._slot_of[job_id][msg.sender]
    self._req(slot != 0, "commit: caller not assigned")
    # In a tie-break only the tie-break provider (slot k) is still running the job.
    tiebreak: bool = job.status == STATUS_TIEBREAK
    self._req((
        job.status == STATUS_ASSIGNED or (tiebreak and slot > job.redundancy)
    ), "commit: job not running")
    self._req(block.timestamp < job.deadline, "commit: deadline passed")
    self._req(commitment != empty(bytes32), "commit: commitment is zero")
    self._req(self._assignments[job_id][slot - 1].commitment == empty(bytes32), "commit: already committed")
    self._assignments[job_id][slot - 1].commitment = commitment
    self._assignments[job_id][slot - 1].committed_at = block.timestamp
    commits: uint256 = job.commits + 1
    self._jobs[job_id].commits = commits
    reveal_deadline: uint256 = 0
    if tiebreak or commits == job.redundancy:
        reveal_deadline = block.timestamp + REVEAL_WINDOW
        self._jobs[job_id].reveal_deadline = reveal_deadline
    log ResultCommitted(
        job_id=job_id, provider=msg.sender, commitment=commitment, reveal_deadline=reveal_deadline
    )


@external
@nonreentrant
def reveal_result(job_id: uint256, output_hash: bytes32, salt: bytes32, seconds_used: uint256):
    """
    @notice Reveal a committed result. Open once every assigned provider has committed,
            or from the deadline on, for `REVEAL_WINDOW` seconds; the tie-break
            provider's reveal opens at its commitment, for `REVEAL_WINDOW` seconds.
            `seconds_used` is the metered time claimed; payment is capped by the time
            from assignment to commitment and by the job's `max_hours`. With k = 1 the
            reveal starts the dispute window.
    """
    job: Job = self._jobs[job_id]
    self._req(job.status != STATUS_NONE, "reveal: unknown job")
    slot: uint256 = self._slot_of[job_id][msg.sender]
    self._req(slot != 0, "reveal: caller not assigned")
    tiebreak: bool = job.status == STATUS_TIEBREAK
    self._req((
        job.status == STATUS_ASSIGNED or (tiebreak and slot > job.redundancy)
    ), "reveal: job not running")
    a: Assignment = self._assignments[job_id][slot - 1]
    self._req(a.commitment != empty(bytes32), "reveal: nothing committed")
    self._req(not a.revealed, "reveal: already revealed")
    self._req((
        tiebreak or job.commits == job.redundancy or block.timestamp >= job.deadline
    ), "reveal: commit phase still open")
    self._req(block.timestamp < self._reveal_deadline(job), "reveal: reveal window closed")
    self._req(keccak256(concat(output_hash, salt)) == a.commitment, "reveal: does not match commitment")
    self._assignments[job_id][slot - 1].revealed = True
    self._assignments[job_id][slot - 1].output_hash = output_hash
    self._assignments[job_id][slot - 1].seconds_used = seconds_used
    self._jobs[job_id].reveals = job.reveals + 1
    log ResultRevealed(
        job_id=job_id, provider=msg.sender, output_hash=output_hash, seconds_used=seconds_used
    )
    if job.redundancy == 1 and not tiebreak:
        review_deadline: uint256 = block.timestamp + DISPUTE_WINDOW
        self._jobs[job_id].status = STATUS_REVIEW
        self._jobs[job_id].review_deadline = review_deadline
        log ReviewStarted(job_id=job_id, provider=msg.sender, review_deadline=review_deadline)


# ---------------------------------------------------------------- settlement


@internal
def _pay_slot(job_id: uint256, slot: uint256, a: Assignment, max_hours: uint256) -> uint256:
    """Record the payment of an assignment (state only) and return its amount."""
    # Never more time than passed between assignment and commitment, nor max_hours. The
    # chain's clock counts whole seconds: work committed within the second it was assigned
    # ran for up to one, which is what the runner claims for it.
    elapsed: uint256 = max(a.committed_at - a.assigned_at, 1)
    seconds: uint256 = min(min(a.seconds_used, elapsed), max_hours * 3600)
    amount: uint256 = seconds * a.price_per_hour // 3600
    self._assignments[job_id][slot].paid = amount
    extcall PROVIDERS.release(job_id, a.provider, OUTCOME_PAID)
    log ProviderPaid(job_id=job_id, provider=a.provider, seconds=seconds, amount=amount)
    return amount


@internal
@view
def _tiebreak_over(job_id: uint256, job: Job) -> bool:
    if self._tiebreak_revealed(job_id, job.redundancy):
        return True
    if job.reveal_deadline != 0:
        # The tie-break provider committed: its reveal window.
        return block.timestamp >= job.reveal_deadline
    return block.timestamp >= job.deadline


@internal
def _settle_dispute(job_id: uint256, job: Job):
    """End a disputed k = 1 job by the re-execution (slot 1), if it revealed a result:
    a different hash proves the requester right, the same hash the provider."""
    slots: DynArray[Assignment, MAX_SLOTS] = self._assignments[job_id]
    a: Assignment = slots[0]
    bond: uint256 = job.max_price_per_hour * job.max_hours
    check_pay: uint256 = 0
    compensation: uint256 = 0
    evidence: bool = False
    if len(slots) > 1:
        if slots[1].revealed:
            evidence = True
            check_pay = self._pay_slot(job_id, 1, slots[1], job.max_hours)
        else:
            compensation = extcall PROVIDERS.release(job_id, slots[1].provider, SLASH_NO_RESULT)
    requester_right: bool = evidence and slots[1].output_hash != a.output_hash
    provider_pay: uint256 = 0
    if requester_right:
        compensation += extcall PROVIDERS.release(job_id, a.provider, SLASH_REJECTED)
    else:
        provider_pay = self._pay_slot(job_id, 0, a, job.max_hours)
        if evidence:
            # The false dispute's bond, less the re-execution it paid, to the provider.
            provider_pay += bond - check_pay
            self._assignments[job_id][0].paid = provider_pay
    refund: uint256 = job.escrow - check_pay - provider_pay
    self._jobs[job_id].escrow = 0
    self.escrowed -= job.escrow
    log DisputeSettled(
        job_id=job_id, requester_right=requester_right, evidence=evidence, provider_paid=provider_pay
    )
    if requester_right:
        self._jobs[job_id].status = STATUS_REJECTED
        log JobRejected(
            job_id=job_id, requester=job.requester, refund=refund, compensation=compensation
        )
    else:
        self._jobs[job_id].status = STATUS_COMPLETED
        self._jobs[job_id].result_hash = a.output_hash
        log JobCompleted(
            job_id=job_id,
            requester=job.requester,
            result_hash=a.output_hash,
            paid=provider_pay + check_pay,
            refund=refund,
            compensation=compensation,
        )
    self._pay(a.provider, provider_pay)
    if len(slots) > 1:
        self._pay(slots[1].provider, check_pay)
    self._pay(job.requester, refund + compensation)


@internal
def _settle_all(job_id: uint256, job: Job):
    """Count every revealed result of a k >= 2 job. A strict majority: COMPLETED. A tie
    in the first round before the deadline: TIEBREAK. Otherwise DISPUTED. A disputed
    k = 1 job: by its re-execution (_settle_dispute)."""
    if job.redundancy == 1:
        self._settle_dispute(job_id, job)
        return
    slots: DynArray[Assignment, MAX_SLOTS] = self._assignments[job_id]
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

    if not majority and job.status == STATUS_ASSIGNED and block.timestamp < job.deadline:
        bid_deadline: uint256 = block.timestamp + BID_WINDOW
        self._jobs[job_id].status = STATUS_TIEBREAK
        self._jobs[job_id].bid_deadline = bid_deadline
        self._jobs[job_id].reveal_deadline = 0
        self._bids[job_id] = []
        log TieBreakStarted(job_id=job_id, requester=job.requester, bid_deadline=bid_deadline)
        return

    paid: uint256 = 0
    compensation: uint256 = 0
    payouts: DynArray[uint256, MAX_SLOTS] = []
    for i: uint256 in range(MAX_SLOTS):
        if i >= len(slots):
            break
        a: Assignment = slots[i]
        amount: uint256 = 0
        if not a.revealed:
            compensation += extcall PROVIDERS.release(job_id, a.provider, SLASH_NO_RESULT)
        elif majority and a.output_hash == best:
            amount = self._pay_slot(job_id, i, a, job.max_hours)
            paid += amount
        elif majority:
            compensation += extcall PROVIDERS.release(job_id, a.provider, SLASH_WRONG_RESULT)
        else:
            extcall PROVIDERS.release(job_id, a.provider, OUTCOME_NONE)
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

    for i: uint256 in range(MAX_SLOTS):
        if i >= len(slots):
            break
        self._pay(slots[i].provider, payouts[i])
    self._pay(job.requester, refund + compensation)


@external
@nonreentrant
def settle(job_id: uint256):
    """
    @notice Settle a job with k >= 2 (anyone). ASSIGNED: once every assigned provider
            revealed or the reveal window ended with at least one reveal. TIEBREAK: once
            the tie-break provider revealed, or its reveal window ended, or the deadline
            passed without its commitment. A strict majority of the revealed output
            hashes is paid; the rest, and non-revealers, are slashed. No majority: a
            tie-break if the first round tied before the deadline, else DISPUTED, escrow
            refunded, only non-revealers slashed.
    """
    job: Job = self._jobs[job_id]
    self._req(job.status != STATUS_NONE, "settle: unknown job")
    if job.status == STATUS_TIEBREAK:
        self._req(self._tiebreak_over(job_id, job), "settle: tie-break still running")
    else:
        self._req(job.status == STATUS_ASSIGNED, "settle: job not running")
        self._req(job.redundancy >= 2, "settle: single-provider job")
        self._req(job.reveals != 0, "settle: nothing revealed")
        self._req((
            job.reveals == job.redundancy or block.timestamp >= self._reveal_deadline(job)
        ), "settle: reveals still open")
    self._settle_all(job_id, job)


@internal
def _complete_single(job_id: uint256, job: Job):
    a: Assignment = self._assignments[job_id][0]
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
    self._req(job.status != STATUS_NONE, "accept: unknown job")
    self._req(job.requester == msg.sender, "accept: caller is not the requester")
    self._req(job.status == STATUS_REVIEW, "accept: job not under review")
    self._complete_single(job_id, job)


@external
@nonreentrant
def finalize(job_id: uint256):
    """
    @notice Accept a k = 1 job's result once its dispute window is over (anyone).
    """
    job: Job = self._jobs[job_id]
    self._req(job.status != STATUS_NONE, "finalize: unknown job")
    self._req(job.status == STATUS_REVIEW, "finalize: job not under review")
    self._req(block.timestamp >= job.review_deadline, "finalize: dispute window open")
    self._complete_single(job_id, job)


@external
@nonreentrant
def dispute(job_id: uint256):
    """
    @notice Challenge a k = 1 job's result within the dispute window (requester only),
            posting a bond of `max_price_per_hour * max_hours` (the caller must have
            approved this contract for it). Another staked provider re-executes the job,
            picked by the tie-break auction (status TIEBREAK, slot 1); see the contract
            notice for who pays whom.
    """
    job: Job = self._jobs[job_id]
    self._req(job.status != STATUS_NONE, "dispute: unknown job")
    self._req(job.requester == msg.sender, "dispute: caller is not the requester")
    self._req(job.status == STATUS_REVIEW, "dispute: job not under review")
    self._req(block.timestamp < job.review_deadline, "dispute: dispute window over")
    bond: uint256 = job.max_price_per_hour * job.max_hours
    bid_deadline: uint256 = block.timestamp + BID_WINDOW
    # The re-execution gets the whole hour cap after its auction, past the old deadline.
    deadline: uint256 = max(job.deadline, bid_deadline + job.max_hours * 3600)
    self._jobs[job_id].status = STATUS_TIEBREAK
    self._jobs[job_id].escrow = job.escrow + bond
    self._jobs[job_id].bid_deadline = bid_deadline
    self._jobs[job_id].deadline = deadline
    self._jobs[job_id].reveal_deadline = 0
    self._bids[job_id] = []
    self.escrowed += bond
    log DisputeOpened(job_id=job_id, requester=msg.sender, bond=bond, deadline=deadline)
    log TieBreakStarted(job_id=job_id, requester=msg.sender, bid_deadline=bid_deadline)
    self._pull(msg.sender, bond)


@external
@nonreentrant
def expire(job_id: uint256):
    """
    @notice End a job that can no longer produce a result (anyone, from its deadline on):
            an OPEN job, or an ASSIGNED one with nothing revealed once the commit phase
            (and, if anyone committed, the reveal window) is over: the requester gets the
            escrow back and every assigned provider is slashed and counted failed. A
            TIEBREAK job whose tie-break provider revealed nothing (none assigned, or its
            reveal window over) ends DISPUTED, exactly as `settle` would end it.
    """
    job: Job = self._jobs[job_id]
    self._req(job.status != STATUS_NONE, "expire: unknown job")
    self._req((
        job.status == STATUS_OPEN or job.status == STATUS_ASSIGNED or job.status == STATUS_TIEBREAK
    ), "expire: job not running")
    self._req(block.timestamp >= job.deadline, "expire: deadline not reached")
    if job.status != STATUS_OPEN:
        revealed: bool = job.reveals != 0
        committed: bool = job.commits != 0
        if job.status == STATUS_TIEBREAK:
            # Only the tie-break provider's result counts here (the first round tied).
            revealed = self._tiebreak_revealed(job_id, job.redundancy)
            committed = job.reveal_deadline != 0
        self._req(not revealed, "expire: a result was revealed (settle it)")
        self._req((
            not committed or block.timestamp >= self._reveal_deadline(job)
        ), "expire: reveal window open")
    if job.status == STATUS_TIEBREAK:
        # As settle would end it: DISPUTED, non-revealers slashed, escrow refunded.
        self._settle_all(job_id, job)
        return
    compensation: uint256 = 0
    if job.status == STATUS_ASSIGNED:
        for a: Assignment in self._assignments[job_id]:
            compensation += extcall PROVIDERS.release(job_id, a.provider, SLASH_NO_RESULT)
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
    @notice A job's bids of its current (or last) auction round, in the order they were
            placed: a tie-break starts a new round with no bids.
    """
    return self._bids[job_id]


@view
@external
def job_assignments(job_id: uint256) -> DynArray[Assignment, MAX_SLOTS]:
    """
    @notice A job's winners by slot (empty before its auction closes); slot k, if any,
            is the tie-break provider.
    """
    return self._assignments[job_id]


@view
@external
def reveal_deadline(job_id: uint256) -> uint256:
    """
    @notice When the job's reveal phase ends (as things stand: it moves earlier when the
            last commitment arrives before the deadline).
    """
    return self._reveal_deadline(self._jobs[job_id])


@view
@external
def job_datasets(job_id: uint256) -> (DynArray[bytes32, MAX_DATASETS], uint256):
    """
    @notice The datasets a job computes on and the DataMarket purpose of its grants
            (empty and 0 for a job without data).
    """
    return self._datasets[job_id], self._purpose[job_id]
