"""Typed client for the ComputeMarket contract: offers, jobs, the reverse auction,
commit-reveal of results and settlement. See ``contracts/ComputeMarket.vy`` for the rules.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, NamedTuple, TypedDict

from eth_utils.crypto import keccak

from ailedger.chain.contracts._base import ContractClient, named_struct
from ailedger.chain.market_windows import MarketWindows
from ailedger.chain.transactions import TxResult
from ailedger.errors import ContractError

# Gas limits for the calls on a job's path to starting: fixed so the sender skips the
# estimate (an EVM run of its own). Measured (tests/contracts, test_gas_of_main_calls):
# post_job 357k, bid 109k, close_auction 420k with k = 3 and 5 bids; the limits leave room
# for 4 datasets, 32 bids and k = 5. Unused gas is not paid for.
POST_GAS = 1_500_000
BID_GAS = 400_000
CLOSE_GAS = 3_000_000


class JobStatus(IntEnum):
    NONE = 0
    OPEN = 1
    ASSIGNED = 2
    REVIEW = 3
    COMPLETED = 4
    DISPUTED = 5
    REJECTED = 6
    CANCELLED = 7
    EXPIRED = 8
    TIEBREAK = 9

    @property
    def ended(self) -> bool:
        """Terminal: escrow settled or refunded, stakes unlocked."""
        return self in (self.COMPLETED, self.DISPUTED, self.REJECTED, self.CANCELLED, self.EXPIRED)

    @property
    def running(self) -> bool:
        """Bidding or computing, no result revealed yet: the requester can still cancel."""
        return self in (self.OPEN, self.ASSIGNED, self.TIEBREAK)


@dataclass(frozen=True)
class JobTerms:
    """What a requester asks for and is ready to pay (escrow = price x hours x k, plus
    one share more for k >= 2: the reserve that pays a tie-break provider).

    ``datasets`` names DataMarket datasets the job computes on, each with the
    requester's grant in ``grant_ids`` (same order) for the single ``purpose`` bit."""

    bundle_hash: bytes
    cpu_cores: int
    ram_mb: int
    gpu_mem_mb: int
    max_price_per_hour: int
    max_hours: int
    deadline: int
    redundancy: int = 1
    min_reputation: int = 0
    require_confined: bool = True
    datasets: tuple[bytes, ...] = ()
    grant_ids: tuple[int, ...] = ()
    purpose: int = 0

    @property
    def max_cost(self) -> int:
        """The escrow posting takes (the token allowance must cover it)."""
        shares = self.redundancy + 1 if self.redundancy >= 2 else self.redundancy
        return self.max_price_per_hour * self.max_hours * shares


@dataclass(frozen=True)
class JobRecord:
    job_id: int
    requester: str
    status: JobStatus
    escrow: int
    bid_deadline: int
    result_hash: bytes


class JobInfo(TypedDict):
    """Every stored field of a job (the contract's ``Job`` struct, in its order)."""

    requester: str
    bundle_hash: bytes
    cpu_cores: int
    ram_mb: int
    gpu_mem_mb: int
    max_price_per_hour: int
    max_hours: int
    deadline: int
    redundancy: int
    min_reputation: int
    require_confined: bool
    status: JobStatus
    escrow: int
    bid_deadline: int
    commits: int
    reveals: int
    reveal_deadline: int
    review_deadline: int
    result_hash: bytes


class Assignment(TypedDict):
    """One provider's slot in a job (the contract's ``Assignment`` struct, in its order)."""

    provider: str
    price_per_hour: int
    commitment: bytes
    output_hash: bytes
    seconds_used: int
    revealed: bool
    paid: int
    assigned_at: int
    committed_at: int


class _Bid(TypedDict):
    """The contract's ``Bid`` struct, in its order."""

    provider: str
    price_per_hour: int


class MarketEvent(NamedTuple):
    """One decoded market event; ``args`` holds that event's fields by name."""

    name: str
    args: dict[str, Any]
    block_number: int


def commitment(output_hash: bytes, salt: bytes) -> bytes:
    """keccak256(output_hash ++ salt): what a provider commits before revealing."""
    return bytes(keccak(output_hash + salt))


def new_salt() -> bytes:
    return secrets.token_bytes(32)


class ComputeMarketClient(ContractClient):
    contract_name = "ComputeMarket"

    # ------------------------------------------------------------- providers

    def bid(self, job_id: int, price_per_hour: int) -> TxResult:
        return self._write("bid", job_id, price_per_hour, gas=BID_GAS)

    def commit_result(self, job_id: int, output_hash: bytes, salt: bytes) -> TxResult:
        return self._write("commit_result", job_id, commitment(output_hash, salt))

    def reveal_result(self, job_id: int, output_hash: bytes, salt: bytes, seconds: int) -> TxResult:
        """Reveal a committed result, claiming ``seconds`` of work: the market pays at most
        the time that passed between assignment and commitment."""
        return self._write("reveal_result", job_id, output_hash, salt, seconds)

    # ------------------------------------------------------------ requesters

    def post_job(self, terms: JobTerms, *, gas: int | None = None) -> tuple[int, TxResult]:
        """Post a job (the token allowance must cover ``terms.max_cost``); returns its id.
        ``gas`` skips the estimate, e.g. right after an approval still in the pool."""
        from web3.logs import DISCARD

        result = self._write(
            "post_job",
            terms.bundle_hash,
            terms.cpu_cores,
            terms.ram_mb,
            terms.gpu_mem_mb,
            terms.max_price_per_hour,
            terms.max_hours,
            terms.deadline,
            terms.redundancy,
            terms.min_reputation,
            terms.require_confined,
            list(terms.datasets),
            list(terms.grant_ids),
            terms.purpose,
            gas=gas,
        )
        events = self._contract.events.JobPosted().process_receipt(result.receipt, errors=DISCARD)
        if not events:
            raise ContractError(f"job {result.tx_hash} emitted no JobPosted event")
        return int(events[0]["args"]["job_id"]), result

    def close_auction(self, job_id: int) -> TxResult:
        return self._write("close_auction", job_id, gas=CLOSE_GAS)

    def accept(self, job_id: int) -> TxResult:
        return self._write("accept", job_id)

    def dispute(self, job_id: int) -> TxResult:
        """Challenge a k = 1 result under review, posting the bond (the token allowance
        must cover :meth:`dispute_bond`): another provider re-executes the job and the
        loser pays (see the contract's notice)."""
        return self._write("dispute", job_id)

    @staticmethod
    def dispute_bond(info: JobInfo) -> int:
        """What disputing the job takes from the requester: one share at the cap."""
        return info["max_price_per_hour"] * info["max_hours"]

    def finalize(self, job_id: int) -> TxResult:
        """Pay a k = 1 provider whose result went unchallenged through the dispute window."""
        return self._write("finalize", job_id)

    def settle(self, job_id: int) -> TxResult:
        return self._write("settle", job_id)

    def cancel(self, job_id: int) -> TxResult:
        """Cancel a job: OPEN for a full refund; ASSIGNED (or TIEBREAK) before a result is
        revealed, paying each provider for the seconds since it was assigned."""
        return self._write("cancel_job", job_id)

    def expire(self, job_id: int) -> TxResult:
        return self._write("expire", job_id)

    # ----------------------------------------------------------------- views

    def job(self, job_id: int) -> JobRecord | None:
        info = self.info(job_id)
        if info is None:
            return None
        return JobRecord(
            job_id,
            info["requester"],
            info["status"],
            info["escrow"],
            info["bid_deadline"],
            info["result_hash"],
        )

    def info(self, job_id: int) -> JobInfo | None:
        """Every stored field of a job by name, or None for an unknown id."""
        raw = named_struct(self._read("job_info", job_id), JobInfo)
        status = JobStatus(int(raw["status"]))
        if status == JobStatus.NONE:
            return None
        return JobInfo(
            requester=str(raw["requester"]),
            bundle_hash=bytes(raw["bundle_hash"]),
            cpu_cores=int(raw["cpu_cores"]),
            ram_mb=int(raw["ram_mb"]),
            gpu_mem_mb=int(raw["gpu_mem_mb"]),
            max_price_per_hour=int(raw["max_price_per_hour"]),
            max_hours=int(raw["max_hours"]),
            deadline=int(raw["deadline"]),
            redundancy=int(raw["redundancy"]),
            min_reputation=int(raw["min_reputation"]),
            require_confined=bool(raw["require_confined"]),
            status=status,
            escrow=int(raw["escrow"]),
            bid_deadline=int(raw["bid_deadline"]),
            commits=int(raw["commits"]),
            reveals=int(raw["reveals"]),
            reveal_deadline=int(raw["reveal_deadline"]),
            review_deadline=int(raw["review_deadline"]),
            result_hash=bytes(raw["result_hash"]),
        )

    def events(self, from_block: int, to_block: int) -> list[MarketEvent]:
        """Every market event in the block range, in chain order: what the provider agent
        and ``job status`` follow."""
        from web3.exceptions import MismatchedABI

        logs = self.web3.eth.get_logs(
            {"address": self.address, "fromBlock": from_block, "toBlock": to_block}
        )
        found: list[MarketEvent] = []
        for log in logs:
            topic = bytes(log["topics"][0])
            event = self._event_by_topic().get(topic)
            if event is None:
                continue
            try:
                decoded = event().process_log(log)
            except MismatchedABI:
                continue
            found.append(
                MarketEvent(str(decoded["event"]), dict(decoded["args"]), int(log["blockNumber"]))
            )
        return found

    def _event_by_topic(self) -> dict[bytes, Any]:
        if not hasattr(self, "_topics"):
            from eth_utils.abi import event_abi_to_log_topic

            self._topics = {
                bytes(event_abi_to_log_topic(e)): getattr(self._contract.events, e["name"])  # type: ignore[arg-type,typeddict-item]
                for e in self._contract.abi
                if e.get("type") == "event"
            }
        return self._topics

    def account_events(
        self, names: Sequence[str], account: str, from_block: int = 0
    ) -> list[MarketEvent]:
        """The events named ``names`` (each indexed by job id, then by a requester or a
        provider: JobPosted, ProviderAssigned, ProviderPaid, ...) of ``account``, in chain
        order: a home's own jobs and earnings without reading everyone's."""
        return [MarketEvent(*found) for found in self._account_logs(names, account, from_block)]

    def auction_failed(self, job_id: int) -> int | None:
        """The eligible bids counted when the job's auction closed with fewer than k
        (``AuctionFailed``: the job was cancelled and its escrow refunded), or None."""
        from eth_utils.abi import event_abi_to_log_topic

        [abi] = [e for e in self._contract.abi if e.get("name") == "AuctionFailed"]
        logs = self.web3.eth.get_logs(
            {
                "address": self.address,
                "fromBlock": 0,
                "toBlock": "latest",
                "topics": [
                    "0x" + bytes(event_abi_to_log_topic(abi)).hex(),  # type: ignore[arg-type]
                    "0x" + job_id.to_bytes(32, "big").hex(),
                ],
            }
        )
        if not logs:
            return None
        decoded = self._contract.events.AuctionFailed().process_log(logs[0])
        return int(decoded["args"]["eligible_bids"])

    def assignments(self, job_id: int) -> list[Assignment]:
        """The winners by slot; slot k, if present, is the tie-break provider."""
        return [
            Assignment(
                provider=str(raw["provider"]),
                price_per_hour=int(raw["price_per_hour"]),
                commitment=bytes(raw["commitment"]),
                output_hash=bytes(raw["output_hash"]),
                seconds_used=int(raw["seconds_used"]),
                revealed=bool(raw["revealed"]),
                paid=int(raw["paid"]),
                assigned_at=int(raw["assigned_at"]),
                committed_at=int(raw["committed_at"]),
            )
            for raw in (named_struct(a, Assignment) for a in self._read("job_assignments", job_id))
        ]

    def job_bids(self, job_id: int) -> list[tuple[str, int]]:
        """(provider, price per hour) of the job's current auction round, in bid order."""
        return [
            (str(raw["provider"]), int(raw["price_per_hour"]))
            for raw in (named_struct(b, _Bid) for b in self._read("job_bids", job_id))
        ]

    def job_datasets(self, job_id: int) -> tuple[tuple[bytes, ...], int]:
        """The datasets a job computes on and the DataMarket purpose of its grants."""
        datasets, purpose = self._read("job_datasets", job_id)
        return tuple(bytes(d) for d in datasets), int(purpose)

    def reveal_deadline(self, job_id: int) -> int:
        return int(self._read("reveal_deadline", job_id))

    def windows(self) -> MarketWindows:
        """The bid, reveal and dispute windows this market was deployed with."""
        return MarketWindows(
            bid_s=int(self._read("BID_WINDOW")),
            reveal_s=int(self._read("REVEAL_WINDOW")),
            dispute_s=int(self._read("DISPUTE_WINDOW")),
        )
