"""Typed client for the Patients contract: links between hospitals' records and patients'
wallets, patients' consent per purpose, and their share of what datasets earn."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from ailedger.chain.contracts._base import ContractClient
from ailedger.chain.transactions import TxResult
from ailedger.errors import ContractError

MATCHMAKING = 32  # beside DataMarket's five purposes (1..16): consent to be matched
ALL_PURPOSES = 63
MAX_SHARE_BPS = 10_000
MAX_BATCH = 100  # links per add_to_cohort call


class LinkStatus(IntEnum):
    NONE = 0
    PROPOSED = 1
    ACTIVE = 2
    ENDED = 3


@dataclass(frozen=True)
class PatientLink:
    link_id: bytes
    hospital: str
    patient: str
    status: LinkStatus


def _id(link_id: bytes, what: str = "a link id") -> bytes:
    if len(link_id) != 32:
        raise ContractError(f"{what} has 32 bytes, not {len(link_id)}")
    return link_id


class PatientsClient(ContractClient):
    """Patients' links, consent and revenue share (see contracts/Patients.vy)."""

    contract_name = "Patients"

    # ------------------------------------------------------------ links

    def propose_link(self, link_id: bytes, patient: str) -> TxResult:
        return self._write("propose_link", _id(link_id), self.web3.to_checksum_address(patient))

    def accept_link(self, link_id: bytes) -> TxResult:
        return self._write("accept_link", _id(link_id))

    def end_link(self, link_id: bytes) -> TxResult:
        return self._write("end_link", _id(link_id))

    def link(self, link_id: bytes) -> PatientLink | None:
        hospital, patient, status = self._read("links", _id(link_id))
        if status == LinkStatus.NONE:
            return None
        return PatientLink(link_id, str(hospital), str(patient), LinkStatus(status))

    def links_of(self, patient: str) -> list[bytes]:
        """The patient's accepted, unended links."""
        return [bytes(x) for x in self._read("links_of", self.web3.to_checksum_address(patient))]

    # ------------------------------------------------------------ consent

    def set_consent(self, purposes: int) -> TxResult:
        if purposes & ALL_PURPOSES != purposes:
            raise ContractError(f"unknown purpose bits in {purposes}: the known ones are 1..32")
        return self._write("set_consent", purposes)

    def consent_of(self, patient: str) -> int:
        return int(self._read("consent", self.web3.to_checksum_address(patient)))

    def consents_to(self, link_id: bytes, purpose: int) -> bool:
        return bool(self._read("consents_to", _id(link_id), purpose))

    # ------------------------------------------------------------ cohorts and shares

    def set_share(self, dataset_id: bytes, bps: int) -> TxResult:
        if not 0 <= bps <= MAX_SHARE_BPS:
            raise ContractError(f"a share is 0..{MAX_SHARE_BPS} basis points, not {bps}")
        return self._write("set_share", _id(dataset_id, "a dataset id"), bps)

    def share_of(self, dataset_id: bytes) -> int:
        return int(self._read("share_bps", _id(dataset_id, "a dataset id")))

    def add_to_cohort(self, dataset_id: bytes, weights: dict[bytes, int]) -> list[TxResult]:
        """Name the links whose records the dataset holds, with a weight each (their
        records' count), in batches of at most :data:`MAX_BATCH`."""
        items = sorted(weights.items())
        if any(w <= 0 for _, w in items):
            raise ContractError("every link in a cohort has a positive weight")
        return [
            self._write(
                "add_to_cohort",
                _id(dataset_id, "a dataset id"),
                [_id(link) for link, _ in items[start : start + MAX_BATCH]],
                [w for _, w in items[start : start + MAX_BATCH]],
            )
            for start in range(0, len(items), MAX_BATCH)
        ]

    def weight(self, dataset_id: bytes, link_id: bytes) -> int:
        return int(self._read("weight", _id(dataset_id, "a dataset id"), _id(link_id)))

    def consenting_weight(self, dataset_id: bytes, purpose: int) -> int:
        return int(self._read("consenting_weight", _id(dataset_id, "a dataset id"), purpose))

    def claimable(self, patient: str) -> int:
        return int(self._read("claimable", self.web3.to_checksum_address(patient)))

    def claim(self) -> TxResult:
        return self._write("claim")
