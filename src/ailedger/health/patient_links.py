"""Links between a hospital's patients and their own wallets (the Patients contract).

Hospital side. :func:`propose_link` draws a random link id (32 bytes from ``secrets``),
writes it against the patient's local id in ``health_patient_links`` and only then
proposes it on chain: a crash in between leaves a row whose link id the hospital sends
again (the next :func:`propose_link` for that patient resumes it), never a chain link the
hospital forgot. The link id is what the hospital hands the patient (on paper, as a QR
code); nothing on chain names the patient, and the id cannot be confirmed by guessing
because it is derived from nothing.

Patient side (any home can be a patient's: a wallet like any party): accept a link, set
consent by purpose names, end a link, read the links and what they earned, claim it.

Purpose names are DataMarket's (``PURPOSES``) plus ``matchmaking``; each is one bit of
the contract's consent mask.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import BigInteger, Column, Engine, String, Table, UniqueConstraint, select

from ailedger.chain.contracts.data_market import PURPOSES
from ailedger.chain.contracts.patients import MATCHMAKING, LinkStatus, PatientLink
from ailedger.db import metadata, transaction, upsert
from ailedger.errors import AiledgerError, ChainError, ConfigError, TransactionRevertedError
from ailedger.health.patients import PatientStore

if TYPE_CHECKING:
    from ailedger.chain.transactions import TxResult
    from ailedger.session import Session

T = TypeVar("T")

PATIENT_PURPOSES: dict[str, int] = {**PURPOSES, "matchmaking": MATCHMAKING}
RESEARCH = PURPOSES["rare-disease-research"]

links_table = Table(
    "health_patient_links",
    metadata,
    Column("local_id", String(256), primary_key=True),  # one open link per patient record
    Column("link_id", String(64), nullable=False),  # hex of 32 random bytes
    Column("wallet", String(42), nullable=False),  # the patient's address, checksummed
    Column("status", String(16), nullable=False),  # as last seen: proposed, active, ended
    Column("proposed_at", BigInteger, nullable=False),  # unix seconds
    UniqueConstraint("link_id", name="uq_health_patient_links_link_id"),
)

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_LINK_ID = re.compile(r"(0x)?[0-9a-fA-F]{64}")


class PatientLinkError(AiledgerError):
    """A link between a patient record and a wallet cannot be made or used (says why)."""


class AlreadyLinkedError(PatientLinkError):
    """The patient record already has a proposed or accepted link."""


class NoSuchLinkError(PatientLinkError):
    """No link with that id was proposed on this chain (or none for that local id)."""


class NotTheNamedPatientError(PatientLinkError):
    """The caller is not the wallet the hospital named in the link."""


@dataclass(frozen=True)
class LinkRecord:
    """What the hospital keeps of one link: never on chain, it names the record."""

    local_id: str
    link_id: str  # hex, no 0x
    wallet: str
    status: str
    proposed_at: int

    @property
    def link_bytes(self) -> bytes:
        return bytes.fromhex(self.link_id)


# ---------------------------------------------------------------- purposes


def purpose_bits(names: Iterable[str]) -> int:
    """The consent mask of purpose ``names`` (DataMarket's five and ``matchmaking``)."""
    mask = 0
    for name in names:
        if name not in PATIENT_PURPOSES:
            raise ConfigError(
                f"unknown purpose {name!r}; choose from: {', '.join(PATIENT_PURPOSES)}"
            )
        mask |= PATIENT_PURPOSES[name]
    return mask


def purpose_names(mask: int) -> list[str]:
    return [name for name, bit in PATIENT_PURPOSES.items() if mask & bit]


def parse_link_id(text: str) -> bytes:
    """A link id as handed to a patient: 64 hex digits, with or without ``0x``."""
    text = text.strip()
    if not _LINK_ID.fullmatch(text):
        raise ConfigError(
            f"a link id is 64 hex digits (as the hospital printed it), not {text[:70]!r}"
        )
    return bytes.fromhex(text.removeprefix("0x"))


def check_wallet(wallet: str) -> str:
    if not _ADDRESS.fullmatch(wallet.strip()):
        raise ConfigError(
            f"{wallet[:60]!r} is not a wallet address: give the patient's 0x address "
            "(40 hex digits), as `ailedger account show` prints it in their home"
        )
    return wallet.strip()


# ---------------------------------------------------------------- the hospital's table


class PatientLinks:
    """The hospital's links, one row per patient record (``health_patient_links``)."""

    def __init__(self, database: Engine) -> None:
        self._db = database

    def get(self, local_id: str) -> LinkRecord | None:
        with transaction(self._db) as conn:
            row = conn.execute(
                select(links_table).where(links_table.c.local_id == local_id)
            ).one_or_none()
        return None if row is None else LinkRecord(*row)

    def all(self) -> list[LinkRecord]:
        with transaction(self._db) as conn:
            rows = conn.execute(select(links_table).order_by(links_table.c.local_id)).all()
        return [LinkRecord(*row) for row in rows]

    def by_local_id(self) -> dict[str, LinkRecord]:
        """Every link, by local id: one read for a whole cohort's consent checks."""
        return {record.local_id: record for record in self.all()}

    def put(self, record: LinkRecord) -> None:
        with transaction(self._db) as conn:
            upsert(conn, links_table, [record.__dict__], key=("local_id",))


# ---------------------------------------------------------------- hospital side


def propose_link(session: Session, store: PatientStore, local_id: str, wallet: str) -> LinkRecord:
    """Propose that the record ``local_id`` is the patient at ``wallet``'s; returns the
    link, whose ``link_id`` the hospital hands the patient to accept."""
    wallet = session.patients.web3.to_checksum_address(check_wallet(wallet))
    store.get(local_id)  # PatientNotFoundError: an unknown local id is refused
    if wallet == session.address:
        raise PatientLinkError(
            "that wallet is this hospital's own account; give the patient's wallet address"
        )
    links = PatientLinks(session.database)
    existing = links.get(local_id)
    if existing is not None:
        resumed = _resume(session, links, existing, wallet)
        if resumed is not None:
            return resumed
    record = LinkRecord(local_id, secrets.token_bytes(32).hex(), wallet, "proposed", _now())
    links.put(record)  # first: a crash now leaves an id to send again, not a lost chain link
    _contract_call(lambda: session.patients.propose_link(record.link_bytes, wallet))
    return record


def _resume(
    session: Session, links: PatientLinks, existing: LinkRecord, wallet: str
) -> LinkRecord | None:
    """What to do when the record already has a link: send again a proposal that never
    reached the chain, refuse an open one, start afresh after an ended one (None)."""
    on_chain = session.patients.link(existing.link_bytes)
    if on_chain is None:
        if existing.wallet != wallet:
            return None  # never on chain: nothing to forget, a new id for the new wallet
        _contract_call(lambda: session.patients.propose_link(existing.link_bytes, wallet))
        return existing
    if on_chain.status == LinkStatus.ENDED:
        links.put(_with_status(existing, LinkStatus.ENDED))
        return None
    state = "accepted by" if on_chain.status == LinkStatus.ACTIVE else "proposed to"
    raise AlreadyLinkedError(
        f"patient {existing.local_id!r} is already linked ({state} {on_chain.patient}, "
        f"link id {existing.link_id}); hand them that id, or end the link before linking "
        "another wallet"
    )


def refresh_links(session: Session) -> list[LinkRecord]:
    """Every link of this hospital, its status read from the chain now (and kept)."""
    links = PatientLinks(session.database)
    fresh = []
    for record in links.all():
        on_chain = session.patients.link(record.link_bytes)
        status = LinkStatus.NONE if on_chain is None else on_chain.status
        updated = _with_status(record, status)
        if updated != record:
            links.put(updated)
        fresh.append(updated)
    return fresh


def _with_status(record: LinkRecord, status: LinkStatus) -> LinkRecord:
    # NONE: written here, never mined (a crash, a refused transaction): still to be sent.
    name = "proposed" if status == LinkStatus.NONE else status.name.lower()
    return LinkRecord(record.local_id, record.link_id, record.wallet, name, record.proposed_at)


# ---------------------------------------------------------------- patient side


def accept_link(session: Session, link_id: bytes) -> PatientLink:
    """Accept the hospital's proposal ``link_id`` (only the wallet it names may)."""
    link = _open_link(session, link_id)
    if link.patient.lower() != session.address.lower():
        raise NotTheNamedPatientError(
            f"link {link_id.hex()} names the wallet {link.patient}, not this home's "
            f"{session.address}; accept it from the named wallet's home, or ask the hospital "
            "to propose a link to this wallet"
        )
    if link.status == LinkStatus.ACTIVE:
        return link  # accepted already: nothing to do
    _contract_call(lambda: session.patients.accept_link(link_id))
    return PatientLink(link_id, link.hospital, link.patient, LinkStatus.ACTIVE)


def end_link(session: Session, link_id: bytes) -> PatientLink:
    """End a link (its patient or its hospital): from now on it consents to nothing."""
    link = _open_link(session, link_id)
    if session.address.lower() not in (link.patient.lower(), link.hospital.lower()):
        raise NotTheNamedPatientError(
            f"link {link_id.hex()} is between {link.hospital} and {link.patient}; only "
            "one of them can end it"
        )
    _contract_call(lambda: session.patients.end_link(link_id))
    return PatientLink(link_id, link.hospital, link.patient, LinkStatus.ENDED)


def _open_link(session: Session, link_id: bytes) -> PatientLink:
    link = session.patients.link(link_id)
    if link is None:
        raise NoSuchLinkError(
            f"no link {link_id.hex()} was proposed on this chain; check the id the hospital "
            "gave you, and that this home uses the hospital's chain"
        )
    if link.status == LinkStatus.ENDED:
        raise NoSuchLinkError(f"link {link_id.hex()} has ended; ask the hospital for a new one")
    return link


def set_consent(session: Session, allow: Iterable[str], withdraw: Iterable[str]) -> int:
    """Add the purposes ``allow`` and remove ``withdraw`` from this wallet's consent (for
    all its linked records, at once); returns the new mask."""
    add, remove = purpose_bits(allow), purpose_bits(withdraw)
    if not add and not remove:
        raise ConfigError(
            f"name a purpose with --allow or --withdraw: {', '.join(PATIENT_PURPOSES)}"
        )
    if add & remove:
        raise ConfigError(
            f"{', '.join(purpose_names(add & remove))} is both allowed and withdrawn; keep one"
        )
    current = session.patients.consent_of(session.address)
    wanted = (current | add) & ~remove
    if wanted != current:
        _contract_call(lambda: session.patients.set_consent(wanted))
    return wanted


@dataclass(frozen=True)
class PatientStatus:
    wallet: str
    consent: int
    claimable: int
    links: list[PatientLink]


def patient_status(session: Session) -> PatientStatus:
    """This wallet's links (every hospital that proposed one, with its status now), its
    consent, and the tokens its records earned that it can claim."""
    client = session.patients
    links = [link for link in map(client.link, _proposed_to(session)) if link is not None]
    return PatientStatus(
        session.address,
        client.consent_of(session.address),
        client.claimable(session.address),
        links,
    )


# LinkProposed(bytes32 indexed link_id, address indexed hospital, address indexed patient)
_LINK_PROPOSED = "LinkProposed(bytes32,address,address)"


def _proposed_to(session: Session) -> list[bytes]:
    """The link ids proposed to this wallet, from the contract's events filtered by the
    patient topic: the cost grows with this wallet's links, not the contract's."""
    from eth_utils.crypto import keccak

    web3 = session.patients.web3
    patient = "0x" + bytes.fromhex(session.address[2:]).rjust(32, b"\0").hex()
    try:
        logs = web3.eth.get_logs(
            {
                "address": session.patients.address,
                "fromBlock": 0,
                "toBlock": "latest",
                "topics": ["0x" + keccak(text=_LINK_PROPOSED).hex(), None, None, patient],
            }
        )
    except Exception as exc:
        raise ChainError(f"reading the links proposed to {session.address} failed: {exc}") from exc
    return list(dict.fromkeys(bytes(log["topics"][1]) for log in logs))


def claim(session: Session) -> int:
    """Pay this wallet what its records earned; returns the amount (base units)."""
    due = session.patients.claimable(session.address)
    if due == 0:
        raise PatientLinkError(
            "nothing to claim yet: tokens arrive when a dataset holding your linked records "
            "is sold for a purpose you consent to"
        )
    _contract_call(session.patients.claim)
    return due


# ---------------------------------------------------------------- errors


_REVERTS = {
    "link: id in use": "that link id is taken on chain; propose the link again for a new id",
    "link: not proposed": "that link is not awaiting acceptance (accepted, ended or unknown)",
    "link: caller is not the patient named": "this wallet is not the patient the link names",
    "link: too many links": "this wallet has 4 active links, the most a patient may hold; "
    "end one first",
    "link: not open": "that link has already ended",
    "link: caller is not a party": "only the link's hospital or patient may end it",
    "link: a hospital cannot link itself": "a hospital cannot link its own wallet",
    "claim: nothing owed": "nothing to claim yet",
}


def _contract_call(call: Callable[[], TxResult]) -> TxResult:
    """Send the call; a revert is told as a sentence with what to do."""
    try:
        return call()
    except TransactionRevertedError as exc:
        for reason, sentence in _REVERTS.items():
            if reason in str(exc):
                kind = NotTheNamedPatientError if "patient named" in reason else PatientLinkError
                raise kind(f"the Patients contract refused: {sentence}") from exc
        raise


def _now() -> int:
    return int(time.time())
