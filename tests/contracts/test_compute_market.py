"""ComputeMarket.vy: providers and stakes, jobs, the reverse auction, commit-reveal
results, settlement (majority, review, dispute, expiry), reentrancy, gas, and a stateful
model check.

Contracts are loaded from the very files ``ailedger.chain.compiler`` compiles, with the
same EVM version (Shanghai: the reentrancy lock lives in storage).
"""

from __future__ import annotations

import functools
from collections import Counter
from pathlib import Path
from typing import Any

import boa
import pytest
from boa.contracts.vyper.vyper_contract import VyperContract, VyperDeployer
from eth_utils import keccak
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from ailedger.chain.compiler import EVM_VERSION, source_path

UNIT = 10**18
SUPPLY = 10_000_000 * UNIT
MIN_STAKE = 100 * UNIT
BID_WINDOW = 600
REVEAL_WINDOW = 3600
DISPUTE_WINDOW = 86400
SLASH_BPS = 5000
HOUR = 3600
DAY = 86400
PRICE = 2 * UNIT
ZERO_ADDR = "0x" + "00" * 20
ZERO32 = b"\x00" * 32
BUNDLE = b"\xbb" * 32
OUT = b"\x0a" * 32
BAD = b"\x0b" * 32
SALT = b"\x5a" * 32

NONE, OPEN, ASSIGNED, REVIEW, COMPLETED, DISPUTED, REJECTED, CANCELLED, EXPIRED, TIEBREAK = range(
    10
)
WRONG, REJECTED_SLASH, NO_RESULT = 1, 2, 3
MAX_UINT = 2**256 - 1


@functools.cache
def _deployer(name: str) -> VyperDeployer:
    return boa.load_partial(str(source_path(name)), compiler_args={"evm_version": EVM_VERSION})


def _now() -> int:
    return int(boa.env.evm.patch.timestamp)


def _commitment(output: bytes, salt: bytes = SALT) -> bytes:
    return keccak(output + salt)


# Each market's ComputeProviders, by market address (the same object, so its get_logs()
# shows its last call).
_REGISTRIES: dict[str, VyperContract] = {}


def _deploy_market(token: str, slash_bps: int = SLASH_BPS) -> VyperContract:
    """A market with its own DataMarket, ComputePolicy and ComputeProviders (reachable
    through DATA_MARKET(), COMPUTE_POLICY() and _reg(market))."""
    data = _deployer("DataMarket").deploy(token)
    policy = _deployer("ComputePolicy").deploy(data.address)
    registry = _deployer("ComputeProviders").deploy(token, MIN_STAKE, slash_bps)
    market = _deployer("ComputeMarket").deploy(
        token,
        data.address,
        policy.address,
        registry.address,
        BID_WINDOW,
        REVEAL_WINDOW,
        DISPUTE_WINDOW,
    )
    registry.bind_market(market.address)
    _REGISTRIES[str(market.address)] = registry
    return market


def _reg(market: VyperContract) -> VyperContract:
    """The market's ComputeProviders: stakes, offers, reputation."""
    return _REGISTRIES[str(market.address)]


@pytest.fixture
def token() -> VyperContract:
    return _deployer("Token").deploy(SUPPLY)


@pytest.fixture
def market(token: VyperContract) -> VyperContract:
    return _deploy_market(token.address)


def _fund(
    token: VyperContract, market: VyperContract, who: Any, amount: int = 10_000 * UNIT
) -> None:
    token.transfer(who, amount)
    with boa.env.prank(who):
        token.approve(market.address, MAX_UINT)
        token.approve(_reg(market).address, MAX_UINT)


@pytest.fixture
def alice(token: VyperContract, market: VyperContract) -> Any:
    """A funded requester with an unlimited approval."""
    account = boa.env.generate_address("alice")
    _fund(token, market, account)
    return account


def _provider(
    token: VyperContract,
    market: VyperContract,
    name: str,
    stake: int = 2 * MIN_STAKE,
    cpu: int = 16,
    ram: int = 65536,
    gpu: str = "H100",
    gpu_mem: int = 81920,
    confined: bool = True,
) -> Any:
    account = boa.env.generate_address(name)
    _fund(token, market, account)
    with boa.env.prank(account):
        _reg(market).register_provider(stake)
        _reg(market).post_offer(cpu, ram, gpu, gpu_mem, PRICE, confined)
    return account


@pytest.fixture
def providers(token: VyperContract, market: VyperContract) -> list[Any]:
    return [_provider(token, market, f"prov{i}") for i in range(5)]


def _post(market: VyperContract, who: Any, **kw: Any) -> int:
    args = {
        "bundle_hash": BUNDLE,
        "cpu_cores": 8,
        "ram_mb": 32768,
        "gpu_mem_mb": 40960,
        "max_price_per_hour": 3 * UNIT,
        "max_hours": 10,
        "deadline": _now() + DAY,
        "redundancy": 1,
        "min_reputation": 0,
        "require_confined": True,
        "datasets": [],
        "grant_ids": [],
        "purpose": 0,
    }
    args.update(kw)
    with boa.env.prank(who):
        job_id: int = market.post_job(*args.values())
    return job_id


def _bid(market: VyperContract, who: Any, job_id: int, price: int = PRICE) -> None:
    with boa.env.prank(who):
        market.bid(job_id, price)


def _close(market: VyperContract, job_id: int) -> None:
    boa.env.time_travel(seconds=BID_WINDOW)
    market.close_auction(job_id)


def _commit(market: VyperContract, who: Any, job_id: int, output: bytes = OUT) -> None:
    with boa.env.prank(who):
        market.commit_result(job_id, _commitment(output))


def _reveal(
    market: VyperContract, who: Any, job_id: int, output: bytes = OUT, hours: int = 4
) -> None:
    """Reveal, claiming ``hours`` of work (in seconds, as the contract bills)."""
    with boa.env.prank(who):
        market.reveal_result(job_id, output, SALT, hours * HOUR)


def _assigned_job(
    market: VyperContract, alice: Any, provs: list[Any], k: int, work: int = 0, **kw: Any
) -> int:
    """A job won by the first k providers, ``work`` seconds after its auction closed."""
    job_id = _post(market, alice, redundancy=k, **kw)
    for p in provs[:k]:
        _bid(market, p, job_id)
    _close(market, job_id)
    boa.env.time_travel(seconds=work)
    return job_id


def _names(logs: list[Any]) -> list[str]:
    return [type(log).__name__ for log in logs]


def _by_name(logs: list[Any], name: str) -> list[Any]:
    return [log for log in logs if type(log).__name__ == name]


# ---------------------------------------------------------------- construction


def test_constructor(market: VyperContract, token: VyperContract) -> None:
    assert market.TOKEN() == token.address
    assert market.COMPUTE_POLICY() != market.DATA_MARKET() != token.address
    assert (_reg(market).MIN_STAKE(), market.BID_WINDOW(), market.REVEAL_WINDOW()) == (
        MIN_STAKE,
        BID_WINDOW,
        REVEAL_WINDOW,
    )
    assert (market.DISPUTE_WINDOW(), _reg(market).SLASH_FRACTION_BPS()) == (
        DISPUTE_WINDOW,
        SLASH_BPS,
    )
    assert (market.job_count(), market.escrowed(), _reg(market).total_staked()) == (0, 0, 0)
    assert (market.MAX_REDUNDANCY(), market.MAX_BIDS()) == (5, 32)
    assert (market.MAX_SLOTS(), market.MAX_DATASETS(), market.STATUS_TIEBREAK()) == (6, 4, 9)


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ((0, 1, 1), "init: bad bid window"),
        ((366 * DAY, 1, 1), "init: bad bid window"),
        ((1, 0, 1), "init: bad reveal window"),
        ((1, 1, 0), "init: bad dispute window"),
    ],
)
def test_constructor_refusals(token: VyperContract, args: tuple[int, ...], reason: str) -> None:
    with boa.reverts(reason):
        _deployer("ComputeMarket").deploy(
            token.address, token.address, token.address, token.address, *args
        )


@pytest.mark.parametrize(
    ("args", "reason"),
    [((0, 0), "init: min stake is zero"), ((1, 10_001), "init: slash fraction above 100%")],
)
def test_providers_constructor_refusals(
    token: VyperContract, args: tuple[int, ...], reason: str
) -> None:
    with boa.reverts(reason):
        _deployer("ComputeProviders").deploy(token.address, *args)


@pytest.mark.parametrize(
    ("which", "reason"),
    [
        (0, "init: token is not a contract"),
        (1, "init: data market is not a contract"),
        (2, "init: compute policy is not a contract"),
        (3, "init: providers is not a contract"),
    ],
)
def test_constructor_rejects_non_contracts(token: VyperContract, which: int, reason: str) -> None:
    addresses = [token.address] * 4
    addresses[which] = boa.env.generate_address("eoa")
    with boa.reverts(reason):
        _deployer("ComputeMarket").deploy(*addresses, 1, 1, 1)


def test_only_the_bound_market_locks_pays_and_slashes(
    market: VyperContract, token: VyperContract, providers: list[Any]
) -> None:
    """Stakes move only by their owner or the one market bound by the deployer."""
    registry = _reg(market)
    assert registry.market() == market.address
    with boa.reverts("bind: already bound"):
        registry.bind_market(market.address)
    fresh = _deployer("ComputeProviders").deploy(token.address, MIN_STAKE, SLASH_BPS)
    with boa.env.prank(providers[0]), boa.reverts("bind: caller is not the deployer"):
        fresh.bind_market(market.address)
    with boa.reverts("bind: market is not a contract"):
        fresh.bind_market(providers[0])
    with boa.env.prank(providers[1]), boa.reverts("providers: caller is not the market"):
        registry.release(1, providers[0], 3)
    with boa.env.prank(providers[1]), boa.reverts("providers: caller is not the market"):
        registry.lock(providers[0])
    assert registry.provider_info(providers[0]).stake == 2 * MIN_STAKE


# ---------------------------------------------------------------- providers


def test_register_offer_stake(market: VyperContract, token: VyperContract) -> None:
    p = boa.env.generate_address("p")
    _fund(token, market, p)
    with boa.env.prank(p), boa.reverts("offer: not a provider"):
        _reg(market).post_offer(8, 1024, "", 0, PRICE, True)
    with boa.env.prank(p), boa.reverts("register: stake below minimum"):
        _reg(market).register_provider(MIN_STAKE - 1)
    with boa.env.prank(p):
        _reg(market).register_provider(MIN_STAKE)
    [log] = _by_name(_reg(market).get_logs(), "ProviderRegistered")
    assert (log.provider, log.stake) == (p, MIN_STAKE)
    assert token.balanceOf(_reg(market).address) == MIN_STAKE == _reg(market).total_staked()
    with boa.env.prank(p), boa.reverts("register: already registered"):
        _reg(market).register_provider(MIN_STAKE)
    with boa.env.prank(p), boa.reverts("offer: no cpu cores"):
        _reg(market).post_offer(0, 1024, "", 0, PRICE, True)
    with boa.env.prank(p):
        _reg(market).post_offer(8, 1024, "RTX 4090", 24576, PRICE, False)
    [log] = _reg(market).get_logs()
    assert (log.provider, log.cpu_cores, log.ram_mb, log.gpu_model) == (p, 8, 1024, "RTX 4090")
    assert (log.gpu_mem_mb, log.price_per_hour, log.confined) == (24576, PRICE, False)
    offer = _reg(market).offer_info(p)
    assert (offer.cpu_cores, offer.gpu_model, offer.confined, offer.posted) == (
        8,
        "RTX 4090",
        False,
        True,
    )
    with boa.env.prank(p):
        _reg(market).add_stake(5 * UNIT)
    [log] = _by_name(_reg(market).get_logs(), "StakeAdded")
    assert (log.provider, log.amount, log.stake) == (p, 5 * UNIT, MIN_STAKE + 5 * UNIT)
    with boa.env.prank(p), boa.reverts("add_stake: amount is zero"):
        _reg(market).add_stake(0)
    with boa.env.prank(p), boa.reverts("withdraw: amount exceeds stake"):
        _reg(market).withdraw_stake(MIN_STAKE + 5 * UNIT + 1)
    with boa.env.prank(p), boa.reverts("withdraw: amount is zero"):
        _reg(market).withdraw_stake(0)
    before = token.balanceOf(p)
    with boa.env.prank(p):
        _reg(market).withdraw_stake(MIN_STAKE)
    [log] = _by_name(_reg(market).get_logs(), "StakeWithdrawn")
    assert (log.provider, log.amount, log.stake) == (p, MIN_STAKE, 5 * UNIT)
    assert token.balanceOf(p) == before + MIN_STAKE
    info = _reg(market).provider_info(p)
    assert (info.registered, info.stake, info.active_jobs) == (True, 5 * UNIT, 0)
    assert _reg(market).total_staked() == 5 * UNIT
    stranger = boa.env.generate_address("stranger")
    with boa.env.prank(stranger), boa.reverts("withdraw: not a provider"):
        _reg(market).withdraw_stake(1)
    with boa.env.prank(stranger), boa.reverts("add_stake: not a provider"):
        _reg(market).add_stake(1)


def test_register_insufficient_allowance_and_balance(
    market: VyperContract, token: VyperContract
) -> None:
    p = boa.env.generate_address("poor")
    token.transfer(p, MIN_STAKE - 1)
    with boa.env.prank(p), boa.reverts("transferFrom: amount exceeds allowance"):
        _reg(market).register_provider(MIN_STAKE)
    with boa.env.prank(p):
        token.approve(_reg(market).address, MIN_STAKE)
    with boa.env.prank(p), boa.reverts("transfer: amount exceeds balance"):
        _reg(market).register_provider(MIN_STAKE)
    assert _reg(market).provider_info(p).registered is False
    assert _reg(market).total_staked() == 0


def test_withdraw_locked_while_assigned(
    market: VyperContract, alice: Any, providers: list[Any]
) -> None:
    job_id = _assigned_job(market, alice, providers, 1)
    p = providers[0]
    assert _reg(market).provider_info(p).active_jobs == 1
    with boa.env.prank(p), boa.reverts("withdraw: stake locked by active jobs"):
        _reg(market).withdraw_stake(1)
    _commit(market, p, job_id)
    _reveal(market, p, job_id)
    with boa.env.prank(alice):
        market.accept(job_id)
    assert _reg(market).provider_info(p).active_jobs == 0
    with boa.env.prank(p):
        _reg(market).withdraw_stake(1)


# ---------------------------------------------------------------- posting and cancelling


def test_post_job_escrows_and_logs(market: VyperContract, token: VyperContract, alice: Any) -> None:
    before = token.balanceOf(alice)
    deadline = _now() + DAY
    job_id = _post(market, alice, redundancy=3, deadline=deadline, min_reputation=-2)
    assert job_id == 1
    escrow = 3 * UNIT * 10 * (3 + 1)  # k shares and the tie-break reserve
    [log] = _by_name(market.get_logs(), "JobPosted")
    assert (log.job_id, log.requester, log.bundle_hash, log.cpu_cores) == (1, alice, BUNDLE, 8)
    assert (log.ram_mb, log.gpu_mem_mb, log.max_price_per_hour, log.max_hours) == (
        32768,
        40960,
        3 * UNIT,
        10,
    )
    assert (log.deadline, log.redundancy, log.min_reputation, log.require_confined) == (
        deadline,
        3,
        -2,
        True,
    )
    assert (log.escrow, log.bid_deadline) == (escrow, _now() + BID_WINDOW)
    assert (log.datasets, log.grant_ids, log.purpose) == ([], [], 0)
    assert market.job_datasets(job_id) == ([], 0)
    assert token.balanceOf(alice) == before - escrow
    assert market.escrowed() == escrow == token.balanceOf(market.address)
    job = market.job_info(job_id)
    assert (job.requester, job.status, job.escrow, job.redundancy) == (alice, OPEN, escrow, 3)
    assert _post(market, alice) == 2 == market.job_count()


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"bundle_hash": ZERO32}, "post: bundle hash is zero"),
        ({"redundancy": 0}, "post: redundancy not in 1..5"),
        ({"redundancy": 6}, "post: redundancy not in 1..5"),
        ({"max_price_per_hour": 0}, "post: max price is zero"),
        ({"max_hours": 0}, "post: bad max hours"),
        ({"max_hours": 5 * 365 * 24 + 1}, "post: bad max hours"),
        ({"deadline": 0}, "post: deadline before bidding ends"),
        ({"deadline": "bid_end"}, "post: deadline before bidding ends"),
        ({"deadline": "far"}, "post: deadline too far"),
        ({"datasets": [b"\x01" * 32], "grant_ids": []}, "post: one grant id per dataset"),
        ({"datasets": [], "grant_ids": [1]}, "post: one grant id per dataset"),
    ],
)
def test_post_job_refusals(
    market: VyperContract, token: VyperContract, alice: Any, kw: dict[str, Any], reason: str
) -> None:
    if kw.get("deadline") == "bid_end":
        kw = {"deadline": _now() + BID_WINDOW}
    elif kw.get("deadline") == "far":
        kw = {"deadline": _now() + 5 * 365 * DAY + 1}
    with boa.reverts(reason):
        _post(market, alice, **kw)
    assert market.job_count() == 0
    assert token.balanceOf(market.address) == 0


def test_post_job_insufficient_allowance(market: VyperContract, token: VyperContract) -> None:
    bob = boa.env.generate_address("bob")
    token.transfer(bob, 1000 * UNIT)
    with boa.env.prank(bob):
        token.approve(market.address, 30 * UNIT - 1)
    with boa.reverts("transferFrom: amount exceeds allowance"):
        _post(market, bob)
    assert market.job_count() == 0 == market.escrowed()


def test_cancel_job(
    market: VyperContract, token: VyperContract, alice: Any, providers: list[Any]
) -> None:
    before = token.balanceOf(alice)
    job_id = _post(market, alice)
    _bid(market, providers[0], job_id)
    with boa.env.prank(providers[0]), boa.reverts("cancel: caller is not the requester"):
        market.cancel_job(job_id)
    with boa.env.prank(alice), boa.reverts("cancel: unknown job"):
        market.cancel_job(99)
    boa.env.time_travel(seconds=BID_WINDOW)  # window over but auction not closed: still ok
    with boa.env.prank(alice):
        market.cancel_job(job_id)
    [log] = _by_name(market.get_logs(), "JobCancelled")
    assert (log.job_id, log.requester, log.paid, log.refund) == (job_id, alice, 0, 30 * UNIT)
    assert token.balanceOf(alice) == before
    assert market.job_info(job_id).status == CANCELLED
    assert market.escrowed() == 0
    with boa.env.prank(alice), boa.reverts("cancel: job has ended"):
        market.cancel_job(job_id)
    with boa.reverts("close: job not open"):
        market.close_auction(job_id)


def test_cancel_after_a_reveal_refused(
    market: VyperContract, alice: Any, providers: list[Any]
) -> None:
    job_id = _revealed_single(market, alice, providers)  # REVIEW
    with boa.env.prank(alice), boa.reverts("cancel: a result was revealed"):
        market.cancel_job(job_id)
    job_id = _assigned_job(market, alice, providers, 2)
    for p in providers[:2]:
        _commit(market, p, job_id)
    _reveal(market, providers[0], job_id)
    with boa.env.prank(alice), boa.reverts("cancel: a result was revealed"):
        market.cancel_job(job_id)


# ---------------------------------------------------------------- bidding


def test_bid_eligibility(market: VyperContract, token: VyperContract, alice: Any) -> None:
    ok = _provider(token, market, "ok")
    small_cpu = _provider(token, market, "cpu", cpu=4)
    small_ram = _provider(token, market, "ram", ram=1024)
    small_gpu = _provider(token, market, "gpu", gpu="", gpu_mem=0)
    loose = _provider(token, market, "loose", confined=False)
    job_id = _post(market, alice, min_reputation=0)
    cases = [
        (small_cpu, PRICE, "bid: offer lacks resources"),
        (small_ram, PRICE, "bid: offer lacks resources"),
        (small_gpu, PRICE, "bid: offer lacks resources"),
        (loose, PRICE, "bid: machine not confined"),
        (ok, 3 * UNIT + 1, "bid: price above maximum"),
        (alice, PRICE, "bid: requester cannot bid"),
        (boa.env.generate_address("nobody"), PRICE, "bid: not a provider"),
    ]
    for who, price, reason in cases:
        with boa.env.prank(who), boa.reverts(reason):
            market.bid(job_id, price)
    with boa.env.prank(ok), boa.reverts("bid: unknown job"):
        market.bid(99, PRICE)
    _bid(market, ok, job_id, 3 * UNIT)  # exactly the cap
    [log] = market.get_logs()
    assert (type(log).__name__, log.job_id, log.provider, log.price_per_hour, log.bid_index) == (
        "BidPlaced",
        job_id,
        ok,
        3 * UNIT,
        0,
    )
    with boa.env.prank(ok), boa.reverts("bid: already bid"):
        market.bid(job_id, PRICE)
    # An unconfined machine may bid on a job that does not require confinement.
    open_job = _post(market, alice, require_confined=False)
    _bid(market, loose, open_job)
    boa.env.time_travel(seconds=BID_WINDOW)
    with boa.env.prank(ok), boa.reverts("bid: bidding closed"):
        market.bid(open_job, PRICE)
    assert [(b.provider, b.price_per_hour) for b in market.job_bids(job_id)] == [(ok, 3 * UNIT)]


def test_bid_without_offer_or_stake(
    market: VyperContract, token: VyperContract, alice: Any
) -> None:
    p = boa.env.generate_address("nooffer")
    _fund(token, market, p)
    with boa.env.prank(p):
        _reg(market).register_provider(MIN_STAKE)
    job_id = _post(market, alice)
    with boa.env.prank(p), boa.reverts("bid: no offer"):
        market.bid(job_id, PRICE)
    with boa.env.prank(p):
        _reg(market).post_offer(64, 10**6, "H100", 10**6, PRICE, True)
        _reg(market).withdraw_stake(1)
    with boa.env.prank(p), boa.reverts("bid: stake below minimum"):
        market.bid(job_id, PRICE)
    with boa.env.prank(p):
        _reg(market).add_stake(1)
        market.bid(job_id, PRICE)


def test_bid_reputation(market: VyperContract, token: VyperContract, alice: Any) -> None:
    p = _provider(token, market, "rep")
    assert _reg(market).reputation(p) == 0
    # p fails a job (no result): failed = 1, reputation -1.
    job_id = _post(market, alice)
    _bid(market, p, job_id)
    _close(market, job_id)
    boa.env.time_travel(seconds=DAY)
    market.expire(job_id)
    assert _reg(market).reputation(p) == -1
    picky = _post(market, alice, min_reputation=0)
    with boa.env.prank(p), boa.reverts("bid: reputation too low"):
        market.bid(picky, PRICE)
    lenient = _post(market, alice, min_reputation=-1)
    _bid(market, p, lenient)
    with boa.env.prank(p), boa.reverts("bid: job not open"):
        market.bid(job_id, PRICE)


def test_bid_limit(market: VyperContract, token: VyperContract, alice: Any) -> None:
    job_id = _post(market, alice)
    for i in range(32):
        _bid(market, _provider(token, market, f"many{i}"), job_id)
    late = _provider(token, market, "late")
    with boa.env.prank(late), boa.reverts("bid: too many bids"):
        market.bid(job_id, PRICE)
    _close(market, job_id)
    assert market.job_assignments(job_id)[0].price_per_hour == PRICE


# ---------------------------------------------------------------- auction


def test_close_auction_picks_cheapest_then_reputation_then_earliest(
    market: VyperContract, token: VyperContract, alice: Any
) -> None:
    a, b, c, d, e = (_provider(token, market, n) for n in "abcde")
    # Give d a reputation of 1 (one completed single job).
    warm = _assigned_job(market, alice, [d], 1)
    _commit(market, d, warm)
    _reveal(market, d, warm)
    with boa.env.prank(alice):
        market.accept(warm)
    assert _reg(market).reputation(d) == 1

    job_id = _post(market, alice, redundancy=3)
    _bid(market, a, job_id, 2 * UNIT)
    _bid(market, b, job_id, UNIT)
    _bid(market, c, job_id, 2 * UNIT)
    _bid(market, d, job_id, 2 * UNIT)  # same price as a and c, better reputation
    _bid(market, e, job_id, 3 * UNIT)
    with boa.reverts("close: bidding still open"):
        market.close_auction(job_id)
    with boa.reverts("close: unknown job"):
        market.close_auction(99)
    before = token.balanceOf(alice)
    _close(market, job_id)
    logs = market.get_logs()
    slots = market.job_assignments(job_id)
    assert [(s.provider, s.price_per_hour) for s in slots] == [
        (b, UNIT),
        (d, 2 * UNIT),
        (a, 2 * UNIT),  # a before c: earlier bid
    ]
    assigned = _by_name(logs, "ProviderAssigned")
    assert [(x.provider, x.slot, x.price_per_hour) for x in assigned] == [
        (b, 0, UNIT),
        (d, 1, 2 * UNIT),
        (a, 2, 2 * UNIT),
    ]
    # The winners' cost at max_hours, plus the tie-break reserve (one share at the cap).
    needed = (UNIT + 2 * UNIT + 2 * UNIT) * 10 + 3 * UNIT * 10
    [closed] = _by_name(logs, "AuctionClosed")
    assert (closed.job_id, closed.requester, closed.escrow, closed.refund) == (
        job_id,
        alice,
        needed,
        120 * UNIT - needed,
    )
    assert token.balanceOf(alice) == before + 120 * UNIT - needed
    job = market.job_info(job_id)
    assert (job.status, job.escrow) == (ASSIGNED, needed)
    assert market.escrowed() == needed
    assert [_reg(market).provider_info(x).active_jobs for x in (a, b, c, d, e)] == [1, 1, 0, 1, 0]
    with boa.reverts("close: job not open"):
        market.close_auction(job_id)


def test_close_auction_with_too_few_bids_refunds(
    market: VyperContract, token: VyperContract, alice: Any, providers: list[Any]
) -> None:
    before = token.balanceOf(alice)
    job_id = _post(market, alice, redundancy=3)
    _bid(market, providers[0], job_id)
    _bid(market, providers[1], job_id)
    # providers[1] drops below the minimum stake before the auction closes: not counted.
    with boa.env.prank(providers[1]):
        _reg(market).withdraw_stake(2 * MIN_STAKE)
    _bid(market, providers[2], job_id)
    _close(market, job_id)
    [log] = _by_name(market.get_logs(), "AuctionFailed")
    assert (log.job_id, log.requester, log.eligible_bids, log.refund) == (
        job_id,
        alice,
        2,
        120 * UNIT,
    )
    assert token.balanceOf(alice) == before
    assert market.job_info(job_id).status == CANCELLED
    assert market.escrowed() == 0
    assert market.job_assignments(job_id) == []
    assert _reg(market).provider_info(providers[0]).active_jobs == 0


def test_close_auction_after_deadline_refused(
    market: VyperContract, alice: Any, providers: list[Any]
) -> None:
    job_id = _post(market, alice, deadline=_now() + BID_WINDOW + 10)
    _bid(market, providers[0], job_id)
    boa.env.time_travel(seconds=BID_WINDOW + 10)
    with boa.reverts("close: deadline passed (expire it)"):
        market.close_auction(job_id)
    market.expire(job_id)
    assert market.job_info(job_id).status == EXPIRED


# ---------------------------------------------------------------- commit / reveal


def test_commit_reveal_refusals(market: VyperContract, alice: Any, providers: list[Any]) -> None:
    p0, p1, outsider = providers[0], providers[1], providers[4]
    job_id = _assigned_job(market, alice, providers, 2)
    with boa.env.prank(outsider), boa.reverts("commit: caller not assigned"):
        market.commit_result(job_id, _commitment(OUT))
    with boa.env.prank(p0), boa.reverts("commit: unknown job"):
        market.commit_result(99, _commitment(OUT))
    with boa.env.prank(p0), boa.reverts("commit: commitment is zero"):
        market.commit_result(job_id, ZERO32)
    with boa.env.prank(p0), boa.reverts("reveal: nothing committed"):
        market.reveal_result(job_id, OUT, SALT, 1)
    _commit(market, p0, job_id)
    [log] = market.get_logs()
    assert (type(log).__name__, log.provider, log.commitment, log.reveal_deadline) == (
        "ResultCommitted",
        p0,
        _commitment(OUT),
        0,
    )
    with boa.env.prank(p0), boa.reverts("commit: already committed"):
        market.commit_result(job_id, _commitment(BAD))
    # Nobody reveals before everyone has committed (or the deadline).
    with boa.env.prank(p0), boa.reverts("reveal: commit phase still open"):
        market.reveal_result(job_id, OUT, SALT, 1)
    _commit(market, p1, job_id)
    [log] = market.get_logs()
    assert log.reveal_deadline == _now() + REVEAL_WINDOW
    assert market.reveal_deadline(job_id) == _now() + REVEAL_WINDOW
    with boa.env.prank(outsider), boa.reverts("reveal: caller not assigned"):
        market.reveal_result(job_id, OUT, SALT, 1)
    with boa.env.prank(p0), boa.reverts("reveal: does not match commitment"):
        market.reveal_result(job_id, BAD, SALT, 1)
    with boa.env.prank(p0), boa.reverts("reveal: does not match commitment"):
        market.reveal_result(job_id, OUT, b"\x01" * 32, 1)
    _reveal(market, p0, job_id, hours=3)
    [log] = market.get_logs()
    assert (type(log).__name__, log.provider, log.output_hash, log.seconds_used) == (
        "ResultRevealed",
        p0,
        OUT,
        3 * HOUR,
    )
    with boa.env.prank(p0), boa.reverts("reveal: already revealed"):
        market.reveal_result(job_id, OUT, SALT, 3)
    with boa.reverts("settle: reveals still open"):
        market.settle(job_id)
    boa.env.time_travel(seconds=REVEAL_WINDOW)
    with boa.env.prank(p1), boa.reverts("reveal: reveal window closed"):
        market.reveal_result(job_id, OUT, SALT, 1)


def test_commit_after_deadline_refused_and_late_reveal_opens(
    market: VyperContract, alice: Any, providers: list[Any]
) -> None:
    p0, p1 = providers[:2]
    job_id = _assigned_job(market, alice, providers, 2)
    deadline = market.job_info(job_id).deadline
    _commit(market, p0, job_id)
    assert market.reveal_deadline(job_id) == deadline + REVEAL_WINDOW
    boa.env.time_travel(seconds=deadline - _now())
    with boa.env.prank(p1), boa.reverts("commit: deadline passed"):
        market.commit_result(job_id, _commitment(OUT))
    with boa.reverts("expire: reveal window open"):
        market.expire(job_id)
    _reveal(market, p0, job_id)  # at the deadline the committed ones may reveal
    with boa.reverts("expire: a result was revealed (settle it)"):
        market.expire(job_id)


# ---------------------------------------------------------------- settlement, k >= 2


def test_k2_match_pays_both(
    market: VyperContract, token: VyperContract, alice: Any, providers: list[Any]
) -> None:
    p0, p1 = providers[:2]
    start = token.balanceOf(alice)
    job_id = _assigned_job(market, alice, providers, 2, work=11 * HOUR)
    for p in (p0, p1):
        _commit(market, p, job_id)
    _reveal(market, p0, job_id, hours=4)
    _reveal(market, p1, job_id, hours=99)  # capped at max_hours = 10
    b0, b1 = token.balanceOf(p0), token.balanceOf(p1)
    with boa.reverts("settle: unknown job"):
        market.settle(99)
    market.settle(job_id)
    logs = market.get_logs()
    paid = _by_name(logs, "ProviderPaid")
    assert [(x.provider, x.seconds, x.amount) for x in paid] == [
        (p0, 4 * HOUR, 4 * PRICE),
        (p1, 10 * HOUR, 10 * PRICE),
    ]
    [done] = _by_name(logs, "JobCompleted")
    assert (done.result_hash, done.paid, done.compensation) == (OUT, 14 * PRICE, 0)
    assert token.balanceOf(p0) == b0 + 4 * PRICE
    assert token.balanceOf(p1) == b1 + 10 * PRICE
    assert token.balanceOf(alice) == start - 14 * PRICE
    job = market.job_info(job_id)
    assert (job.status, job.escrow, job.result_hash) == (COMPLETED, 0, OUT)
    assert market.escrowed() == 0
    assert [a.paid for a in market.job_assignments(job_id)] == [4 * PRICE, 10 * PRICE]
    for p in (p0, p1):
        info = _reg(market).provider_info(p)
        assert (info.completed, info.failed, info.slashed, info.active_jobs) == (1, 0, 0, 0)
    with boa.reverts("settle: job not running"):
        market.settle(job_id)  # paid at most once


def test_k3_one_cheater_is_slashed(
    market: VyperContract, token: VyperContract, alice: Any, providers: list[Any]
) -> None:
    p0, p1, p2 = providers[:3]
    start = token.balanceOf(alice)
    job_id = _assigned_job(market, alice, providers, 3, work=2 * HOUR)
    _commit(market, p0, job_id)
    _commit(market, p1, job_id, BAD)
    _commit(market, p2, job_id)
    _reveal(market, p0, job_id, hours=2)
    _reveal(market, p1, job_id, BAD, hours=2)
    _reveal(market, p2, job_id, hours=2)
    market.settle(job_id)
    logs = market.get_logs()
    [slash] = _by_name(logs, "ProviderSlashed")
    stake = 2 * MIN_STAKE
    assert (slash.provider, slash.amount, slash.reason, slash.stake) == (
        p1,
        stake // 2,
        WRONG,
        stake // 2,
    )
    [done] = _by_name(logs, "JobCompleted")
    assert (done.paid, done.compensation) == (4 * PRICE, stake // 2)
    # The requester paid the two honest providers and got the cheater's slash.
    assert token.balanceOf(alice) == start - 4 * PRICE + stake // 2
    assert _reg(market).provider_info(p1).slashed == 1
    assert _reg(market).provider_info(p1).stake == stake // 2
    assert _reg(market).reputation(p1) == -2
    assert _reg(market).reputation(p0) == _reg(market).reputation(p2) == 1
    assert _reg(market).total_staked() == 5 * stake - stake // 2
    assert token.balanceOf(_reg(market).address) == _reg(market).total_staked()


def test_k2_tie_settled_after_the_deadline_is_disputed_and_refunded(
    market: VyperContract, token: VyperContract, alice: Any, providers: list[Any]
) -> None:
    """No time is left for a tie-break: the tie ends the job at once."""
    p0, p1 = providers[:2]
    start = token.balanceOf(alice)
    job_id = _assigned_job(market, alice, providers, 2)
    _commit(market, p0, job_id)
    _commit(market, p1, job_id, BAD)
    _reveal(market, p0, job_id)
    _reveal(market, p1, job_id, BAD)
    boa.env.time_travel(seconds=market.job_info(job_id).deadline - _now())
    market.settle(job_id)
    logs = market.get_logs()
    assert _by_name(logs, "ProviderSlashed") == []
    assert _by_name(logs, "ProviderPaid") == []
    assert _by_name(logs, "TieBreakStarted") == []
    [log] = _by_name(logs, "JobDisputed")
    assert (log.job_id, log.requester, log.refund, log.compensation) == (
        job_id,
        alice,
        2 * PRICE * 10 + 3 * UNIT * 10,  # the winners' share and the unused reserve
        0,
    )
    assert token.balanceOf(alice) == start
    assert market.job_info(job_id).status == DISPUTED
    for p in (p0, p1):
        info = _reg(market).provider_info(p)
        assert (info.completed, info.failed, info.slashed, info.active_jobs) == (0, 0, 0, 0)


def test_k3_non_revealer_slashed_and_majority_of_revealed_pays(
    market: VyperContract, token: VyperContract, alice: Any, providers: list[Any]
) -> None:
    p0, p1, p2 = providers[:3]
    job_id = _assigned_job(market, alice, providers, 3)
    _commit(market, p0, job_id)
    _commit(market, p1, job_id)
    # p2 never commits: reveals open at the deadline.
    with boa.env.prank(p0), boa.reverts("reveal: commit phase still open"):
        market.reveal_result(job_id, OUT, SALT, 1)
    boa.env.time_travel(seconds=market.job_info(job_id).deadline - _now())
    _reveal(market, p0, job_id, hours=1)
    with boa.reverts("settle: reveals still open"):
        market.settle(job_id)
    boa.env.time_travel(seconds=REVEAL_WINDOW)
    market.settle(job_id)  # p1 committed but never revealed
    logs = market.get_logs()
    slashes = _by_name(logs, "ProviderSlashed")
    assert [(x.provider, x.reason) for x in slashes] == [(p1, NO_RESULT), (p2, NO_RESULT)]
    assert [x.provider for x in _by_name(logs, "ProviderPaid")] == [p0]
    assert market.job_info(job_id).status == COMPLETED
    assert _reg(market).provider_info(p1).failed == 1 == _reg(market).provider_info(p2).failed
    assert _reg(market).provider_info(p1).slashed == 0


def test_settle_refusals(market: VyperContract, alice: Any, providers: list[Any]) -> None:
    single = _assigned_job(market, alice, providers, 1)
    with boa.reverts("settle: single-provider job"):
        market.settle(single)
    job_id = _assigned_job(market, alice, providers[1:], 2)
    with boa.reverts("settle: nothing revealed"):
        market.settle(job_id)
    open_job = _post(market, alice)
    with boa.reverts("settle: job not running"):
        market.settle(open_job)


# ---------------------------------------------------------------- settlement, k = 1


def _revealed_single(market: VyperContract, alice: Any, providers: list[Any]) -> int:
    job_id = _assigned_job(market, alice, providers, 1, work=5 * HOUR)
    _commit(market, providers[0], job_id)
    [log] = market.get_logs()
    assert log.reveal_deadline == _now() + REVEAL_WINDOW
    _reveal(market, providers[0], job_id, hours=5)
    [_, review] = market.get_logs()
    assert type(review).__name__ == "ReviewStarted"
    assert (review.provider, review.review_deadline) == (providers[0], _now() + DISPUTE_WINDOW)
    assert market.job_info(job_id).status == REVIEW
    return job_id


def test_k1_accept_pays_at_once(
    market: VyperContract, token: VyperContract, alice: Any, providers: list[Any]
) -> None:
    start = token.balanceOf(alice)
    p = providers[0]
    job_id = _revealed_single(market, alice, providers)
    with boa.env.prank(p), boa.reverts("accept: caller is not the requester"):
        market.accept(job_id)
    before = token.balanceOf(p)
    with boa.env.prank(alice):
        market.accept(job_id)
    [paid] = _by_name(market.get_logs(), "ProviderPaid")
    assert (paid.provider, paid.seconds, paid.amount) == (p, 5 * HOUR, 5 * PRICE)
    assert token.balanceOf(p) == before + 5 * PRICE
    assert token.balanceOf(alice) == start - 5 * PRICE
    assert market.job_info(job_id).status == COMPLETED
    assert market.escrowed() == 0
    with boa.env.prank(alice), boa.reverts("accept: job not under review"):
        market.accept(job_id)
    with boa.env.prank(alice), boa.reverts("dispute: job not under review"):
        market.dispute(job_id)
    with boa.reverts("finalize: job not under review"):
        market.finalize(job_id)


BOND = 3 * UNIT * 10  # a dispute's bond: the job's max price x max hours


def _dispute_and_reexecute(
    market: VyperContract, alice: Any, providers: list[Any], job_id: int, truth: bytes
) -> Any:
    """The requester disputes; providers[1] re-executes (2 hours at 1 AIL) and reveals
    ``truth``; anyone settles. Returns the re-executing provider."""
    with boa.env.prank(alice):
        market.dispute(job_id)
    logs = market.get_logs()
    [opened] = _by_name(logs, "DisputeOpened")
    assert (opened.requester, opened.bond) == (alice, BOND)
    assert _by_name(logs, "TieBreakStarted")  # the tie-break machinery finds the checker
    assert market.job_info(job_id).status == TIEBREAK
    assert _reg(market).provider_info(providers[0]).active_jobs == 1  # still locked
    with boa.env.prank(providers[0]), boa.reverts("bid: already bid"):
        market.bid(job_id, UNIT)  # the disputed provider cannot judge itself
    with boa.env.prank(alice), boa.reverts("cancel: job under dispute"):
        market.cancel_job(job_id)
    checker = providers[1]
    _bid(market, checker, job_id, UNIT)
    with boa.env.prank(alice):
        market.close_auction(job_id)
    boa.env.time_travel(seconds=2 * HOUR)
    _commit(market, checker, job_id, truth)
    _reveal(market, checker, job_id, truth, hours=2)
    market.settle(job_id)
    return checker


def test_k1_dispute_slashes_and_refunds(
    market: VyperContract, token: VyperContract, alice: Any, providers: list[Any]
) -> None:
    """A lying provider against an honest requester: the re-execution reveals another
    hash, the provider is slashed and unpaid, the requester pays only the re-execution.
    (The old rule slashed on the requester's word alone: a requester who had read the
    result could take it, its escrow and half the stake.)"""
    start = token.balanceOf(alice)
    p = providers[0]
    job_id = _revealed_single(market, alice, providers)  # p revealed OUT
    with boa.env.prank(p), boa.reverts("dispute: caller is not the requester"):
        market.dispute(job_id)
    checker = _dispute_and_reexecute(market, alice, providers, job_id, BAD)
    logs = market.get_logs()
    [slash] = _by_name(logs, "ProviderSlashed")
    assert (slash.provider, slash.amount, slash.reason) == (p, MIN_STAKE, REJECTED_SLASH)
    [paid] = _by_name(logs, "ProviderPaid")
    assert (paid.provider, paid.amount) == (checker, 2 * UNIT)
    [settled] = _by_name(logs, "DisputeSettled")
    assert (settled.requester_right, settled.evidence, settled.provider_paid) == (True, True, 0)
    [rej] = _by_name(logs, "JobRejected")
    assert (rej.refund, rej.compensation) == (PRICE * 10 + BOND - 2 * UNIT, MIN_STAKE)
    assert token.balanceOf(alice) == start - 2 * UNIT + MIN_STAKE
    info = _reg(market).provider_info(p)
    assert (info.stake, info.slashed, info.completed, info.active_jobs) == (MIN_STAKE, 1, 0, 0)
    assert market.job_info(job_id).status == REJECTED
    assert market.escrowed() == 0


def test_k1_false_dispute_costs_the_disputer_and_never_slashes_the_honest_provider(
    market: VyperContract, token: VyperContract, alice: Any, providers: list[Any]
) -> None:
    """An honest provider against a lying requester: the re-execution agrees, the
    provider is paid its 5 hours and the bond less the re-execution's cost."""
    start = token.balanceOf(alice)
    p = providers[0]
    job_id = _revealed_single(market, alice, providers)
    before = token.balanceOf(p)
    checker = _dispute_and_reexecute(market, alice, providers, job_id, OUT)
    logs = market.get_logs()
    assert _by_name(logs, "ProviderSlashed") == []
    [settled] = _by_name(logs, "DisputeSettled")
    assert (settled.requester_right, settled.evidence) == (False, True)
    assert settled.provider_paid == 5 * PRICE + BOND - 2 * UNIT
    [done] = _by_name(logs, "JobCompleted")
    assert (done.result_hash, done.paid) == (OUT, 5 * PRICE + BOND)
    assert token.balanceOf(p) == before + 5 * PRICE + BOND - 2 * UNIT
    assert token.balanceOf(checker) > 0
    # Accepting would have cost 5 hours; the false dispute cost the bond on top.
    assert token.balanceOf(alice) == start - 5 * PRICE - BOND
    info = _reg(market).provider_info(p)
    assert (info.stake, info.slashed, info.completed, info.active_jobs) == (2 * MIN_STAKE, 0, 1, 0)
    assert market.job_info(job_id).status == COMPLETED
    assert market.escrowed() == 0


def test_k1_dispute_without_a_reexecution_pays_the_provider_and_returns_the_bond(
    market: VyperContract, token: VyperContract, alice: Any, providers: list[Any]
) -> None:
    """Nobody bids to re-execute: nothing proves the provider wrong."""
    start = token.balanceOf(alice)
    p = providers[0]
    job_id = _revealed_single(market, alice, providers)
    with boa.env.prank(alice):
        market.dispute(job_id)
    assert token.balanceOf(alice) == start - PRICE * 10 - BOND
    boa.env.time_travel(seconds=BID_WINDOW)
    market.close_auction(job_id)  # no eligible bid
    logs = market.get_logs()
    [settled] = _by_name(logs, "DisputeSettled")
    assert (settled.requester_right, settled.evidence, settled.provider_paid) == (
        False,
        False,
        5 * PRICE,
    )
    assert _by_name(logs, "ProviderSlashed") == []
    assert token.balanceOf(alice) == start - 5 * PRICE
    assert _reg(market).provider_info(p).slashed == 0
    assert market.job_info(job_id).status == COMPLETED


def test_a_provider_is_never_paid_for_time_that_did_not_pass(
    market: VyperContract, token: VyperContract, alice: Any, providers: list[Any]
) -> None:
    """A 10-second job whose provider claims 10 hours is paid for 10 seconds."""
    p = providers[0]
    start = token.balanceOf(alice)
    job_id = _assigned_job(market, alice, providers, 1, work=10)
    _commit(market, p, job_id)
    boa.env.time_travel(seconds=REVEAL_WINDOW - 1)  # time after the commitment does not count
    _reveal(market, p, job_id, hours=10)
    with boa.env.prank(alice):
        market.accept(job_id)
    [paid] = _by_name(market.get_logs(), "ProviderPaid")
    assert (paid.seconds, paid.amount) == (10, 10 * PRICE // HOUR)
    assert token.balanceOf(alice) == start - 10 * PRICE // HOUR


def test_a_provider_claiming_less_than_passed_is_paid_its_claim(
    market: VyperContract, token: VyperContract, alice: Any, providers: list[Any]
) -> None:
    p = providers[0]
    job_id = _assigned_job(market, alice, providers, 1, work=HOUR)
    _commit(market, p, job_id)
    with boa.env.prank(p):
        market.reveal_result(job_id, OUT, SALT, 90)
    with boa.env.prank(alice):
        market.accept(job_id)
    [paid] = _by_name(market.get_logs(), "ProviderPaid")
    assert (paid.seconds, paid.amount) == (90, 90 * PRICE // HOUR)
    assert (
        market.job_assignments(job_id)[0].committed_at
        - market.job_assignments(job_id)[0].assigned_at
        == HOUR
    )


def test_k1_silence_accepts(
    market: VyperContract, token: VyperContract, alice: Any, providers: list[Any]
) -> None:
    p = providers[0]
    job_id = _revealed_single(market, alice, providers)
    with boa.reverts("finalize: dispute window open"):
        market.finalize(job_id)
    boa.env.time_travel(seconds=DISPUTE_WINDOW)
    with boa.env.prank(alice), boa.reverts("dispute: dispute window over"):
        market.dispute(job_id)
    before = token.balanceOf(p)
    market.finalize(job_id)  # anyone
    assert token.balanceOf(p) == before + 5 * PRICE
    assert market.job_info(job_id).status == COMPLETED
    assert _reg(market).provider_info(p).completed == 1


# ---------------------------------------------------------------- deadline


def test_deadline_refund_and_failures(
    market: VyperContract, token: VyperContract, alice: Any, providers: list[Any]
) -> None:
    start = token.balanceOf(alice)
    p0, p1 = providers[:2]
    job_id = _assigned_job(market, alice, providers, 2)
    _commit(market, p0, job_id)  # p0 commits, never reveals; p1 never commits
    with boa.reverts("expire: deadline not reached"):
        market.expire(job_id)
    boa.env.time_travel(seconds=market.job_info(job_id).deadline - _now())
    with boa.reverts("expire: reveal window open"):
        market.expire(job_id)
    boa.env.time_travel(seconds=REVEAL_WINDOW)
    market.expire(job_id)
    logs = market.get_logs()
    assert [(x.provider, x.reason) for x in _by_name(logs, "ProviderSlashed")] == [
        (p0, NO_RESULT),
        (p1, NO_RESULT),
    ]
    [log] = _by_name(logs, "JobExpired")
    assert (log.refund, log.compensation) == (2 * PRICE * 10 + 3 * UNIT * 10, 2 * MIN_STAKE)
    assert token.balanceOf(alice) == start + 2 * MIN_STAKE
    assert market.job_info(job_id).status == EXPIRED
    for p in (p0, p1):
        info = _reg(market).provider_info(p)
        assert (info.failed, info.slashed, info.active_jobs, info.stake) == (1, 0, 0, MIN_STAKE)
    with boa.reverts("expire: job not running"):
        market.expire(job_id)
    with boa.reverts("expire: unknown job"):
        market.expire(99)


def test_expire_without_commits_at_deadline(
    market: VyperContract, token: VyperContract, alice: Any, providers: list[Any]
) -> None:
    job_id = _assigned_job(market, alice, providers, 1)
    boa.env.time_travel(seconds=market.job_info(job_id).deadline - _now())
    market.expire(job_id)
    assert market.job_info(job_id).status == EXPIRED
    with boa.env.prank(providers[0]), boa.reverts("commit: job not running"):
        market.commit_result(job_id, _commitment(OUT))


def test_open_job_expires_with_full_refund(
    market: VyperContract, token: VyperContract, alice: Any
) -> None:
    start = token.balanceOf(alice)
    job_id = _post(market, alice, redundancy=2)
    boa.env.time_travel(seconds=DAY)
    market.expire(job_id)
    assert token.balanceOf(alice) == start
    assert market.escrowed() == 0


def test_review_job_cannot_expire(market: VyperContract, alice: Any, providers: list[Any]) -> None:
    job_id = _revealed_single(market, alice, providers)
    boa.env.time_travel(seconds=2 * DAY)
    with boa.reverts("expire: job not running"):
        market.expire(job_id)


def test_zero_slash_fraction(token: VyperContract, alice: Any) -> None:
    market = _deploy_market(token.address, slash_bps=0)
    _fund(token, market, alice, 0)
    p = _provider(token, market, "p0")
    job_id = _assigned_job(market, alice, [p], 1)
    boa.env.time_travel(seconds=DAY)
    market.expire(job_id)
    info = _reg(market).provider_info(p)
    assert (info.stake, info.failed) == (2 * MIN_STAKE, 1)


def test_unknown_views_are_zero(market: VyperContract) -> None:
    job = market.job_info(7)
    assert (job.requester, job.status, job.escrow) == (ZERO_ADDR, NONE, 0)
    assert market.job_bids(7) == []
    assert market.job_assignments(7) == []
    assert _reg(market).provider_info(ZERO_ADDR).registered is False


# ---------------------------------------------------------------- early close


def test_requester_closes_early_once_k_eligible_bids_are_in(
    market: VyperContract, alice: Any, providers: list[Any]
) -> None:
    p0, p1, p2, p3 = providers[:4]
    job_id = _post(market, alice, redundancy=2)
    _bid(market, p0, job_id)
    with boa.env.prank(alice), boa.reverts("close: too few eligible bids"):
        market.close_auction(job_id)
    _bid(market, p1, job_id)
    with boa.env.prank(p1):  # below the minimum stake: its bid no longer counts
        _reg(market).withdraw_stake(2 * MIN_STAKE)
    with boa.env.prank(alice), boa.reverts("close: too few eligible bids"):
        market.close_auction(job_id)
    _bid(market, p2, job_id)
    with boa.env.prank(p0), boa.reverts("close: bidding still open"):
        market.close_auction(job_id)
    with boa.reverts("close: bidding still open"):
        market.close_auction(job_id)
    with boa.env.prank(alice):
        market.close_auction(job_id)  # in the block after the bids, not after the window
    assert market.job_info(job_id).status == ASSIGNED
    slots = market.job_assignments(job_id)
    assert [(a.provider, a.assigned_at) for a in slots] == [(p0, _now()), (p2, _now())]
    with boa.env.prank(p3), boa.reverts("bid: job not open"):
        market.bid(job_id, PRICE)


# ---------------------------------------------------------------- tie-break (k >= 2)

TIE_ESCROW = 2 * PRICE * 10 + 3 * UNIT * 10  # two winners at PRICE, and the reserve


def _tied_k2(market: VyperContract, alice: Any, providers: list[Any]) -> int:
    """A k = 2 job whose two providers revealed different hashes, now in TIEBREAK.
    providers[2] bid in the first auction and lost."""
    p0, p1, p2 = providers[:3]
    job_id = _post(market, alice, redundancy=2)
    _bid(market, p0, job_id)
    _bid(market, p1, job_id)
    _bid(market, p2, job_id, 3 * UNIT)
    _close(market, job_id)
    boa.env.time_travel(seconds=4 * HOUR)  # the work
    _commit(market, p0, job_id)
    _commit(market, p1, job_id, BAD)
    _reveal(market, p0, job_id)
    _reveal(market, p1, job_id, BAD)
    market.settle(job_id)
    [log] = market.get_logs()
    assert (type(log).__name__, log.job_id, log.requester, log.bid_deadline) == (
        "TieBreakStarted",
        job_id,
        alice,
        _now() + BID_WINDOW,
    )
    job = market.job_info(job_id)
    assert (job.status, job.escrow, job.bid_deadline, job.reveal_deadline) == (
        TIEBREAK,
        TIE_ESCROW,
        _now() + BID_WINDOW,
        0,
    )
    assert market.job_bids(job_id) == []  # a new round
    return job_id


def test_tie_break_majority_pays_the_majority_and_slashes_the_other(
    market: VyperContract, token: VyperContract, alice: Any, providers: list[Any]
) -> None:
    p0, p1, p2, p3 = providers[:4]
    start = token.balanceOf(alice)
    job_id = _tied_k2(market, alice, providers)
    assert token.balanceOf(alice) == start - TIE_ESCROW
    assert [_reg(market).provider_info(p).active_jobs for p in (p0, p1)] == [1, 1]
    with boa.env.prank(p0), boa.reverts("bid: already bid"):  # assigned to this job
        market.bid(job_id, PRICE)
    with boa.reverts("settle: tie-break still running"):
        market.settle(job_id)
    with boa.reverts("expire: deadline not reached"):
        market.expire(job_id)
    _bid(market, p2, job_id, 3 * UNIT)  # lost the first auction: may bid again
    _bid(market, p3, job_id, UNIT)
    assert [(b.provider, b.price_per_hour) for b in market.job_bids(job_id)] == [
        (p2, 3 * UNIT),
        (p3, UNIT),
    ]
    with boa.env.prank(p2), boa.reverts("close: bidding still open"):
        market.close_auction(job_id)
    with boa.env.prank(alice):
        market.close_auction(job_id)  # early: one eligible bid is enough
    [assigned] = market.get_logs()
    assert (type(assigned).__name__, assigned.provider, assigned.slot) == (
        "ProviderAssigned",
        p3,
        2,
    )
    assert token.balanceOf(alice) == start - TIE_ESCROW  # the reserve pays the tie-break
    assert market.job_info(job_id).status == TIEBREAK
    with boa.env.prank(alice), boa.reverts("close: job not open"):
        market.close_auction(job_id)
    with boa.env.prank(providers[4]), boa.reverts("bid: job not open"):
        market.bid(job_id, PRICE)
    with boa.env.prank(p1), boa.reverts("commit: job not running"):  # first round is over
        market.commit_result(job_id, _commitment(OUT))
    with boa.env.prank(p3), boa.reverts("reveal: nothing committed"):
        market.reveal_result(job_id, OUT, SALT, 2)
    boa.env.time_travel(seconds=2 * HOUR)  # the tie-break provider's work
    _commit(market, p3, job_id)
    [log] = market.get_logs()
    assert log.reveal_deadline == _now() + REVEAL_WINDOW == market.reveal_deadline(job_id)
    with boa.reverts("settle: tie-break still running"):
        market.settle(job_id)
    with boa.env.prank(p0), boa.reverts("reveal: job not running"):
        market.reveal_result(job_id, OUT, SALT, 4)
    _reveal(market, p3, job_id, hours=2)  # opens at once: the tie-break commitment is in
    with boa.env.prank(alice), boa.reverts("cancel: a result was revealed"):
        market.cancel_job(job_id)
    market.settle(job_id)
    logs = market.get_logs()
    paid = _by_name(logs, "ProviderPaid")
    assert [(x.provider, x.seconds, x.amount) for x in paid] == [
        (p0, 4 * HOUR, 4 * PRICE),
        (p3, 2 * HOUR, 2 * UNIT),
    ]
    [slash] = _by_name(logs, "ProviderSlashed")
    assert (slash.provider, slash.reason, slash.amount) == (p1, WRONG, MIN_STAKE)
    [done] = _by_name(logs, "JobCompleted")
    assert (done.result_hash, done.paid, done.compensation) == (
        OUT,
        4 * PRICE + 2 * UNIT,
        MIN_STAKE,
    )
    assert done.refund == TIE_ESCROW - 4 * PRICE - 2 * UNIT
    assert token.balanceOf(alice) == start - 4 * PRICE - 2 * UNIT + MIN_STAKE
    assert market.job_info(job_id).status == COMPLETED
    assert market.escrowed() == 0
    assert token.balanceOf(_reg(market).address) == _reg(market).total_staked()
    assert [_reg(market).provider_info(p).active_jobs for p in (p0, p1, p3)] == [0, 0, 0]
    assert [_reg(market).reputation(p) for p in (p0, p1, p3)] == [1, -2, 1]
    with boa.reverts("settle: job not running"):
        market.settle(job_id)


def test_tie_break_that_stays_tied_is_disputed_and_refunded(
    market: VyperContract, token: VyperContract, alice: Any, providers: list[Any]
) -> None:
    p2 = providers[2]
    start = token.balanceOf(alice)
    job_id = _tied_k2(market, alice, providers)
    _bid(market, p2, job_id)
    boa.env.time_travel(seconds=BID_WINDOW)
    market.close_auction(job_id)  # anyone, after the tie-break window
    _commit(market, p2, job_id, b"\x0c" * 32)
    _reveal(market, p2, job_id, b"\x0c" * 32)
    market.settle(job_id)  # 1-1-1
    logs = market.get_logs()
    assert _by_name(logs, "ProviderPaid") == _by_name(logs, "ProviderSlashed") == []
    [log] = _by_name(logs, "JobDisputed")
    assert (log.refund, log.compensation) == (TIE_ESCROW, 0)
    assert token.balanceOf(alice) == start
    assert market.job_info(job_id).status == DISPUTED
    for p in providers[:3]:
        info = _reg(market).provider_info(p)
        assert (info.completed, info.failed, info.slashed, info.active_jobs) == (0, 0, 0, 0)


def test_tie_break_without_bids_is_refunded_at_the_deadline(
    market: VyperContract, token: VyperContract, alice: Any, providers: list[Any]
) -> None:
    start = token.balanceOf(alice)
    job_id = _tied_k2(market, alice, providers)
    boa.env.time_travel(seconds=market.job_info(job_id).deadline - _now() - 1)
    with boa.reverts("expire: deadline not reached"):
        market.expire(job_id)
    boa.env.time_travel(seconds=1)
    with boa.reverts("close: deadline passed (expire it)"):
        market.close_auction(job_id)
    market.expire(job_id)
    [log] = _by_name(market.get_logs(), "JobDisputed")
    assert (log.refund, log.compensation) == (TIE_ESCROW, 0)
    assert token.balanceOf(alice) == start
    assert market.job_info(job_id).status == DISPUTED
    assert market.escrowed() == 0


def test_tie_break_auction_without_eligible_bids_disputes_at_close(
    market: VyperContract, token: VyperContract, alice: Any, providers: list[Any]
) -> None:
    p2 = providers[2]
    start = token.balanceOf(alice)
    job_id = _tied_k2(market, alice, providers)
    _bid(market, p2, job_id)
    with boa.env.prank(p2):
        _reg(market).withdraw_stake(2 * MIN_STAKE)
    with boa.env.prank(alice), boa.reverts("close: too few eligible bids"):
        market.close_auction(job_id)
    boa.env.time_travel(seconds=BID_WINDOW)
    market.close_auction(job_id)
    [log] = _by_name(market.get_logs(), "JobDisputed")
    assert log.refund == TIE_ESCROW
    assert token.balanceOf(alice) == start
    assert market.job_info(job_id).status == DISPUTED


@pytest.mark.parametrize("commits", [True, False])
def test_tie_break_provider_that_reveals_nothing_is_slashed(
    market: VyperContract, token: VyperContract, alice: Any, providers: list[Any], commits: bool
) -> None:
    p2 = providers[2]
    start = token.balanceOf(alice)
    job_id = _tied_k2(market, alice, providers)
    _bid(market, p2, job_id)
    with boa.env.prank(alice):
        market.close_auction(job_id)
    if commits:
        _commit(market, p2, job_id)
        boa.env.time_travel(seconds=REVEAL_WINDOW - 1)
        with boa.reverts("settle: tie-break still running"):
            market.settle(job_id)
        boa.env.time_travel(seconds=1)
        with boa.env.prank(p2), boa.reverts("reveal: reveal window closed"):
            market.reveal_result(job_id, OUT, SALT, 1)
        market.settle(job_id)  # before the deadline: its reveal window is over
    else:
        boa.env.time_travel(seconds=market.job_info(job_id).deadline - _now())
        with boa.env.prank(p2), boa.reverts("commit: deadline passed"):
            market.commit_result(job_id, _commitment(OUT))
        market.expire(job_id)
    logs = market.get_logs()
    [slash] = _by_name(logs, "ProviderSlashed")
    assert (slash.provider, slash.reason, slash.amount) == (p2, NO_RESULT, MIN_STAKE)
    [log] = _by_name(logs, "JobDisputed")
    assert (log.refund, log.compensation) == (TIE_ESCROW, MIN_STAKE)
    assert token.balanceOf(alice) == start + MIN_STAKE
    assert _reg(market).provider_info(p2).failed == 1
    assert market.job_info(job_id).status == DISPUTED


def test_cancel_during_tie_break_pays_everyone_by_the_clock(
    market: VyperContract, token: VyperContract, alice: Any, providers: list[Any]
) -> None:
    p0, p1, p2 = providers[:3]
    start = token.balanceOf(alice)
    job_id = _tied_k2(market, alice, providers)
    _bid(market, p2, job_id, UNIT)
    with boa.env.prank(alice):
        market.close_auction(job_id)
    boa.env.time_travel(seconds=1800)
    slots = market.job_assignments(job_id)
    seconds = [min(_now() - a.assigned_at, 10 * HOUR) for a in slots]
    with boa.env.prank(alice):
        market.cancel_job(job_id)
    logs = market.get_logs()
    metered = _by_name(logs, "ProviderPaidForTime")
    expected = [(p, t, t * PRICE // HOUR) for p, t in zip((p0, p1), seconds, strict=False)]
    expected.append((p2, 1800, UNIT // 2))
    assert [(x.provider, x.seconds, x.amount) for x in metered] == expected
    paid = sum(x[2] for x in expected)
    [log] = _by_name(logs, "JobCancelled")
    assert (log.paid, log.refund) == (paid, TIE_ESCROW - paid)
    assert _by_name(logs, "ProviderSlashed") == []
    assert token.balanceOf(alice) == start - paid
    assert market.job_info(job_id).status == CANCELLED
    assert all(_reg(market).provider_info(p).active_jobs == 0 for p in (p0, p1, p2))


# ---------------------------------------------------------------- cancelling a running job


def test_cancel_running_job_pays_metered_time_and_refunds_the_rest(
    market: VyperContract, token: VyperContract, alice: Any, providers: list[Any]
) -> None:
    p0, p1 = providers[:2]
    start = token.balanceOf(alice)
    job_id = _post(market, alice, redundancy=2)
    _bid(market, p0, job_id)
    _bid(market, p1, job_id, UNIT)
    _close(market, job_id)
    escrow = market.job_info(job_id).escrow
    assert escrow == (PRICE + UNIT) * 10 + 3 * UNIT * 10
    _commit(market, p0, job_id)  # committed or not, both are paid by the clock
    boa.env.time_travel(seconds=2 * HOUR)  # two hours, by the second
    with boa.env.prank(p0), boa.reverts("cancel: caller is not the requester"):
        market.cancel_job(job_id)
    b0, b1 = token.balanceOf(p0), token.balanceOf(p1)
    with boa.env.prank(alice):
        market.cancel_job(job_id)
    logs = market.get_logs()
    metered = _by_name(logs, "ProviderPaidForTime")
    assert [(x.provider, x.seconds, x.amount) for x in metered] == [
        (p1, 2 * HOUR, 2 * UNIT),  # slot 0: the cheaper bid
        (p0, 2 * HOUR, 2 * PRICE),
    ]
    assert _by_name(logs, "ProviderSlashed") == _by_name(logs, "ProviderPaid") == []
    [log] = _by_name(logs, "JobCancelled")
    paid = 2 * PRICE + 2 * UNIT
    assert (log.job_id, log.requester, log.paid, log.refund) == (job_id, alice, paid, escrow - paid)
    assert (token.balanceOf(p0), token.balanceOf(p1)) == (b0 + 2 * PRICE, b1 + 2 * UNIT)
    assert token.balanceOf(alice) == start - paid
    assert market.job_info(job_id).status == CANCELLED
    assert [a.paid for a in market.job_assignments(job_id)] == [2 * UNIT, 2 * PRICE]
    for p in (p0, p1):
        info = _reg(market).provider_info(p)
        assert (info.completed, info.failed, info.slashed, info.active_jobs) == (0, 0, 0, 0)
        assert info.stake == 2 * MIN_STAKE
    assert market.escrowed() == 0
    with boa.env.prank(p0), boa.reverts("reveal: job not running"):
        market.reveal_result(job_id, OUT, SALT, 1)
    with boa.env.prank(alice), boa.reverts("cancel: job has ended"):
        market.cancel_job(job_id)
    with boa.env.prank(p0):
        _reg(market).withdraw_stake(MIN_STAKE)  # the lock ended


def test_cancel_running_job_at_once_and_past_max_hours(
    market: VyperContract, token: VyperContract, alice: Any, providers: list[Any]
) -> None:
    start = token.balanceOf(alice)
    job_id = _assigned_job(market, alice, providers, 1)
    with boa.env.prank(alice):
        market.cancel_job(job_id)  # in the block of the close: nothing to pay
    [log] = _by_name(market.get_logs(), "JobCancelled")
    assert (log.paid, log.refund) == (0, PRICE * 10)
    assert token.balanceOf(alice) == start
    job_id = _assigned_job(market, alice, providers, 1)
    boa.env.time_travel(seconds=20 * HOUR)
    with boa.env.prank(alice):
        market.cancel_job(job_id)
    [metered] = _by_name(market.get_logs(), "ProviderPaidForTime")
    assert (metered.seconds, metered.amount) == (10 * HOUR, 10 * PRICE)  # capped at max_hours
    assert token.balanceOf(alice) == start - 10 * PRICE


# ---------------------------------------------------------------- compute-to-data

RARE, PUBLIC_HEALTH = 1, 4
DS1 = b"\xd1" * 32


@pytest.fixture
def c2d(market: VyperContract, alice: Any) -> tuple[VyperContract, VyperContract, Any, int]:
    """A free, approval-free dataset owned by `owner`, and alice's grant for RARE."""
    data = _deployer("DataMarket").at(market.DATA_MARKET())
    policy = _deployer("ComputePolicy").at(market.COMPUTE_POLICY())
    owner = boa.env.generate_address("owner")
    with boa.env.prank(owner):
        data.register_dataset(
            DS1, b"\x22" * 32, b"\x33" * 32, RARE | PUBLIC_HEALTH, False, 0, 30 * DAY, 3
        )
    with boa.env.prank(alice):
        grant: int = data.request_access(DS1, RARE)
    return data, policy, owner, grant


def test_c2d_posting_needs_a_grant_and_an_allowed_algorithm(
    market: VyperContract, token: VyperContract, alice: Any, c2d: Any
) -> None:
    data, policy, owner, grant = c2d

    def post(**kw: Any) -> int:
        args = {"datasets": [DS1], "grant_ids": [grant], "purpose": RARE}
        args.update(kw)
        return _post(market, alice, **args)

    with boa.reverts("post: algorithm not allowed for dataset"):
        post()
    with boa.env.prank(owner):
        policy.allow_algorithm(DS1, BUNDLE, True)
    with boa.reverts("post: algorithm not allowed for dataset"):
        post(bundle_hash=b"\xcc" * 32)
    for kw in (
        {"purpose": PUBLIC_HEALTH},  # the grant is for another purpose
        {"purpose": 0},
        {"grant_ids": [grant + 1]},  # no such grant
        {"datasets": [b"\xd2" * 32]},  # the grant is for another dataset
    ):
        with boa.reverts("post: no valid grant for dataset"):
            post(**kw)
    bob = boa.env.generate_address("bob")
    _fund(token, market, bob)
    with boa.reverts("post: no valid grant for dataset"):  # alice's grant, not bob's
        _post(market, bob, datasets=[DS1], grant_ids=[grant], purpose=RARE)
    assert market.job_count() == 0
    job_id = post()
    [log] = _by_name(market.get_logs(), "JobPosted")
    assert (log.datasets, log.grant_ids, log.purpose) == ([DS1], [grant], RARE)
    assert market.job_datasets(job_id) == ([DS1], RARE)
    with boa.env.prank(owner):
        data.revoke(grant)
    with boa.reverts("post: no valid grant for dataset"):
        post()


def test_c2d_bids_need_a_provider_allowed_to_host(
    market: VyperContract, token: VyperContract, alice: Any, providers: list[Any], c2d: Any
) -> None:
    _, policy, owner, grant = c2d
    with boa.env.prank(owner):
        policy.allow_algorithm(DS1, BUNDLE, True)
    kw = {"datasets": [DS1], "grant_ids": [grant], "purpose": RARE}
    job_id = _post(market, alice, redundancy=2, **kw)
    with boa.env.prank(providers[0]), boa.reverts("bid: provider may not host dataset"):
        market.bid(job_id, PRICE)
    with boa.env.prank(owner):
        for p in providers[:2]:
            policy.allow_provider(DS1, p, True)
    _bid(market, providers[0], job_id)
    _bid(market, providers[1], job_id)
    # The owner may host its own dataset without being on its list.
    _fund(token, market, owner)
    with boa.env.prank(owner):
        _reg(market).register_provider(MIN_STAKE)
        _reg(market).post_offer(64, 10**6, "H100", 10**6, PRICE, True)
    _bid(market, owner, job_id, 3 * UNIT)
    with boa.env.prank(alice):
        market.close_auction(job_id)
    # The tie-break round asks the policy too.
    _commit(market, providers[0], job_id)
    _commit(market, providers[1], job_id, BAD)
    _reveal(market, providers[0], job_id)
    _reveal(market, providers[1], job_id, BAD)
    market.settle(job_id)
    assert market.job_info(job_id).status == TIEBREAK
    with boa.env.prank(providers[2]), boa.reverts("bid: provider may not host dataset"):
        market.bid(job_id, PRICE)
    _bid(market, owner, job_id)


def test_c2d_job_runs_and_pays(
    market: VyperContract, token: VyperContract, alice: Any, providers: list[Any], c2d: Any
) -> None:
    _, policy, owner, grant = c2d
    p = providers[0]
    with boa.env.prank(owner):
        policy.allow_algorithm(DS1, BUNDLE, True)
        policy.allow_provider(DS1, p, True)
    start = token.balanceOf(alice)
    job_id = _post(market, alice, datasets=[DS1], grant_ids=[grant], purpose=RARE)
    _bid(market, p, job_id)
    with boa.env.prank(alice):
        market.close_auction(job_id)
    boa.env.time_travel(seconds=3 * HOUR)
    _commit(market, p, job_id)
    _reveal(market, p, job_id, hours=3)
    with boa.env.prank(alice):
        market.accept(job_id)
    assert market.job_info(job_id).status == COMPLETED
    assert token.balanceOf(alice) == start - 3 * PRICE
    assert market.job_datasets(job_id) == ([DS1], RARE)


# ---------------------------------------------------------------- gas


def test_gas_of_main_calls(
    market: VyperContract, token: VyperContract, alice: Any, providers: list[Any]
) -> None:
    """Gas of the main calls (printed with -s; bounded so regressions show)."""

    def gas(fn: Any, *args: Any, sender: Any = None) -> int:
        if sender is None:
            fn(*args)
        else:
            with boa.env.prank(sender):
                fn(*args)
        used: int = market._computation.get_gas_used()
        return used

    figures: dict[str, int] = {}
    newp = boa.env.generate_address("gasp")
    _fund(token, market, newp)
    figures["register_provider"] = gas(_reg(market).register_provider, MIN_STAKE, sender=newp)
    figures["post_offer"] = gas(
        _reg(market).post_offer, 16, 65536, "H100", 81920, PRICE, True, sender=newp
    )
    with boa.env.prank(alice):
        market.post_job(BUNDLE, 8, 32768, 40960, 3 * UNIT, 10, _now() + DAY, 3, 0, True, [], [], 0)
    figures["post_job"] = market._computation.get_gas_used()
    job_id = market.job_count()
    for i, p in enumerate(providers):
        figures[f"bid#{i}"] = gas(market.bid, job_id, PRICE, sender=p)
    boa.env.time_travel(seconds=BID_WINDOW)
    figures["close_auction(k=3, 5 bids)"] = gas(market.close_auction, job_id)
    for i, p in enumerate(providers[:3]):
        figures[f"commit#{i}"] = gas(market.commit_result, job_id, _commitment(OUT), sender=p)
    for i, p in enumerate(providers[:3]):
        figures[f"reveal#{i}"] = gas(market.reveal_result, job_id, OUT, SALT, 4, sender=p)
    figures["settle(k=3)"] = gas(market.settle, job_id)
    single = _assigned_job(market, alice, providers, 1)
    _commit(market, providers[0], single)
    _reveal(market, providers[0], single)
    figures["accept(k=1)"] = gas(market.accept, single, sender=alice)
    figures["withdraw_stake"] = gas(_reg(market).withdraw_stake, UNIT, sender=newp)
    print()
    for name, used in figures.items():
        print(f"gas {name}: {used}")
    assert figures["bid#1"] < 150_000
    # Each winner costs a new assignment (assigned_at included) and a bid-round mark.
    assert figures["close_auction(k=3, 5 bids)"] < 450_000
    assert figures["settle(k=3)"] < 300_000


# ---------------------------------------------------------------- hostile, reentrant token

HOSTILE_TOKEN = (Path(__file__).parent / "hostile_token.vy").read_text()


@pytest.fixture
def hostile() -> VyperContract:
    deployer = boa.loads_partial(HOSTILE_TOKEN, compiler_args={"evm_version": EVM_VERSION})
    return deployer.deploy(SUPPLY)


@pytest.fixture
def hostile_market(hostile: VyperContract) -> VyperContract:
    return _deploy_market(hostile.address)


def _hostile_self_fund(hostile: VyperContract, market: VyperContract) -> None:
    hostile.transfer(hostile.address, 10_000 * UNIT)
    hostile.act(hostile.address, hostile.approve.prepare_calldata(market.address, MAX_UINT))
    hostile.act(hostile.address, hostile.approve.prepare_calldata(_reg(market).address, MAX_UINT))


def test_hostile_requester_cannot_double_refund(
    hostile: VyperContract, hostile_market: VyperContract
) -> None:
    """The token is the requester; on the cancel refund it reenters cancel_job and expire."""
    market = hostile_market
    _hostile_self_fund(hostile, market)
    post = market.post_job.prepare_calldata(
        BUNDLE, 1, 1, 0, UNIT, 10, _now() + BID_WINDOW + 10, 1, 0, False, [], [], 0
    )
    hostile.act(market.address, post)
    hostile.act(market.address, post)
    assert hostile.balanceOf(market.address) == 20 * UNIT
    hostile.arm(market.address, market.cancel_job.prepare_calldata(1))
    hostile.act(market.address, market.cancel_job.prepare_calldata(1))
    assert (hostile.attempts(), hostile.successes()) == (1, 0)
    assert hostile.balanceOf(market.address) == 10 * UNIT
    boa.env.time_travel(seconds=BID_WINDOW + 10)
    hostile.arm(market.address, market.cancel_job.prepare_calldata(2))
    market.expire(2)  # refund to the token, which tries to cancel the job for a second refund
    assert (hostile.attempts(), hostile.successes()) == (2, 0)
    assert hostile.balanceOf(hostile.address) == 10_000 * UNIT  # each job refunded once
    assert hostile.balanceOf(market.address) == 0 == market.escrowed()


def test_hostile_provider_cannot_be_paid_twice(
    hostile: VyperContract, hostile_market: VyperContract, alice: Any
) -> None:
    """The token is the provider; on its payout it reenters finalize, then withdraw_stake."""
    market = hostile_market
    hostile.transfer(alice, 1000 * UNIT)
    with boa.env.prank(alice):
        hostile.approve(market.address, MAX_UINT)
    _hostile_self_fund(hostile, market)
    hostile.act(_reg(market).address, _reg(market).register_provider.prepare_calldata(MIN_STAKE))
    hostile.act(
        _reg(market).address,
        _reg(market).post_offer.prepare_calldata(64, 10**6, "H100", 10**6, UNIT, True),
    )
    job_id = _post(market, alice)
    hostile.act(market.address, market.bid.prepare_calldata(job_id, PRICE))
    _close(market, job_id)
    boa.env.time_travel(seconds=3 * HOUR)
    hostile.act(market.address, market.commit_result.prepare_calldata(job_id, _commitment(OUT)))
    hostile.act(market.address, market.reveal_result.prepare_calldata(job_id, OUT, SALT, 3 * HOUR))
    boa.env.time_travel(seconds=DISPUTE_WINDOW)
    hostile.arm(market.address, market.finalize.prepare_calldata(job_id))
    before = hostile.balanceOf(hostile.address)
    with boa.env.prank(alice):
        market.accept(job_id)
    assert (hostile.attempts(), hostile.successes()) == (1, 0)
    assert hostile.balanceOf(hostile.address) == before + 3 * PRICE  # paid exactly once
    assert market.escrowed() == 0
    # Withdrawing reenters withdraw_stake for the same stake: refused.
    hostile.arm(_reg(market).address, _reg(market).withdraw_stake.prepare_calldata(MIN_STAKE))
    hostile.act(_reg(market).address, _reg(market).withdraw_stake.prepare_calldata(MIN_STAKE))
    assert (hostile.attempts(), hostile.successes()) == (2, 0)
    assert hostile.balanceOf(market.address) == 0
    assert hostile.balanceOf(_reg(market).address) == 0 == _reg(market).total_staked()


def test_hostile_requester_cannot_reenter_settle(
    hostile: VyperContract, hostile_market: VyperContract, token: VyperContract
) -> None:
    """The token is the requester of a k = 2 job; on its refund it reenters settle."""
    market = hostile_market
    _hostile_self_fund(hostile, market)
    provs = []
    for i in range(2):
        p = boa.env.generate_address(f"hp{i}")
        hostile.transfer(p, 1000 * UNIT)
        with boa.env.prank(p):
            hostile.approve(_reg(market).address, MAX_UINT)
            _reg(market).register_provider(MIN_STAKE)
            _reg(market).post_offer(64, 10**6, "", 10**6, UNIT, True)
        provs.append(p)
    hostile.act(
        market.address,
        market.post_job.prepare_calldata(
            BUNDLE, 1, 1, 0, UNIT, 10, _now() + DAY, 2, 0, True, [], [], 0
        ),
    )
    for p in provs:
        _bid(market, p, 1, UNIT)
    _close(market, 1)
    boa.env.time_travel(seconds=10 * HOUR)
    for p in provs:
        _commit(market, p, 1)
    for p in provs:
        _reveal(market, p, 1, hours=10)
    hostile.arm(market.address, market.settle.prepare_calldata(1))
    market.settle(1)
    assert (hostile.attempts(), hostile.successes()) == (1, 0)
    assert [hostile.balanceOf(p) for p in provs] == [1000 * UNIT - MIN_STAKE + 10 * UNIT] * 2
    assert hostile.balanceOf(market.address) == 0
    assert hostile.balanceOf(_reg(market).address) == 2 * MIN_STAKE == _reg(market).total_staked()


# ---------------------------------------------------------------- stateful model check

LEGAL = {
    (OPEN, CANCELLED),
    (OPEN, EXPIRED),
    (OPEN, ASSIGNED),
    (ASSIGNED, REVIEW),
    (ASSIGNED, COMPLETED),
    (ASSIGNED, DISPUTED),
    (ASSIGNED, EXPIRED),
    (ASSIGNED, CANCELLED),
    (ASSIGNED, TIEBREAK),
    (TIEBREAK, COMPLETED),
    (TIEBREAK, DISPUTED),
    (TIEBREAK, CANCELLED),
    (REVIEW, COMPLETED),
    (REVIEW, TIEBREAK),  # k = 1: disputed, re-executed
    (TIEBREAK, REJECTED),  # k = 1: the re-execution proved the provider wrong
}


def _reachable(status: int) -> set[int]:
    out: set[int] = set()
    todo = [status]
    while todo:
        for a, b in LEGAL:
            if a == todo[-1] and b not in out:
                out.add(b)
                todo.insert(0, b)
        todo.pop()
    return out


JOB_PRICE = 3 * UNIT
JOB_HOURS = 10


class ComputeMachine(RuleBasedStateMachine):
    """Random sequences of market calls against a plain-Python model of balances, stakes,
    escrow, job states and reputation."""

    market: VyperContract
    token: VyperContract

    provs = st.integers(0, 3)
    reqs = st.integers(0, 1)
    jobs_i = st.integers(0, 30)

    @initialize()
    def deploy(self) -> None:
        self.token = _deployer("Token").deploy(SUPPLY)
        self.market = _deploy_market(self.token.address)
        self.P = [boa.env.generate_address(f"mp{i}") for i in range(4)]
        self.R = [boa.env.generate_address(f"mr{i}") for i in range(2)]
        for who in self.P + self.R:
            _fund(self.token, self.market, who, 2000 * UNIT)
        self.holders = [*self.P, *self.R, self.market.address, boa.env.eoa]
        self.bal = {h: self.token.balanceOf(h) for h in self.holders}
        # provider -> dict(reg, stake, active, completed, failed, slashed, offer)
        self.pm: dict[Any, dict[str, Any]] = {
            p: {"reg": False, "stake": 0, "active": 0, "c": 0, "f": 0, "s": 0, "offer": None}
            for p in self.P
        }
        # P3's machine is small and unconfined.
        for i, p in enumerate(self.P):
            self._register(i, 150 * UNIT)
            cpu, confined = (2, False) if i == 3 else (16, True)
            with boa.env.prank(p):
                _reg(self.market).post_offer(cpu, 4096, "GPU", 8192, UNIT, confined)
            self.pm[p]["offer"] = (cpu, confined)
        self.jobs: dict[int, dict[str, Any]] = {}
        self.seen: dict[int, int] = {}

    # ------------------------------------------------------------ helpers

    def _move(self, src: Any, dst: Any, amount: int) -> None:
        self.bal[src] -= amount
        self.bal[dst] += amount

    def _rep(self, p: Any) -> int:
        m = self.pm[p]
        return int(m["c"] - m["f"] - 2 * m["s"])

    def _run(self, who: Any, reason: str | None, fn: Any, *args: Any) -> Any:
        with boa.env.prank(who):
            if reason is not None:
                with boa.reverts(reason):
                    fn(*args)
                return None
            return fn(*args)

    def _register(self, i: int, stake: int) -> None:
        p = self.P[i]
        m = self.pm[p]
        reason = None
        if m["reg"]:
            reason = "register: already registered"
        elif stake < MIN_STAKE:
            reason = "register: stake below minimum"
        self._run(p, reason, _reg(self.market).register_provider, stake)
        if reason is None:
            m.update(reg=True, stake=stake)
            self._move(p, self.market.address, stake)

    def _job(self, j: int) -> tuple[int, dict[str, Any] | None]:
        # Mostly the newest job (so jobs get driven to the end), sometimes any job or
        # one past the last (unknown).
        job_id = len(self.jobs) if j >= 12 and self.jobs else j % (len(self.jobs) + 1) + 1
        return job_id, self.jobs.get(job_id)

    def _slash(self, job: dict[str, Any], p: Any, counter: str) -> int:
        m = self.pm[p]
        amount = m["stake"] * SLASH_BPS // 10_000
        m["stake"] -= amount
        m[counter] += 1
        return int(amount)

    def _finish(self, job: dict[str, Any], status: int, refund: int) -> None:
        for a in job["slots"]:
            self.pm[a["p"]]["active"] -= 1
        job["status"] = status
        job["escrow"] = 0
        self._move(self.market.address, job["req"], refund)

    # ------------------------------------------------------------ rules

    @rule(i=provs, big=st.booleans())
    def register(self, i: int, big: bool) -> None:
        self._register(i, 150 * UNIT if big else 50 * UNIT)

    @rule(i=provs)
    def add_stake(self, i: int) -> None:
        p = self.P[i]
        if self.bal[p] < 60 * UNIT:
            return
        reason = None if self.pm[p]["reg"] else "add_stake: not a provider"
        self._run(p, reason, _reg(self.market).add_stake, 60 * UNIT)
        if reason is None:
            self.pm[p]["stake"] += 60 * UNIT
            self._move(p, self.market.address, 60 * UNIT)

    @rule(i=provs, amount=st.sampled_from([UNIT, 100 * UNIT]))
    def withdraw(self, i: int, amount: int) -> None:
        p = self.P[i]
        m = self.pm[p]
        reason = None
        if not m["reg"]:
            reason = "withdraw: not a provider"
        elif m["active"]:
            reason = "withdraw: stake locked by active jobs"
        elif amount > m["stake"]:
            reason = "withdraw: amount exceeds stake"
        self._run(p, reason, _reg(self.market).withdraw_stake, amount)
        if reason is None:
            m["stake"] -= amount
            self._move(self.market.address, p, amount)

    @rule(
        r=reqs,
        k=st.integers(1, 3),
        confined=st.booleans(),
        min_rep=st.sampled_from([-9, -9, 0, 1]),
        long=st.booleans(),
    )
    def post_job(self, r: int, k: int, confined: bool, min_rep: int, long: bool) -> None:
        req = self.R[r]
        deadline = _now() + (DAY if long else BID_WINDOW + 2 * HOUR)
        # k shares, and for k >= 2 the tie-break reserve.
        escrow = JOB_PRICE * JOB_HOURS * (k + 1 if k >= 2 else 1)
        if self.bal[req] < escrow:
            return
        with boa.env.prank(req):
            job_id = self.market.post_job(
                BUNDLE,
                4,
                2048,
                4096,
                JOB_PRICE,
                JOB_HOURS,
                deadline,
                k,
                min_rep,
                confined,
                [],
                [],
                0,
            )
        assert job_id == len(self.jobs) + 1
        self._move(req, self.market.address, escrow)
        self.jobs[job_id] = {
            "req": req,
            "k": k,
            "confined": confined,
            "min_rep": min_rep,
            "deadline": deadline,
            "bid_end": _now() + BID_WINDOW,
            "status": OPEN,
            "escrow": escrow,
            "bids": [],
            "slots": [],
            "commits": 0,
            "reveals": 0,
            "reveal_end": 0,
            "review_end": 0,
        }

    def _bidding(self, job: dict[str, Any]) -> bool:
        """The job takes bids: OPEN, or TIEBREAK before its tie-break provider is picked."""
        return bool(
            job["status"] == OPEN or (job["status"] == TIEBREAK and len(job["slots"]) == job["k"])
        )

    @rule(i=provs, j=jobs_i, price=st.sampled_from([UNIT, 2 * UNIT, 4 * UNIT]))
    def bid(self, i: int, j: int, price: int) -> None:
        p = self.P[i]
        job_id, job = self._job(j)
        m = self.pm[p]
        now = _now()
        if job is None:
            reason: str | None = "bid: unknown job"
        elif not self._bidding(job):
            reason = "bid: job not open"
        elif now >= job["bid_end"]:
            reason = "bid: bidding closed"
        elif p in [b[0] for b in job["bids"]] or p in [s["p"] for s in job["slots"]]:
            reason = "bid: already bid"
        elif price > JOB_PRICE:
            reason = "bid: price above maximum"
        # The providers contract's checks come last (ComputeProviders.check_bidder).
        elif not m["reg"]:
            reason = "bid: not a provider"
        elif m["stake"] < MIN_STAKE:
            reason = "bid: stake below minimum"
        elif m["offer"][0] < 4:
            reason = "bid: offer lacks resources"
        elif job["confined"] and not m["offer"][1]:
            reason = "bid: machine not confined"
        elif self._rep(p) < job["min_rep"]:
            reason = "bid: reputation too low"
        else:
            reason = None
        self._run(p, reason, self.market.bid, job_id, price)
        if reason is None:
            assert job is not None
            job["bids"].append((p, price))

    @rule(j=jobs_i, by_req=st.booleans())
    def close(self, j: int, by_req: bool = False) -> None:
        job_id, job = self._job(j)
        now = _now()
        who = job["req"] if job is not None and by_req else boa.env.eoa
        cands: list[tuple[int, int, int, Any]] = []
        if job is not None:
            cands = [
                (price, -self._rep(p), n, p)
                for n, (p, price) in enumerate(job["bids"])
                if self.pm[p]["stake"] >= MIN_STAKE
            ]
        if job is None:
            reason: str | None = "close: unknown job"
        elif not self._bidding(job):
            reason = "close: job not open"
        elif now < job["bid_end"] and who != job["req"]:
            reason = "close: bidding still open"
        elif now >= job["deadline"]:
            reason = "close: deadline passed (expire it)"
        elif now < job["bid_end"] and len(cands) < (1 if job["status"] == TIEBREAK else job["k"]):
            reason = "close: too few eligible bids"
        else:
            reason = None
        self._run(who, reason, self.market.close_auction, job_id)
        if reason is not None:
            return
        assert job is not None
        tiebreak = job["status"] == TIEBREAK
        wanted = 1 if tiebreak else job["k"]
        if len(cands) < wanted:
            if tiebreak:
                self._settle_all(job)
            else:
                self._finish(job, CANCELLED, job["escrow"])
            return
        winners = sorted(cands)[:wanted]
        needed = sum(w[0] for w in winners) * JOB_HOURS
        job["slots"] += [
            {
                "p": w[3],
                "price": w[0],
                "out": None,
                "committed": False,
                "revealed": False,
                "hours": 0,
                "paid": 0,
                "at": now,
                "committed_at": 0,
            }
            for w in winners
        ]
        for w in winners:
            self.pm[w[3]]["active"] += 1
        if tiebreak:
            return  # paid from the reserve; nothing refunded yet
        if job["k"] >= 2:
            needed += JOB_PRICE * JOB_HOURS
        self._move(self.market.address, job["req"], job["escrow"] - needed)
        job["escrow"] = needed
        job["status"] = ASSIGNED

    def _tb_revealed(self, job: dict[str, Any]) -> bool:
        return len(job["slots"]) > job["k"] and bool(job["slots"][job["k"]]["revealed"])

    @rule(r=reqs, j=jobs_i)
    def cancel(self, r: int, j: int) -> None:
        job_id, job = self._job(j)
        who = self.R[r]
        if job is None:
            reason: str | None = "cancel: unknown job"
        elif job["req"] != who:
            reason = "cancel: caller is not the requester"
        elif job["status"] not in (OPEN, ASSIGNED, TIEBREAK, REVIEW):
            reason = "cancel: job has ended"
        elif job["status"] == TIEBREAK and job["k"] == 1:
            reason = "cancel: job under dispute"
        elif self._tb_revealed(job) if job["status"] == TIEBREAK else job["reveals"]:
            reason = "cancel: a result was revealed"
        else:
            reason = None
        self._run(who, reason, self.market.cancel_job, job_id)
        if reason is None:
            assert job is not None
            paid = 0
            for s in job["slots"]:
                seconds = min(_now() - s["at"], JOB_HOURS * HOUR)
                assert s["paid"] == 0  # paid at most once
                s["paid"] = seconds * s["price"] // HOUR
                paid += s["paid"]
                self._move(self.market.address, s["p"], s["paid"])
            self._finish(job, CANCELLED, job["escrow"] - paid)

    def _slot(self, job: dict[str, Any] | None, s: int) -> dict[str, Any] | None:
        if job is None or not job["slots"]:
            return None
        slot: dict[str, Any] = job["slots"][s % len(job["slots"])]
        return slot

    def _reveal_end(self, job: dict[str, Any]) -> int:
        if job["status"] == TIEBREAK or job["commits"] == job["k"]:
            return int(job["reveal_end"])
        return int(job["deadline"] + REVEAL_WINDOW)

    def _running(self, job: dict[str, Any], slot: dict[str, Any]) -> bool:
        """ASSIGNED, or TIEBREAK for the tie-break provider."""
        if job["status"] == TIEBREAK:
            return slot is job["slots"][-1] and len(job["slots"]) > job["k"]
        return bool(job["status"] == ASSIGNED)

    @rule(j=jobs_i, s=st.integers(0, 3), cheat=st.booleans())
    def commit(self, j: int, s: int, cheat: bool) -> None:
        job_id, job = self._job(j)
        slot = self._slot(job, s)
        if slot is None:
            return
        assert job is not None
        out = BAD if cheat else OUT
        now = _now()
        if not self._running(job, slot):
            reason: str | None = "commit: job not running"
        elif now >= job["deadline"]:
            reason = "commit: deadline passed"
        elif slot["committed"]:
            reason = "commit: already committed"
        else:
            reason = None
        self._run(slot["p"], reason, self.market.commit_result, job_id, _commitment(out))
        if reason is None:
            slot.update(committed=True, out=out, committed_at=now)
            job["commits"] += 1
            if job["status"] == TIEBREAK or job["commits"] == job["k"]:
                job["reveal_end"] = now + REVEAL_WINDOW

    @rule(j=jobs_i, s=st.integers(0, 3), tamper=st.booleans(), hours=st.sampled_from([0, 3, 50]))
    def reveal(self, j: int, s: int, tamper: bool, hours: int) -> None:
        """Reveal, claiming ``hours`` of work: more than passed, often."""
        job_id, job = self._job(j)
        slot = self._slot(job, s)
        if slot is None:
            return
        assert job is not None
        now = _now()
        out = slot["out"] or OUT
        shown = (BAD if out == OUT else OUT) if tamper else out
        if not self._running(job, slot):
            reason: str | None = "reveal: job not running"
        elif not slot["committed"]:
            reason = "reveal: nothing committed"
        elif slot["revealed"]:
            reason = "reveal: already revealed"
        elif job["status"] == ASSIGNED and job["commits"] != job["k"] and now < job["deadline"]:
            reason = "reveal: commit phase still open"
        elif now >= self._reveal_end(job):
            reason = "reveal: reveal window closed"
        elif tamper:
            reason = "reveal: does not match commitment"
        else:
            reason = None
        self._run(slot["p"], reason, self.market.reveal_result, job_id, shown, SALT, hours * HOUR)
        if reason is None:
            slot.update(revealed=True, hours=hours)
            job["reveals"] += 1
            if job["k"] == 1 and job["status"] != TIEBREAK:
                job["status"] = REVIEW
                job["review_end"] = now + DISPUTE_WINDOW

    def _pay(self, job: dict[str, Any], slot: dict[str, Any]) -> int:
        # Billed by the second, never for more time than passed before the commitment.
        worked = max(slot["committed_at"] - slot["at"], 1)  # the clock counts whole seconds
        seconds = min(slot["hours"] * HOUR, worked, JOB_HOURS * HOUR)
        amount = int(seconds * slot["price"] // HOUR)
        assert amount <= worked * slot["price"] // HOUR
        assert slot["paid"] == 0  # paid at most once
        slot["paid"] = amount
        self.pm[slot["p"]]["c"] += 1
        self._move(self.market.address, slot["p"], amount)
        return amount

    def _tiebreak_over(self, job: dict[str, Any]) -> bool:
        if self._tb_revealed(job):
            return True
        if job["reveal_end"]:
            return _now() >= job["reveal_end"]
        return _now() >= job["deadline"]

    def _settle_dispute(self, job: dict[str, Any]) -> None:
        """A disputed k = 1 job, by its re-execution: the loser pays."""
        first, check = job["slots"][0], (job["slots"][1:] or [None])[0]
        bond = JOB_PRICE * JOB_HOURS
        check_pay = comp = provider_pay = 0
        evidence = check is not None and check["revealed"]
        if check is not None and evidence:
            check_pay = self._pay(job, check)
        elif check is not None:
            comp += self._slash(job, check["p"], "f")
        requester_right = evidence and check is not None and check["out"] != first["out"]
        if requester_right:
            comp += self._slash(job, first["p"], "s")
        else:
            stake = self.pm[first["p"]]["stake"]
            provider_pay = self._pay(job, first)
            if evidence:  # a false dispute: its bond, less the re-execution, to the provider
                self._move(self.market.address, first["p"], bond - check_pay)
                provider_pay += bond - check_pay
                first["paid"] = provider_pay
            assert self.pm[first["p"]]["stake"] == stake  # never slashed when right
        self._move(self.market.address, job["req"], comp)
        refund = job["escrow"] - check_pay - provider_pay
        self._finish(job, REJECTED if requester_right else COMPLETED, refund)

    def _settle_all(self, job: dict[str, Any]) -> None:
        if job["k"] == 1:
            self._settle_dispute(job)
            return
        votes = Counter(s["out"] for s in job["slots"] if s["revealed"])
        best, n = votes.most_common(1)[0]
        majority = n * 2 > job["reveals"]
        if not majority and job["status"] == ASSIGNED and _now() < job["deadline"]:
            job.update(status=TIEBREAK, bid_end=_now() + BID_WINDOW, bids=[], reveal_end=0)
            return
        paid = comp = 0
        for s in job["slots"]:
            if not s["revealed"]:
                comp += self._slash(job, s["p"], "f")
            elif majority and s["out"] == best:
                paid += self._pay(job, s)
            elif majority:
                comp += self._slash(job, s["p"], "s")
        self._move(self.market.address, job["req"], comp)
        self._finish(job, COMPLETED if majority else DISPUTED, job["escrow"] - paid)

    @rule(j=jobs_i)
    def settle(self, j: int) -> None:
        job_id, job = self._job(j)
        if job is None:
            reason: str | None = "settle: unknown job"
        elif job["status"] == TIEBREAK:
            reason = None if self._tiebreak_over(job) else "settle: tie-break still running"
        elif job["status"] != ASSIGNED:
            reason = "settle: job not running"
        elif job["k"] < 2:
            reason = "settle: single-provider job"
        elif job["reveals"] == 0:
            reason = "settle: nothing revealed"
        elif job["reveals"] != job["k"] and _now() < self._reveal_end(job):
            reason = "settle: reveals still open"
        else:
            reason = None
        self._run(boa.env.eoa, reason, self.market.settle, job_id)
        if reason is None:
            assert job is not None
            self._settle_all(job)

    @rule(j=jobs_i, action=st.sampled_from(["accept", "dispute", "finalize"]), by_req=st.booleans())
    def review(self, j: int, action: str, by_req: bool) -> None:
        job_id, job = self._job(j)
        if job is None:
            return
        who = job["req"] if by_req else self.P[0]
        now = _now()
        reason: str | None = None
        if action in ("accept", "dispute") and who != job["req"]:
            reason = f"{action}: caller is not the requester"
        elif job["status"] != REVIEW:
            reason = f"{action}: job not under review"
        elif action == "dispute" and now >= job["review_end"]:
            reason = "dispute: dispute window over"
        elif action == "finalize" and now < job["review_end"]:
            reason = "finalize: dispute window open"
        self._run(who, reason, getattr(self.market, action), job_id)
        if reason is not None:
            return
        slot = job["slots"][0]
        if action == "dispute":
            # A bond, and a re-execution by another provider through the tie-break.
            bond = JOB_PRICE * JOB_HOURS
            self._move(job["req"], self.market.address, bond)
            job["escrow"] += bond
            bid_end = now + BID_WINDOW
            deadline = max(job["deadline"], bid_end + JOB_HOURS * HOUR)
            job.update(status=TIEBREAK, bid_end=bid_end, bids=[], reveal_end=0, deadline=deadline)
        else:
            paid = self._pay(job, slot)
            self._finish(job, COMPLETED, job["escrow"] - paid)

    @rule(j=jobs_i)
    def expire(self, j: int) -> None:
        job_id, job = self._job(j)
        now = _now()
        reason: str | None = None
        if job is None:
            reason = "expire: unknown job"
        elif job["status"] not in (OPEN, ASSIGNED, TIEBREAK):
            reason = "expire: job not running"
        elif now < job["deadline"]:
            reason = "expire: deadline not reached"
        elif job["status"] != OPEN:
            tiebreak = job["status"] == TIEBREAK
            revealed = self._tb_revealed(job) if tiebreak else job["reveals"] != 0
            committed = job["reveal_end"] != 0 if tiebreak else job["commits"] != 0
            if revealed:
                reason = "expire: a result was revealed (settle it)"
            elif committed and now < self._reveal_end(job):
                reason = "expire: reveal window open"
        self._run(boa.env.eoa, reason, self.market.expire, job_id)
        if reason is not None:
            return
        assert job is not None
        if job["status"] == TIEBREAK:
            self._settle_all(job)
            assert job["status"] in ((COMPLETED, REJECTED) if job["k"] == 1 else (DISPUTED,))
            return
        comp = sum(self._slash(job, s["p"], "f") for s in job["slots"])
        self._move(self.market.address, job["req"], comp)
        self._finish(job, EXPIRED, job["escrow"])

    # Composite rules: drive one job through a whole phase, so that random runs reach
    # settlement often (each step still goes through the single-call rules above).

    @rule(
        j=jobs_i,
        prices=st.lists(st.sampled_from([UNIT, 2 * UNIT]), min_size=4, max_size=4),
        early=st.booleans(),
    )
    def run_auction(self, j: int, prices: list[int], early: bool = False) -> None:
        for i in range(4):
            self.bid(i, j, prices[i])
        if not early:
            self.wait(BID_WINDOW)
        self.close(j, early)

    @rule(j=jobs_i, cheats=st.integers(0, 7))
    def commit_all(self, j: int, cheats: int) -> None:
        for s in range(4):
            self.commit(j, s, bool(cheats >> s & 1))

    @rule(j=jobs_i, hours=st.sampled_from([3, 50]))
    def reveal_all(self, j: int, hours: int) -> None:
        for s in range(4):
            self.reveal(j, s, False, hours)

    @rule(
        j=jobs_i,
        cheats=st.integers(0, 7),
        action=st.sampled_from(["accept", "dispute", "finalize"]),
    )
    def advance(self, j: int, cheats: int, action: str) -> None:
        """Take the newest (or a chosen) job one phase (or, for even `cheats`, up to four
        phases) further along."""
        for _ in range(1 if cheats & 1 else 4):
            self._advance_once(j, cheats, action)

    @rule(j=jobs_i, cheats=st.integers(0, 15), early=st.booleans())
    def dispute_and_reexecute(self, j: int, cheats: int, early: bool) -> None:
        """Drive a k = 1 job to review, dispute it, then through the re-execution's
        auction, commitment, reveal (agreeing or not, or nothing) and settlement."""
        _, job = self._job(j)
        if job is None or job["k"] != 1:
            return
        if job["status"] == OPEN:
            self.run_auction(j, [UNIT, 2 * UNIT, UNIT, 2 * UNIT], early)
        if job["status"] == ASSIGNED and job["commits"] == 0:
            self.commit(j, 0, False)
            self.reveal(j, 0, False, 3)
        if job["status"] == REVIEW:
            self.review(j, "dispute", True)
        if job["status"] == TIEBREAK:
            self.run_auction(j, [UNIT, 2 * UNIT, UNIT, 2 * UNIT], early)
            if cheats & 8:
                self.cancel(self.R.index(job["req"]), j)
            self.commit(j, 1, bool(cheats & 2))
            if cheats & 4:
                self.wait(HOUR)
            if not cheats & 1:
                self.reveal(j, 1, False, 3)
            self.settle(j)

    @rule(j=jobs_i, cheats=st.integers(0, 15), early=st.booleans())
    def tie_and_break(self, j: int, cheats: int, early: bool) -> None:
        """Drive a k >= 2 job into a first-round tie (when the dice allow one), then
        through its tie-break auction, commitment, reveal and settlement."""
        _, job = self._job(j)
        if job is None or job["k"] < 2:
            return
        if job["status"] == OPEN:
            self.run_auction(j, [UNIT, 2 * UNIT, UNIT, 2 * UNIT], early)
        if job["status"] == ASSIGNED and job["commits"] == 0:
            for s in range(job["k"]):  # slot 0 disagrees with the rest
                self.commit(j, s, s == 0)
            self.reveal_all(j, 3)
            self.settle(j)
        if job["status"] == TIEBREAK:
            self.run_auction(j, [UNIT, 2 * UNIT, UNIT, 2 * UNIT], early)
            if cheats & 8:
                self.cancel(self.R.index(job["req"]), j)
            self.commit_all(j, cheats)
            if cheats & 4:
                self.wait(HOUR)
            self.reveal_all(j, 3)
            self.settle(j)

    def _advance_once(self, j: int, cheats: int, action: str) -> None:
        _, job = self._job(j)
        if job is None:
            return
        tb_slot = job["slots"][-1] if len(job["slots"]) > job["k"] else None
        if self._bidding(job):
            self.run_auction(j, [UNIT, 2 * UNIT, UNIT, 2 * UNIT], bool(cheats & 2))
        elif job["status"] == ASSIGNED and job["commits"] < job["k"] and cheats != 7:
            self.commit_all(j, cheats)
        elif job["status"] == TIEBREAK and tb_slot is not None and not tb_slot["committed"]:
            self.commit_all(j, cheats >> 2)
        elif job["status"] in (ASSIGNED, TIEBREAK):
            self.reveal_all(j, 3)
            self.settle(j)
        elif job["status"] == REVIEW:
            if action == "finalize":
                self.wait(DAY)
            self.review(j, action, True)

    @rule(seconds=st.sampled_from([60, BID_WINDOW, HOUR, DAY]))
    def wait(self, seconds: int) -> None:
        boa.env.time_travel(seconds=seconds)

    # ------------------------------------------------------------ invariants

    @invariant()
    def balances_are_conserved(self) -> None:
        # The model holds the market and its providers contract as one vault.
        registry = _reg(self.market).address
        actual = {h: self.token.balanceOf(h) for h in self.holders}
        actual[self.market.address] += self.token.balanceOf(registry)
        assert actual == self.bal
        assert sum(actual.values()) == SUPPLY
        escrow = sum(j["escrow"] for j in self.jobs.values())
        stakes = sum(m["stake"] for m in self.pm.values())
        assert self.market.escrowed() == escrow == self.token.balanceOf(self.market.address)
        assert _reg(self.market).total_staked() == stakes == self.token.balanceOf(registry)

    @invariant()
    def state_matches_model(self) -> None:
        assert self.market.job_count() == len(self.jobs)
        for p, m in self.pm.items():
            info = _reg(self.market).provider_info(p)
            assert (info.registered, info.stake, info.active_jobs) == (
                m["reg"],
                m["stake"],
                m["active"],
            )
            assert (info.completed, info.failed, info.slashed) == (m["c"], m["f"], m["s"])
        for job_id, job in self.jobs.items():
            onchain = self.market.job_info(job_id)
            assert (onchain.status, onchain.escrow) == (job["status"], job["escrow"])
            assert (onchain.commits, onchain.reveals) == (job["commits"], job["reveals"])
            previous = self.seen.get(job_id, OPEN)
            # A composite rule may take several steps at once: check reachability.
            assert previous == onchain.status or onchain.status in _reachable(previous)
            self.seen[job_id] = onchain.status
            if job["slots"]:
                slots = self.market.job_assignments(job_id)
                assert [(a.provider, a.price_per_hour, a.paid) for a in slots] == [
                    (s["p"], s["price"], s["paid"]) for s in job["slots"]
                ]


ComputeMachine.TestCase.settings = settings(max_examples=15, stateful_step_count=40, deadline=None)
TestComputeMarket = ComputeMachine.TestCase
