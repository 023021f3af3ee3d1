"""Typed client for the ComputeMarket contract: offers, jobs, the reverse auction,
commit-reveal of results and settlement. See ``contracts/ComputeMarket.vy`` for the rules.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from eth_utils.crypto import keccak

from ailedger.chain.clients import ContractClient
from ailedger.chain.transactions import TxResult
from ailedger.errors import ContractError


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


@dataclass(frozen=True)
class JobTerms:
    """What a requester asks for and is ready to pay (escrow = price x hours x k)."""

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

    @property
    def max_cost(self) -> int:
        return self.max_price_per_hour * self.max_hours * self.redundancy


@dataclass(frozen=True)
class JobRecord:
    job_id: int
    requester: str
    status: JobStatus
    escrow: int
    bid_deadline: int
    result_hash: bytes


def commitment(output_hash: bytes, salt: bytes) -> bytes:
    """keccak256(output_hash ++ salt): what a provider commits before revealing."""
    return bytes(keccak(output_hash + salt))


def new_salt() -> bytes:
    return secrets.token_bytes(32)


class ComputeMarketClient(ContractClient):
    contract_name = "ComputeMarket"

    # ------------------------------------------------------------- providers

    def register_provider(self, stake: int) -> TxResult:
        return self._write("register_provider", stake)  # type: ignore[no-any-return]

    def post_offer(
        self,
        cpu_cores: int,
        ram_mb: int,
        gpu_model: str,
        gpu_mem_mb: int,
        price_per_hour: int,
        confined: bool,
    ) -> TxResult:
        return self._write(  # type: ignore[no-any-return]
            "post_offer", cpu_cores, ram_mb, gpu_model, gpu_mem_mb, price_per_hour, confined
        )

    def bid(self, job_id: int, price_per_hour: int) -> TxResult:
        return self._write("bid", job_id, price_per_hour)  # type: ignore[no-any-return]

    def commit_result(self, job_id: int, output_hash: bytes, salt: bytes) -> TxResult:
        return self._write(  # type: ignore[no-any-return]
            "commit_result", job_id, commitment(output_hash, salt)
        )

    def reveal_result(self, job_id: int, output_hash: bytes, salt: bytes, hours: int) -> TxResult:
        return self._write(  # type: ignore[no-any-return]
            "reveal_result", job_id, output_hash, salt, hours
        )

    # ------------------------------------------------------------ requesters

    def post_job(self, terms: JobTerms) -> tuple[int, TxResult]:
        """Post a job (the token allowance must cover ``terms.max_cost``); returns its id."""
        from web3.logs import DISCARD

        result: TxResult = self._write(
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
        )
        events = self._contract.events.JobPosted().process_receipt(result.receipt, errors=DISCARD)
        if not events:
            raise ContractError(f"job {result.tx_hash} emitted no JobPosted event")
        return int(events[0]["args"]["job_id"]), result

    def close_auction(self, job_id: int) -> TxResult:
        return self._write("close_auction", job_id)  # type: ignore[no-any-return]

    def accept(self, job_id: int) -> TxResult:
        return self._write("accept", job_id)  # type: ignore[no-any-return]

    def dispute(self, job_id: int) -> TxResult:
        return self._write("dispute", job_id)  # type: ignore[no-any-return]

    def settle(self, job_id: int) -> TxResult:
        return self._write("settle", job_id)  # type: ignore[no-any-return]

    def cancel(self, job_id: int) -> TxResult:
        return self._write("cancel_job", job_id)  # type: ignore[no-any-return]

    def expire(self, job_id: int) -> TxResult:
        return self._write("expire", job_id)  # type: ignore[no-any-return]

    # ----------------------------------------------------------------- views

    def job(self, job_id: int) -> JobRecord | None:
        raw = _named(self._read("job_info", job_id), _JOB_FIELDS)
        if int(raw["status"]) == JobStatus.NONE:
            return None
        return JobRecord(
            job_id,
            str(raw["requester"]),
            JobStatus(int(raw["status"])),
            int(raw["escrow"]),
            int(raw["bid_deadline"]),
            bytes(raw["result_hash"]),
        )

    def assignments(self, job_id: int) -> list[dict[str, Any]]:
        return [_named(a, _ASSIGNMENT_FIELDS) for a in self._read("job_assignments", job_id)]

    def provider(self, account: str) -> dict[str, Any]:
        raw = self._read("provider_info", self.web3.to_checksum_address(account))
        return _named(raw, _PROVIDER_FIELDS)


_JOB_FIELDS = [
    "requester",
    "bundle_hash",
    "cpu_cores",
    "ram_mb",
    "gpu_mem_mb",
    "max_price_per_hour",
    "max_hours",
    "deadline",
    "redundancy",
    "min_reputation",
    "require_confined",
    "status",
    "escrow",
    "bid_deadline",
    "commits",
    "reveals",
    "reveal_deadline",
    "review_deadline",
    "result_hash",
]
_ASSIGNMENT_FIELDS = [
    "provider",
    "price_per_hour",
    "commitment",
    "output_hash",
    "hours_used",
    "revealed",
    "paid",
]
_PROVIDER_FIELDS = ["registered", "stake", "active_jobs", "completed", "failed", "slashed"]


def _named(raw: Any, names: list[str]) -> dict[str, Any]:
    if isinstance(raw, dict):
        return dict(raw)
    return dict(zip(names, raw, strict=True))
