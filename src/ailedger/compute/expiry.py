"""Refunds for stuck jobs without the requester: expire the known jobs that are due.

``ComputeMarket.expire`` (anyone may call it) ends a job no result can settle any more:
past its deadline with nothing revealed and no reveal still possible. The requester's
node (its background chores) and every provider agent keep an :class:`ExpiryWatch` of
the jobs they know of (their own postings; the jobs they bid on or run) and expire the
ones that fall due, so a requester who is away still gets the escrow back, and a
provider's stake lock ends.

Work per tick is bounded: at most ``per_tick`` jobs are looked at, the earliest deadline
first, and a job is looked at again only when it could have changed (its reveal window's
end), never in a busy loop.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from ailedger.chain.contracts.compute_market import JobStatus
from ailedger.errors import AiledgerError, ContractError

if TYPE_CHECKING:
    from ailedger.chain.contracts import ComputeMarketClient

log = logging.getLogger(__name__)

# Jobs looked at per tick: a few chain reads each, at most one transaction.
PER_TICK = 8
# When to look again at a job the chain would not expire yet.
RETRY_S = 30


class ExpiryWatch:
    """The jobs one party knows of, by when to look at them next (a chain timestamp)."""

    def __init__(self, market: ComputeMarketClient, per_tick: int = PER_TICK) -> None:
        self._market = market
        self._per_tick = per_tick
        self._due: dict[int, int] = {}

    def watch(self, job_id: int, deadline: int) -> None:
        """Look at ``job_id`` from its ``deadline`` on (again, for a known job: no change)."""
        self._due.setdefault(job_id, deadline)

    def forget(self, job_id: int) -> None:
        self._due.pop(job_id, None)

    @property
    def watched(self) -> int:
        return len(self._due)

    def tick(self, now: int) -> list[int]:
        """Expire what is due at chain time ``now``; returns the job ids expired."""
        expired: list[int] = []
        # A copy: the provider agent's bidders add jobs from their own threads meanwhile.
        due = sorted((at, job_id) for job_id, at in self._due.copy().items() if at <= now)
        for _, job_id in due[: self._per_tick]:
            try:
                if self._look_at(job_id, now):
                    expired.append(job_id)
            except AiledgerError as exc:  # the chain may be briefly away: next tick
                log.warning("expiring job %d failed: %s", job_id, exc)
        return expired

    def _look_at(self, job_id: int, now: int) -> bool:
        info = self._market.info(job_id)
        if info is None or info["status"] not in (
            JobStatus.OPEN,
            JobStatus.ASSIGNED,
            JobStatus.TIEBREAK,
        ):
            # Ended, or under k = 1 review (finalize ends it): nothing for expire to do.
            self.forget(job_id)
            return False
        if now < info["deadline"]:
            self._due[job_id] = info["deadline"]
            return False
        if info["status"] == JobStatus.ASSIGNED and info["reveals"] != 0:
            self.forget(job_id)  # a result is in: settle or review, not expire
            return False
        if info["status"] != JobStatus.OPEN and info["commits"] != 0:
            reveal_end = self._market.reveal_deadline(job_id)
            if now < reveal_end:
                self._due[job_id] = reveal_end  # a committed result may still be revealed
                return False
        try:
            self._market.expire(job_id)
        except ContractError as exc:
            # The chain's clock lags ours, or a tie-break result came in (settle ends
            # it): look again later, the job is forgotten once it has ended.
            log.info("job %d is not expired yet: %s", job_id, exc)
            self._due[job_id] = now + RETRY_S
            return False
        self.forget(job_id)
        return True


class PostedJobs:
    """The requester side: follow the market's ``JobPosted`` events for ``requester`` (at
    most ``blocks_per_tick`` blocks a tick, from ``from_block``) and expire its jobs that
    fall due. The node's chores run one tick a round."""

    def __init__(
        self,
        market: ComputeMarketClient,
        requester: str,
        from_block: int = 0,
        blocks_per_tick: int = 5_000,
    ) -> None:
        self.market = market
        self.watch = ExpiryWatch(market)
        self._requester = requester.lower()
        self._next_block = from_block
        self._blocks_per_tick = blocks_per_tick

    def run_once(self) -> list[int]:
        """Read the next blocks' postings, then expire what is due; returns the job ids
        expired."""
        web3 = self.market.web3
        head = int(web3.eth.block_number)
        if head >= self._next_block:
            last = min(head, self._next_block + self._blocks_per_tick - 1)
            for event in self.market.events(self._next_block, last):
                args = event.args
                if event.name == "JobPosted" and str(args["requester"]).lower() == self._requester:
                    self.watch.watch(int(args["job_id"]), int(args["deadline"]))
            self._next_block = last + 1
        return self.watch.tick(chain_time(self.market))


def chain_time(market: ComputeMarketClient) -> int:
    """About the timestamp of the next block, the clock ``expire`` is judged by: the
    latest block's, or the wall clock if later (a chain that seals blocks only for
    transactions keeps an old latest block while it is idle)."""
    latest = int(market.web3.eth.get_block("latest")["timestamp"])
    return max(latest, int(time.time()))
