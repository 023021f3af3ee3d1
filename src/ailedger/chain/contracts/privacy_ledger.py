"""The PrivacyLedger contract: one differential-privacy budget per dataset, on chain.

The dataset's owner sets a cap (epsilon, delta); the owner's node charges every DP release
over the dataset to it before the release leaves, with a compare-and-swap on the charge
count. The ``Charged`` events carry the full charge bytes, so anyone can rebuild the list
(:meth:`PrivacyLedgerClient.charges`), recompute the spend with an accountant off chain,
and check the list against the contract's running digest (:func:`charges_digest`). See
``contracts/PrivacyLedger.vy``.

Units: the contract keeps epsilon in millionths and delta as a numerator over 1e18.
Floats are converted from their shortest decimal form (``repr``: what the owner typed and
what Python prints), so a cap of 0.3 is 300000 micro, not 299999. A cap rounds **down**
(the budget is never larger than asked), a spend rounds **up** (a release is never
under-charged), and delta rounds down (the spend read at a smaller delta is larger).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import IntEnum

from eth_utils.crypto import keccak

from ailedger.chain.contracts._base import ContractClient
from ailedger.chain.transactions import TxResult
from ailedger.errors import (
    BudgetExceededError,
    ConfigError,
    PrivacyBudgetError,
    StaleChargeError,
    TransactionRevertedError,
)

MICRO = 10**6
DELTA_SCALE = 10**18
# The contract's bounds, checked here first so a bad cap fails before it costs gas.
MAX_EPSILON_MICRO = 100 * MICRO
MAX_DELTA_E18 = 10**17
MAX_CHARGE_BYTES = 2048


class ChargeKind(IntEnum):
    """What a charged release was (the contract's ``kind``)."""

    QUERY = 1
    TRAINING = 2
    RELEASE = 3


@dataclass(frozen=True)
class PrivacyBudget:
    """A dataset's budget: the cap (epsilon at ``delta``) and what has been spent of it.
    A dataset whose owner never set a cap reads as all zeros, ``private=False``."""

    epsilon_cap: float
    delta: float
    spent: float
    charges: int
    private: bool

    @property
    def remaining(self) -> float:
        """What is left of the cap; 0 once spent (or once the owner lowered the cap)."""
        return max(0.0, self.epsilon_cap - self.spent)


@dataclass(frozen=True)
class ChargeRecord:
    """One ``Charged`` event: a release charged to a dataset's budget."""

    dataset_id: bytes
    buyer: str
    ref: bytes
    kind: ChargeKind
    charges: bytes
    spent_after: float
    index: int
    block: int
    tx_hash: str

    @property
    def spent_after_micro(self) -> int:
        """The spend as the contract stored it (exact: micro amounts fit a float)."""
        return round(self.spent_after * MICRO)


def epsilon_cap_micro(epsilon: float) -> int:
    """An epsilon cap in the contract's millionths, rounded down; ConfigError if out of
    bounds (the contract takes 1 .. 100,000,000 micro, i.e. 0.000001 .. 100)."""
    if not math.isfinite(epsilon) or epsilon <= 0:
        raise ConfigError(f"the epsilon cap must be a finite number above 0, not {epsilon}")
    micro = math.floor(Decimal(repr(epsilon)) * MICRO)
    if not 1 <= micro <= MAX_EPSILON_MICRO:
        raise ConfigError(f"the epsilon cap must be 0.000001 .. 100, not {epsilon}")
    return micro


def delta_e18(delta: float) -> int:
    """A delta as the contract's numerator over 1e18, rounded down; ConfigError if out of
    bounds (1e-18 .. 0.1)."""
    if not math.isfinite(delta) or delta <= 0:
        raise ConfigError(f"delta must be a finite number above 0, not {delta}")
    scaled = math.floor(Decimal(repr(delta)) * DELTA_SCALE)
    if not 1 <= scaled <= MAX_DELTA_E18:
        raise ConfigError(f"delta must be 1e-18 .. 0.1, not {delta}")
    return scaled


def spent_micro(spent: float) -> int:
    """A total spend in the contract's millionths, rounded up (never under-charge);
    PrivacyBudgetError for NaN, infinity or a negative spend."""
    if not math.isfinite(spent) or spent < 0:
        raise PrivacyBudgetError(
            f"the spend to charge must be a finite epsilon of 0 or more, not {spent}: "
            "check the accountant's result"
        )
    return math.ceil(Decimal(repr(spent)) * MICRO)


def charges_digest(records: Sequence[ChargeRecord]) -> bytes:
    """The contract's running digest after ``records`` (one dataset's charges, in index
    order, from index 0): each step hashes the previous digest, the dataset id, the hash
    of the charge bytes, the buyer (20 bytes), ref, kind (1 byte), the spend and the index
    (32 bytes each, big-endian), exactly as ``PrivacyLedger.charge`` does."""
    digest = bytes(32)
    for r in records:
        digest = keccak(
            digest
            + r.dataset_id
            + keccak(r.charges)
            + bytes.fromhex(r.buyer.removeprefix("0x"))
            + r.ref
            + bytes([int(r.kind)])
            + r.spent_after_micro.to_bytes(32, "big")
            + r.index.to_bytes(32, "big")
        )
    return digest


class PrivacyLedgerClient(ContractClient):
    """A dataset's privacy budget: its owner sets the cap and charges releases; anyone
    reads the budget, the charge list and its digest."""

    contract_name = "PrivacyLedger"

    # --------------------------------------------------------------- owners

    def set_cap(self, dataset_id: bytes, epsilon: float, delta: float) -> TxResult:
        """Set (or move) the dataset's cap; the first call makes it private for good.
        Delta cannot change once a release was charged."""
        return self._write("set_cap", dataset_id, epsilon_cap_micro(epsilon), delta_e18(delta))

    def charge(
        self,
        dataset_id: bytes,
        buyer: str,
        ref: bytes,
        kind: ChargeKind,
        charges: bytes,
        spent_after: float,
        index: int,
    ) -> TxResult:
        """Charge one release before it leaves. ``spent_after`` is the accountant's total
        over every charge so far plus this one; ``index`` is the charge count it was
        computed over (``budget().charges``).

        Raises StaleChargeError if another release charged first (recompute and retry),
        BudgetExceededError if the spend would pass the cap (withhold the release)."""
        micro = spent_micro(spent_after)
        self._check_charge(buyer, ref, kind, charges, index)
        args = (self.web3.to_checksum_address(buyer), ref, int(kind), charges, micro, index)
        try:
            return self._write("charge", dataset_id, *args)
        except TransactionRevertedError as exc:
            raise self._refusal(exc, dataset_id, micro, index) from exc

    def _check_charge(
        self, buyer: str, ref: bytes, kind: ChargeKind, charges: bytes, index: int
    ) -> None:
        try:
            zero = int(buyer, 16) == 0
        except ValueError:
            raise PrivacyBudgetError(f"the buyer {buyer!r} is not an address") from None
        if zero:
            raise PrivacyBudgetError("a charge names the buyer whose release it is, not zero")
        if len(ref) != 32:
            raise PrivacyBudgetError(f"a charge's ref has 32 bytes, not {len(ref)}")
        if kind not in tuple(ChargeKind):
            raise PrivacyBudgetError(f"unknown charge kind {kind}: use a ChargeKind")
        if not 0 < len(charges) <= MAX_CHARGE_BYTES:
            raise PrivacyBudgetError(
                f"the charge bytes must be 1 .. {MAX_CHARGE_BYTES} long, not {len(charges)}"
            )
        if index < 0:
            raise PrivacyBudgetError(f"the charge index is the charge count, not {index}")

    def _refusal(
        self, exc: TransactionRevertedError, dataset_id: bytes, micro: int, index: int
    ) -> TransactionRevertedError:
        """The error a reverted charge means. A charge that passed the gas estimate and
        then lost a race reverts without a reason: read the state it lost to."""
        text = str(exc)
        if "privacy:" in text:
            stale = "stale charge index" in text
            exceeded = "exceed the cap" in text
        else:
            cap, _, _, count, private = self._read("budget", dataset_id)
            stale = int(count) != index
            exceeded = bool(private) and micro > int(cap)
        if stale:
            return StaleChargeError(
                f"charge {index} of dataset 0x{dataset_id.hex()} is stale: another release "
                "was charged first; read the budget, recompute the spend and charge again"
            )
        if exceeded:
            return BudgetExceededError(
                f"a spend of {micro / MICRO} would exceed the privacy cap of dataset "
                f"0x{dataset_id.hex()}: the release must not leave"
            )
        return exc

    # ---------------------------------------------------------------- views

    def budget(self, dataset_id: bytes) -> PrivacyBudget:
        cap, delta, spent, count, private = self._read("budget", dataset_id)
        return PrivacyBudget(
            epsilon_cap=int(cap) / MICRO,
            delta=int(delta) / DELTA_SCALE,
            spent=int(spent) / MICRO,
            charges=int(count),
            private=bool(private),
        )

    def is_private(self, dataset_id: bytes) -> bool:
        return bool(self._read("is_private", dataset_id))

    def digest(self, dataset_id: bytes) -> bytes:
        """The contract's running digest of the dataset's charges (zero before any)."""
        return bytes(self._read("charges_digest", dataset_id))

    def charges(self, dataset_id: bytes, from_block: int = 0) -> list[ChargeRecord]:
        """The dataset's charges from the ``Charged`` events, in index order: all that an
        auditor needs to recompute the spend and the digest."""
        logs = self._contract.events.Charged().get_logs(
            from_block=from_block, argument_filters={"dataset_id": dataset_id}
        )
        records = [
            ChargeRecord(
                dataset_id=bytes(e["args"]["dataset_id"]),
                buyer=str(e["args"]["buyer"]),
                ref=bytes(e["args"]["ref"]),
                kind=ChargeKind(int(e["args"]["kind"])),
                charges=bytes(e["args"]["charges"]),
                spent_after=int(e["args"]["spent_after_micro"]) / MICRO,
                index=int(e["args"]["index"]),
                block=int(e["blockNumber"]),
                tx_hash="0x" + bytes(e["transactionHash"]).hex(),
            )
            for e in logs
        ]
        return sorted(records, key=lambda r: r.index)
