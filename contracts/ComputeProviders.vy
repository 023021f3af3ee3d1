# pragma version ~=0.4.3
# pragma optimize codesize
"""
@title ailedger compute providers: stakes, offers and reputation
@notice The provider side of the compute market (`ComputeMarket.vy`), kept in its own
        contract so that each stays well under the EIP-170 code size limit.

        Providers stake tokens (`register_provider`, `add_stake`) and advertise one
        machine (`post_offer`). An offer with `confined = False` declares on chain that
        the machine cannot sandbox jobs, so a requester (or a data owner, through the
        requester's job) can exclude it with `require_confined`.

        The one market bound to this contract (`bind_market`, once, by the deployer)
        asks it whether a bidder is eligible (`check_bidder`, `standing`), locks a
        provider's whole stake while it has an unfinished assignment (`lock`) and ends
        each assignment (`release`) with its outcome: paid (`completed` += 1), slashed
        as wrong or rejected (`slashed` += 1), slashed for revealing nothing
        (`failed` += 1), or neither. Slashing takes `slash_fraction_bps` / 10000 of the
        provider's stake at that moment and sends it to the market, which passes it to
        the job's requester. Reputation is completed - failed - 2 * slashed.

        Events: ProviderRegistered, StakeAdded, StakeWithdrawn, OfferPosted,
        ProviderSlashed (reason 1 or 2: slashed += 1; reason 3: failed += 1). Paid
        assignments are the market's ProviderPaid events.
@dev Token calls must return True. The token balance of this contract is at least
     `total_staked`. Every state-changing function is @nonreentrant and changes state
     before any token call.
"""

from ethereum.ercs import IERC20

# How an assignment ended (`release`): 1..3 are the market's slash reasons.
OUTCOME_NONE: public(constant(uint8)) = 0
SLASH_WRONG_RESULT: public(constant(uint8)) = 1  # minority result (k >= 2)
SLASH_REJECTED: public(constant(uint8)) = 2  # lost a k = 1 dispute
SLASH_NO_RESULT: public(constant(uint8)) = 3  # assigned, revealed nothing
OUTCOME_PAID: public(constant(uint8)) = 4
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


event ProviderSlashed:
    job_id: indexed(uint256)
    provider: indexed(address)
    amount: uint256
    reason: uint8
    stake: uint256


event MarketBound:
    market: indexed(address)


TOKEN: public(immutable(IERC20))
MIN_STAKE: public(immutable(uint256))
SLASH_FRACTION_BPS: public(immutable(uint256))
DEPLOYER: immutable(address)

# The market allowed to lock, pay and slash; set once after both are deployed.
market: public(address)
_providers: HashMap[address, Provider]
_offers: HashMap[address, Offer]
total_staked: public(uint256)


@deploy
def __init__(token: address, min_stake: uint256, slash_fraction_bps: uint256):
    """
    @param min_stake Least stake (token units) a provider needs to bid; must be > 0.
    @param slash_fraction_bps Share of a provider's stake taken per slash, in 1/10000.
    """
    assert token.is_contract, "init: token is not a contract"
    assert min_stake != 0, "init: min stake is zero"
    assert slash_fraction_bps <= BPS, "init: slash fraction above 100%"
    TOKEN = IERC20(token)
    MIN_STAKE = min_stake
    SLASH_FRACTION_BPS = slash_fraction_bps
    DEPLOYER = msg.sender


@external
def bind_market(market: address):
    """
    @notice Name the compute market (deployer only, once).
    """
    assert msg.sender == DEPLOYER, "bind: caller is not the deployer"
    assert self.market == empty(address), "bind: already bound"
    assert market.is_contract, "bind: market is not a contract"
    self.market = market
    log MarketBound(market=market)


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
    assert extcall TOKEN.transferFrom(msg.sender, self, stake), "token: transferFrom failed"


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
    assert extcall TOKEN.transferFrom(msg.sender, self, amount), "token: transferFrom failed"


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
    assert extcall TOKEN.transfer(msg.sender, amount), "token: transfer failed"


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


# ---------------------------------------------------------------- for the market


@view
@external
def check_bidder(
    provider: address,
    cpu_cores: uint256,
    ram_mb: uint256,
    gpu_mem_mb: uint256,
    require_confined: bool,
    min_reputation: int256,
) -> bool:
    """
    @notice True, or a revert with the market's `bid:` reason: whether `provider` may bid on a job
            with these needs: registered, staked at least MIN_STAKE, an offer with the
            resources (and confinement, if required), reputation at least the minimum.
    """
    p: Provider = self._providers[provider]
    assert p.registered, "bid: not a provider"
    assert p.stake >= MIN_STAKE, "bid: stake below minimum"
    offer: Offer = self._offers[provider]
    assert offer.posted, "bid: no offer"
    assert (
        offer.cpu_cores >= cpu_cores and offer.ram_mb >= ram_mb and offer.gpu_mem_mb >= gpu_mem_mb
    ), "bid: offer lacks resources"
    assert offer.confined or not require_confined, "bid: machine not confined"
    assert self._reputation(provider) >= min_reputation, "bid: reputation too low"
    return True


@view
@external
def standing(provider: address) -> (bool, int256):
    """
    @notice Whether `provider` is still staked at least MIN_STAKE, and its reputation:
            what the market's auction ranks bids by.
    """
    return self._providers[provider].stake >= MIN_STAKE, self._reputation(provider)


@external
@nonreentrant
def lock(provider: address):
    """
    @notice The market assigned `provider` to a job: its stake stays locked until release.
    """
    assert msg.sender == self.market, "providers: caller is not the market"
    self._providers[provider].active_jobs += 1


@external
@nonreentrant
def release(job_id: uint256, provider: address, outcome: uint8) -> uint256:
    """
    @notice End one of `provider`'s assignments (market only) with `outcome`: paid,
            slashed for a reason (the slashed tokens go to the market), or neither.
    @return The tokens slashed (0 unless slashed).
    """
    assert msg.sender == self.market, "providers: caller is not the market"
    self._providers[provider].active_jobs -= 1
    if outcome == OUTCOME_PAID:
        self._providers[provider].completed += 1
    if outcome == OUTCOME_NONE or outcome == OUTCOME_PAID:
        return 0
    stake: uint256 = self._providers[provider].stake
    amount: uint256 = stake * SLASH_FRACTION_BPS // BPS
    self._providers[provider].stake = stake - amount
    self.total_staked -= amount
    if outcome == SLASH_NO_RESULT:
        self._providers[provider].failed += 1
    else:
        self._providers[provider].slashed += 1
    log ProviderSlashed(
        job_id=job_id, provider=provider, amount=amount, reason=outcome, stake=stake - amount
    )
    if amount != 0:
        assert extcall TOKEN.transfer(msg.sender, amount), "token: transfer failed"
    return amount


# ---------------------------------------------------------------- views


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
