"""The DataMarket contract: datasets, policies, and the consent lifecycle of each request.

Purposes are a fixed vocabulary (one bit each, see ``contracts/DataMarket.vy``); a policy
allows a set of them, a request names exactly one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from ailedger.chain.contracts._base import ContractClient
from ailedger.chain.transactions import TxResult
from ailedger.errors import ConfigError, ContractError

PURPOSES: dict[str, int] = {
    "rare-disease-research": 1,
    "model-training": 2,
    "public-health": 4,
    "clinical-care": 8,
    "commercial-development": 16,
}


class GrantStatus(IntEnum):
    NONE = 0
    PENDING = 1
    GRANTED = 2
    DENIED = 3
    CANCELLED = 4
    REVOKED = 5
    EXPIRED = 6


def purpose_bit(name: str) -> int:
    try:
        return PURPOSES[name]
    except KeyError:
        raise ConfigError(
            f"unknown purpose {name!r}; choose one of: {', '.join(PURPOSES)}"
        ) from None


def purpose_mask(names: list[str]) -> int:
    mask = 0
    for name in names:
        mask |= purpose_bit(name)
    if not mask:
        raise ConfigError(f"name at least one allowed purpose: {', '.join(PURPOSES)}")
    return mask


def purpose_names(mask: int) -> list[str]:
    return [name for name, bit in PURPOSES.items() if mask & bit]


@dataclass(frozen=True)
class Policy:
    purposes: int
    needs_approval: bool
    price: int
    duration_s: int
    max_reads: int  # 0 = unlimited


@dataclass(frozen=True)
class DatasetRecord:
    dataset_id: bytes
    owner: str
    ciphertext_hash: bytes
    metadata_hash: bytes
    policy: Policy
    retired: bool
    registered_at: int


@dataclass(frozen=True)
class GrantRecord:
    request_id: int
    dataset_id: bytes
    requester: str
    purpose: int
    status: GrantStatus
    amount: int
    expires_at: int
    max_reads: int


class DataMarketClient(ContractClient):
    contract_name = "DataMarket"

    # --------------------------------------------------------------- owners

    def register_dataset(
        self, dataset_id: bytes, ciphertext_hash: bytes, metadata_hash: bytes, policy: Policy
    ) -> TxResult:
        return self._write(
            "register_dataset",
            dataset_id,
            ciphertext_hash,
            metadata_hash,
            policy.purposes,
            policy.needs_approval,
            policy.price,
            policy.duration_s,
            policy.max_reads,
        )

    def grant(self, request_id: int) -> TxResult:
        return self._write("grant", request_id)

    def deny(self, request_id: int) -> TxResult:
        return self._write("deny", request_id)

    def revoke(self, request_id: int) -> TxResult:
        return self._write("revoke", request_id)

    def retire(self, dataset_id: bytes) -> TxResult:
        return self._write("retire_dataset", dataset_id)

    # ----------------------------------------------------------- requesters

    def request_access(self, dataset_id: bytes, purpose: int) -> tuple[int, TxResult]:
        """Request access (the token allowance must cover the price); returns the id."""
        result = self._write("request_access", dataset_id, purpose)
        from web3.logs import DISCARD

        # The receipt also holds the token's Transfer logs: skip what is not ours.
        events = self._contract.events.RequestCreated().process_receipt(
            result.receipt, errors=DISCARD
        )
        if not events:
            raise ContractError(f"request {result.tx_hash} emitted no RequestCreated event")
        return int(events[0]["args"]["request_id"]), result

    def cancel(self, request_id: int) -> TxResult:
        return self._write("cancel_request", request_id)

    # ---------------------------------------------------------------- views

    def dataset(self, dataset_id: bytes) -> DatasetRecord | None:
        raw = self._read("datasets", dataset_id)
        fields = _fields(
            raw,
            [
                "owner",
                "ciphertext_hash",
                "metadata_hash",
                "purposes",
                "needs_approval",
                "price",
                "duration",
                "max_reads",
                "retired",
                "registered_at",
            ],
        )
        if int(fields["owner"], 16) == 0:
            return None
        policy = Policy(
            int(fields["purposes"]),
            bool(fields["needs_approval"]),
            int(fields["price"]),
            int(fields["duration"]),
            int(fields["max_reads"]),
        )
        return DatasetRecord(
            dataset_id,
            str(fields["owner"]),
            bytes(fields["ciphertext_hash"]),
            bytes(fields["metadata_hash"]),
            policy,
            bool(fields["retired"]),
            int(fields["registered_at"]),
        )

    def grant_info(self, request_id: int) -> GrantRecord | None:
        raw = self._read("grant_info", request_id)
        fields = _fields(
            raw,
            [
                "dataset_id",
                "requester",
                "purpose",
                "status",
                "amount",
                "duration",
                "max_reads",
                "expires_at",
            ],
        )
        if int(fields["status"]) == GrantStatus.NONE:
            return None
        return GrantRecord(
            request_id,
            bytes(fields["dataset_id"]),
            str(fields["requester"]),
            int(fields["purpose"]),
            GrantStatus(int(self._read("access_status", request_id))),
            int(fields["amount"]),
            int(fields["expires_at"]),
            int(fields["max_reads"]),
        )

    def check_access(
        self, request_id: int, requester: str, dataset_id: bytes, purpose: int
    ) -> bool:
        return bool(
            self._read(
                "check_access",
                request_id,
                self.web3.to_checksum_address(requester),
                dataset_id,
                purpose,
            )
        )


def _fields(raw: Any, names: list[str]) -> dict[str, Any]:
    """web3 returns structs as tuples (or dicts on some versions): name them."""
    if isinstance(raw, dict):
        return dict(raw)
    return dict(zip(names, raw, strict=True))
