"""A provider's standing in the compute market: its machine, offer, stake, reputation,
the jobs it ran, what it earned and how it was slashed.

``ailedger provider ...`` and the web app's provider page call these. The offer says
what the machine can take (cores, memory, its first GPU) and its asking price; it may
offer less than the machine has, never more, and it says whether jobs are confined as the
machine really is (a machine without confinement cannot claim it). Stake is added
(registering the provider the first time) and withdrawn as the contract allows: never
while an assignment holds it locked. Every refusal is checked here first, so nothing is
sent that the contract would revert, and the message says what to do instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from ailedger.chain.contracts.compute_market import JobStatus
from ailedger.errors import AiledgerError, ConfigError

if TYPE_CHECKING:
    from ailedger.chain.transactions import TxResult
    from ailedger.compute.provider.machine import MachineInfo
    from ailedger.session import Session

SLASH_REASONS = {1: "wrong result", 2: "lost a dispute", 3: "revealed no result"}


class StandingError(AiledgerError):
    """The provider's standing does not allow this (not registered, stake locked by
    running jobs, more than is staked); the message says what would."""


@cache
def this_machine() -> MachineInfo:
    """The machine this node runs on, detected once per process (``nvidia-smi`` and the
    confinement probe are slow, and the hardware does not change under a running node)."""
    from ailedger.compute.provider.machine import detect_machine

    return detect_machine()


def machine_report(info: MachineInfo) -> dict[str, Any]:
    """The machine as ``provider machine --json`` prints it."""
    return {
        "cpu_cores": info.cpu_cores,
        "ram_mb": info.ram_mb,
        "confinement": info.confinement,
        "gpus": [{"index": g.index, "name": g.name, "memory_mb": g.memory_mb} for g in info.gpus],
    }


@dataclass(frozen=True)
class OfferTerms:
    cpu_cores: int
    ram_mb: int
    gpu_model: str
    gpu_mem_mb: int
    price_per_hour: int
    confined: bool


@dataclass(frozen=True)
class Standing:
    address: str
    registered: bool
    stake: int
    min_stake: int
    active_jobs: int
    completed: int
    failed: int
    slashed: int
    reputation: int
    balance: int
    offer: OfferTerms | None

    @property
    def can_bid(self) -> bool:
        return self.registered and self.stake >= self.min_stake and self.offer is not None


def standing(session: Session) -> Standing:
    providers, me = session.compute_providers, session.address
    info = providers.provider(me)
    offer = providers.offer(me)
    return Standing(
        me,
        info["registered"],
        info["stake"],
        providers.min_stake(),
        info["active_jobs"],
        info["completed"],
        info["failed"],
        info["slashed"],
        providers.reputation(me),
        int(session.token.balance_of(me)),
        OfferTerms(
            offer["cpu_cores"],
            offer["ram_mb"],
            offer["gpu_model"],
            offer["gpu_mem_mb"],
            offer["price_per_hour"],
            offer["confined"],
        )
        if offer["posted"]
        else None,
    )


def set_offer(
    session: Session,
    machine: MachineInfo,
    price_per_hour: int,
    cpu_cores: int | None = None,
    ram_mb: int | None = None,
) -> OfferTerms:
    """Post (or replace) the offer: ``cpu_cores`` and ``ram_mb`` default to the whole
    machine and may not exceed it; the first GPU, if any, is offered; confinement is the
    machine's. Applies to bids made after it."""
    cores = machine.cpu_cores if cpu_cores is None else cpu_cores
    ram = machine.ram_mb if ram_mb is None else ram_mb
    if not 1 <= cores <= machine.cpu_cores:
        raise ConfigError(f"cpu_cores must be 1..{machine.cpu_cores} (this machine), got {cores}")
    if not 1 <= ram <= machine.ram_mb:
        raise ConfigError(f"ram_mb must be 1..{machine.ram_mb} (this machine), got {ram}")
    if price_per_hour <= 0:
        raise ConfigError("the price per hour must be more than 0")
    providers = session.compute_providers
    if not providers.provider(session.address)["registered"]:
        raise StandingError(
            "not a provider yet: stake first (at least "
            f"{_ail(providers.min_stake())}), then post the offer"
        )
    gpu = machine.gpus[0] if machine.gpus else None
    terms = OfferTerms(
        cores,
        ram,
        gpu.name if gpu else "",
        gpu.memory_mb if gpu else 0,
        price_per_hour,
        machine.confinement is not None,
    )
    providers.post_offer(
        terms.cpu_cores,
        terms.ram_mb,
        terms.gpu_model,
        terms.gpu_mem_mb,
        terms.price_per_hour,
        terms.confined,
    )
    return terms


def add_stake(session: Session, amount: int) -> tuple[str, TxResult]:
    """Stake ``amount`` more, registering as a provider the first time (at least the
    minimum stake); returns ("registered" or "added", the staking transaction)."""
    providers, me = session.compute_providers, session.address
    if amount <= 0:
        raise ConfigError("the amount to stake must be more than 0")
    balance = int(session.token.balance_of(me))
    if amount > balance:
        raise ConfigError(f"{_ail(amount)} is more than this account holds ({_ail(balance)})")
    registered = providers.provider(me)["registered"]
    if not registered and amount < providers.min_stake():
        raise StandingError(
            f"the first stake must be at least {_ail(providers.min_stake())}, got {_ail(amount)}"
        )
    session.token.approve(providers.address, amount)
    if registered:
        return "added", providers.add_stake(amount)
    return "registered", providers.register_provider(amount)


def withdraw_stake(session: Session, amount: int) -> TxResult:
    """Take back ``amount`` of the stake: refused while a job holds it locked."""
    providers = session.compute_providers
    info = providers.provider(session.address)
    if not info["registered"]:
        raise StandingError("not a provider: there is no stake to withdraw")
    if info["active_jobs"]:
        raise StandingError(
            f"the stake is locked by {info['active_jobs']} unfinished job(s); withdraw "
            "once they end"
        )
    if not 0 < amount <= info["stake"]:
        raise ConfigError(f"withdraw more than 0 and at most the stake ({_ail(info['stake'])})")
    return providers.withdraw_stake(amount)


@dataclass(frozen=True)
class RunJob:
    """A job this provider was assigned, and how it went."""

    job_id: int
    status: JobStatus
    price_per_hour: int
    seconds: int
    paid: int
    assigned_at: int


@dataclass(frozen=True)
class Payment:
    job_id: int
    amount: int
    seconds: int
    at: int


@dataclass(frozen=True)
class SlashRecord:
    job_id: int
    amount: int
    reason: str
    stake_after: int
    at: int


@dataclass(frozen=True)
class History:
    jobs: list[RunJob]
    payments: list[Payment]
    slashes: list[SlashRecord]

    @property
    def earned(self) -> int:
        return sum(p.amount for p in self.payments)

    def earnings_over_time(self) -> list[tuple[float, float]]:
        """(time, cumulative AIL earned) after each payment."""
        total, points = 0, []
        for p in sorted(self.payments, key=lambda p: p.at):
            total += p.amount
            points.append((float(p.at), total / 10**18))
        return points


def history(session: Session) -> History:
    """The jobs this account was assigned (newest first), its payments and its slashes,
    read from the chain's events for this account only."""
    market, me = session.compute_market, session.address
    since = session.deployment.block
    web3 = market.web3
    times: dict[int, int] = {}

    def at(block: int) -> int:
        if block not in times:
            times[block] = int(web3.eth.get_block(block)["timestamp"])
        return times[block]

    events = market.account_events(
        ["ProviderAssigned", "ProviderPaid", "ProviderPaidForTime"], me, since
    )
    jobs, payments = [], []
    for event in events:
        job_id = int(event.args["job_id"])
        if event.name == "ProviderAssigned":
            info = market.info(job_id)
            slot = next(
                (a for a in market.assignments(job_id) if a["provider"].lower() == me.lower()),
                None,
            )
            jobs.append(
                RunJob(
                    job_id,
                    JobStatus(int(info["status"])) if info else JobStatus.NONE,
                    int(event.args["price_per_hour"]),
                    int(slot["seconds_used"]) if slot else 0,
                    int(slot["paid"]) if slot else 0,
                    at(event.block_number),
                )
            )
        else:
            payments.append(
                Payment(
                    job_id,
                    int(event.args["amount"]),
                    int(event.args["seconds"]),
                    at(event.block_number),
                )
            )
    slashes = [
        SlashRecord(
            s.job_id,
            s.amount,
            SLASH_REASONS.get(s.reason, str(s.reason)),
            s.stake_after,
            at(s.block_number),
        )
        for s in session.compute_providers.slashes(me, since)
    ]
    jobs.reverse()
    return History(jobs, payments, slashes)


def _ail(amount: int) -> str:
    from ailedger.units import format_amount

    return format_amount(amount)
