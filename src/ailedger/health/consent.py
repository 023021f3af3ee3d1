"""Consent that takes effect at the hospital, and a patient's consent as a FHIR Consent.

Effective consent. Whether a purpose may use a patient's record at this node:

- an unlinked patient: the flags their import carried (FHIR Consent resources read at
  import: ``matchmaking``, and ``research`` for rare-disease research); no other purpose;
- a linked patient whose link the patient accepted: the chain's
  ``Patients.consents_to(link_id, purpose)``, read at that moment;
- a link proposed but not yet accepted (or written here but never mined): the import's
  flags still stand;
- an ended link: no consent, whatever the flags say;
- a linked patient when no chain is at hand to ask: no consent (fail closed: the patient's
  own say cannot be confirmed).

The node asks through a :class:`ConsentOracle` (what :class:`ChainConsent` answers from the
contract), so health code stays testable without a chain and the CLI or node composes the
session. One :class:`ConsentCheck` reads the link table once; make one per query or export
so that a patient's withdrawal takes effect at the next one.

Recorded here. A record that carries no consent (a phenopacket) or whose consent was given
on paper gets it with :func:`record_consent` (``ailedger health consent``): who recorded
it, when and on what basis go to the store's append-only consent table and to the node's
audit log (the patient named there by a keyed digest, never by the record's id); the
decision outranks what a later re-import says. For a patient linked to a wallet it counts
only while the link is not accepted: after that, the patient's own consent decides.

FHIR. :func:`consent_resource` renders a wallet's consent as a FHIR R4 Consent resource
(http://hl7.org/fhir/R4/consent.html): the patient is named only by their wallet address
(an identifier in system ``urn:ailedger:wallet``), never by a name or a record number.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ailedger.chain.contracts.patients import MATCHMAKING, LinkStatus, PatientLink
from ailedger.health.patient_links import (
    PATIENT_PURPOSES,
    RESEARCH,
    LinkRecord,
    PatientLinks,
)
from ailedger.health.patients import ConsentRecord, Patient, PatientStore, PatientStoreError

if TYPE_CHECKING:
    from ailedger.chain.contracts.patients import PatientsClient
    from ailedger.session import Session


class ConsentOracle(Protocol):
    """What the node asks the chain about a link (the Patients contract's two reads)."""

    def consents_to(self, link_id: bytes, purpose: int) -> bool: ...

    def link_status(self, link_id: bytes) -> LinkStatus: ...


class ChainConsent:
    """The :class:`ConsentOracle` of a Patients contract client (reads only)."""

    def __init__(self, client: PatientsClient) -> None:
        self._client = client

    def consents_to(self, link_id: bytes, purpose: int) -> bool:
        return self._client.consents_to(link_id, purpose)

    def link_status(self, link_id: bytes) -> LinkStatus:
        link = self._client.link(link_id)
        return LinkStatus.NONE if link is None else link.status


def local_flag(patient: Patient, purpose: int) -> bool:
    """What the import's consent flags say about ``purpose`` (two are recorded)."""
    if purpose == MATCHMAKING:
        return patient.matchmaking
    if purpose == RESEARCH:
        return patient.research
    return False


class ConsentCheck:
    """Effective consent for one query or export: the link table is read once, here, and
    the chain is asked per patient at the moment of :meth:`allows`."""

    def __init__(
        self,
        links: PatientLinks,
        oracle: ConsentOracle | None,
        flags: Mapping[int, Collection[str]] | None = None,
    ) -> None:
        self._links = links.by_local_id()
        self._oracle = oracle
        # The store's flags read now, by purpose: a ``Patient`` held in a long-lived index
        # carries the flags of when it was read, older than a `health consent` since.
        self._flags = flags or {}

    def linked_ids(self) -> list[str]:
        return sorted(self._links)

    def flagged_ids(self, purpose: int) -> Collection[str]:
        """The unlinked patients the store's flags let in for ``purpose`` (as read now)."""
        return self._flags.get(purpose, ())

    def allows(self, patient: Patient, purpose: int) -> bool:
        record = self._links.get(patient.local_id)
        if record is None:
            return self._local(patient, purpose)
        if self._oracle is None:
            return False  # linked, and nobody to ask: the patient's say cannot be confirmed
        return self._on_chain(record, patient, purpose, self._oracle)

    def _local(self, patient: Patient, purpose: int) -> bool:
        flagged = self._flags.get(purpose)
        return local_flag(patient, purpose) if flagged is None else patient.local_id in flagged

    def _on_chain(
        self, record: LinkRecord, patient: Patient, purpose: int, oracle: ConsentOracle
    ) -> bool:
        link_id = record.link_bytes
        if oracle.consents_to(link_id, purpose):
            return True  # only an accepted, unended link consents
        status = oracle.link_status(link_id)
        if status in (LinkStatus.NONE, LinkStatus.PROPOSED):
            return self._local(patient, purpose)  # not the patient's yet: the import stands
        return False  # accepted and not consenting, or ended

    def predicate(self, purpose: int) -> Callable[[Patient], bool]:
        return lambda patient: self.allows(patient, purpose)

    def consenting(self, patients: Iterable[Patient], purpose: int) -> list[Patient]:
        return [p for p in patients if self.allows(p, purpose)]


# ---------------------------------------------------------------- recorded at this node

PURPOSE_ALIASES = {
    "matchmaking": "matchmaking",
    "research": "research",
    "rare-disease-research": "research",
}
AuditAppend = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class ConsentDecision:
    """A decision as recorded, and what it means for the patient now."""

    patient: Patient
    purposes: tuple[str, ...]
    granted: bool
    history: tuple[ConsentRecord, ...]
    note: str  # when the decision does not decide (a linked patient's consent is theirs)


def audit_digest(secret: bytes, local_id: str) -> str:
    """How the audit log names a patient: keyed, so the entry cannot be traced back to the
    record without the node's secret."""
    return hmac.new(secret, b"consent:" + local_id.encode(), hashlib.sha256).hexdigest()[:24]


def record_consent(
    store: PatientStore,
    links: PatientLinks,
    name: str,
    purposes: Sequence[str],
    *,
    granted: bool,
    recorded_by: str,
    basis: str,
    audit: AuditAppend,
    secret: bytes,
) -> ConsentDecision:
    """Record a consent decision (grant, or withdrawal) for patient ``name`` (its key, or
    the id it was imported under when that names one patient): first in the audit log
    (``audit`` returns once the entry is durable), then in the store."""
    unknown = [p for p in purposes if p not in PURPOSE_ALIASES]
    if unknown or not purposes:
        raise PatientStoreError(
            f"choose the purposes from {', '.join(PURPOSE_ALIASES)}, not {unknown or 'none'}"
        )
    chosen = tuple(dict.fromkeys(PURPOSE_ALIASES[p] for p in purposes))
    local_id = store.resolve(name)
    audit(
        {
            "kind": "health-consent",
            "patient": audit_digest(secret, local_id),
            "purposes": ",".join(chosen),
            "granted": granted,
            "recorded_by": recorded_by,
            "basis": basis,
        }
    )
    patient = store.record_consent(
        local_id, chosen, granted=granted, recorded_by=recorded_by, basis=basis
    )
    history = tuple(store.consent_history(local_id))
    return ConsentDecision(patient, chosen, granted, history, _link_note(links, local_id))


def _link_note(links: PatientLinks, local_id: str) -> str:
    record = links.get(local_id)
    if record is None:
        return ""
    if record.status == "proposed":
        return (
            "this patient has a link proposed to their wallet: once they accept it, their own "
            "consent on chain decides and this decision no longer counts"
        )
    return (
        f"this patient's link to a wallet is {record.status}: their consent on chain (or its "
        "end) decides, not this decision"
    )


# ---------------------------------------------------------------- FHIR Consent

ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
WALLET_SYSTEM = "urn:ailedger:wallet"
PURPOSE_SYSTEM = "urn:ailedger:purpose"
# v3-ActReason codes for the purposes that have one (HL7 v3 ActReason, POU hierarchy):
# HRESCH healthcare research, TREAT treatment, HMARKT healthcare marketing (the nearest
# code to commercial development of products), PUBHLTH public health. Model training and
# matchmaking have no ActReason code: they are coded in ``urn:ailedger:purpose`` only.
_ACT_REASON_CODES: dict[str, tuple[str, str]] = {
    "rare-disease-research": ("HRESCH", "healthcare research"),
    "clinical-care": ("TREAT", "treatment"),
    "commercial-development": ("HMARKT", "healthcare marketing"),
    "public-health": ("PUBHLTH", "public health"),
}
_RESEARCH_PURPOSES = {"rare-disease-research", "model-training", "public-health"}


def _purpose_codings(name: str) -> list[dict[str, str]]:
    codings = [{"system": PURPOSE_SYSTEM, "code": name, "display": name.replace("-", " ")}]
    if name in _ACT_REASON_CODES:
        code, display = _ACT_REASON_CODES[name]
        codings.insert(0, {"system": ACT_REASON, "code": code, "display": display})
    return codings


def consent_resource(
    patient_wallet: str, purposes: int, links: Sequence[PatientLink]
) -> dict[str, Any]:
    """A FHIR R4 Consent of ``patient_wallet``'s ``purposes`` (the contract's mask), for the
    hospitals of their accepted ``links`` (``organization``, by wallet address too).

    Status ``active`` while any purpose is consented to and a link is accepted, else
    ``inactive``. Scope ``research`` when every consented purpose is a research use,
    else ``patient-privacy``. One ``provision`` (permit) per purpose.
    """
    names = [name for name, bit in PATIENT_PURPOSES.items() if purposes & bit]
    hospitals = sorted({link.hospital for link in links if link.status == LinkStatus.ACTIVE})
    research_only = bool(names) and set(names) <= _RESEARCH_PURPOSES
    scope = ("research", "Research") if research_only else ("patient-privacy", "Privacy Consent")
    resource: dict[str, Any] = {
        "resourceType": "Consent",
        "status": "active" if names and hospitals else "inactive",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": scope[0],
                    "display": scope[1],
                }
            ]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": "http://loinc.org",
                        "code": "59284-0",
                        "display": "Patient Consent",
                    }
                ]
            }
        ],
        "patient": {"identifier": {"system": WALLET_SYSTEM, "value": patient_wallet}},
        "organization": [
            {"identifier": {"system": WALLET_SYSTEM, "value": hospital}} for hospital in hospitals
        ],
        "policy": [{"uri": "urn:ailedger:contract:Patients"}],
        "provision": {
            "type": "deny",  # everything not permitted below
            "provision": [{"type": "permit", "purpose": _purpose_codings(name)} for name in names],
        },
    }
    if not hospitals:
        del resource["organization"]
    if not names:
        del resource["provision"]["provision"]
    return resource


def chain_consent(session: Session) -> ChainConsent | None:
    """The oracle of ``session``'s chain, or None on a chain deployed before the Patients
    contract (no patient can be linked there; linked ones would fail closed)."""
    from ailedger.errors import NotDeployedError

    try:
        return ChainConsent(session.patients)
    except NotDeployedError:
        return None
