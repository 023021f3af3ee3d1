"""Matchmaker Exchange API v1.1 (ga4gh/mme-apis): answering ``POST /match``.

A node answers only for patients whose consent allows matchmaking. A result is the MME
response's full result patient: a keyed surrogate id (HMAC with a node secret, never the
local identifier), the clinician to contact, and what the patient's matchmaking consent
shares: their phenotypic features (observed and excluded HPO terms, current ids) and
candidate genes. Nothing else of the record (no name, dates, sex, diagnoses or source
records) leaves the node. A contact's ``href`` is always a URL or ``mailto:``: the treating
clinician's e-mail, else the node's own contact (:class:`NodeContact`); a patient with
neither is withheld and counted in the audit entry.

Queries are read as the API asks, not refused for what a valid request may hold: an
``Orphanet:`` disorder is ``ORPHA:``; a query with genes and no features matches by gene;
an HPO id the loaded release knows only as obsolete (or alternate) is read as its current
term, and one it does not know is skipped with a note in the answer's ``notes``.

Every incoming query is an audit log entry (who asked, how many results; no phenotype
data). Refusals follow the API (a status each, see ``ailedger.errors``): no known
``X-Auth-Token`` (401), a body that is not JSON (400), JSON that is not a valid request
(422), another content type (415), an MME version it does not speak (406: minor versions
are cross-compatible, so v1.0 and v1.1 are answered, in v1.1).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ailedger.errors import (
    ConfigError,
    MalformedRequestError,
    NotAcceptableError,
    RequestRefusedError,
    UnauthenticatedError,
    UnprocessableError,
    UnsupportedMediaTypeError,
)
from ailedger.health.matching import Match, MatchIndex
from ailedger.health.mme_schema import (
    MME_CONTENT_TYPE,
    disorder_id,
    mme_version,
    speaks,
    valid_href,
    validation_errors,
)
from ailedger.health.patients import Patient
from ailedger.health.phenotype import Ontology, PhenotypeError, format_hpo
from ailedger.health.profile import PhenotypeProfile
from ailedger.untrusted_json import parse_untrusted

DEFAULT_THRESHOLD = 0.9  # calibrated: better than 90% of random pairs of stored patients
# Calibration is relative to this node's cohort; in a small cohort "better than most
# random pairs" can still be a weak overlap, so a match also needs this much absolute
# phenotype similarity (simGIC of the ancestor closures).
MIN_PHENOTYPE_SIMILARITY = 0.2
DEFAULT_LIMIT = 5
# An answered query is logged with the status the API gives it, as refusals are (their
# ``http_status``), so the audit log reads the same for every incoming query.
ANSWERED = "200"
NO_CONTACT = "no contact on record (`ailedger health contact` sets the node's)"


class AuditSink(Protocol):
    def append(self, entry: dict[str, Any]) -> int: ...


@dataclass(frozen=True)
class NodeContact:
    """Who answers for this node's matches when a patient's clinician left no e-mail, and
    who this node's own queries name: the MME ``contact`` (``href`` a URL or ``mailto:``)."""

    name: str
    href: str
    institution: str = ""

    def __post_init__(self) -> None:
        if not self.name.strip() or len(self.name) > 200 or not self.name.isprintable():
            raise ConfigError(
                f"name the MME contact in 1 to 200 printable characters, not {self.name[:40]!r}"
            )
        if not valid_href(self.href):
            raise ConfigError(
                f"the MME contact's href {self.href[:80]!r} is not an http(s) URL or a "
                "mailto: address; MME peers need one to reach you "
                "(ailedger health contact NAME HREF)"
            )
        if len(self.institution) > 200 or not self.institution.isprintable():
            raise ConfigError("name the institution in at most 200 printable characters")

    def as_mme(self) -> dict[str, str]:
        return {"name": self.name, "institution": self.institution, "href": self.href}


@dataclass(frozen=True)
class MmeQuery:
    """A (schema-valid) MME request's patient as this node reads it: the profile in the
    loaded release's current terms, its disorders as this node writes diseases
    (``OMIM:610536``, ``ORPHA:558``; matching itself is by phenotype and genes), and notes
    on what was skipped."""

    profile: PhenotypeProfile
    disorders: tuple[str, ...]
    notes: tuple[str, ...]


def read_query(patient: Mapping[str, Any], onto: Ontology) -> MmeQuery:
    """Read a request's ``patient``: HPO ids through ``onto.term_id`` (obsolete and
    alternate ids become current terms), an id the release does not know skipped with a
    note; ``MIM:``/``Orphanet:`` disorders as ``OMIM:``/``ORPHA:``."""
    notes: list[str] = []

    def current(terms: frozenset[str]) -> list[str]:
        kept = []
        for term in sorted(terms):
            try:
                kept.append(format_hpo(onto.term_id(term)))
            except PhenotypeError:
                notes.append(f"{term} is not a term of HPO release {onto.version}; skipped")
        return kept

    asked = PhenotypeProfile.from_mme(patient)
    profile = PhenotypeProfile.of(current(asked.observed), current(asked.excluded), asked.genes)
    raw = [d.get("id") for d in patient.get("disorders") or [] if isinstance(d, dict)]
    disorders = tuple(sorted({i for i in map(_disorder, raw) if i is not None}))
    return MmeQuery(profile, disorders, tuple(notes))


def _disorder(raw: object) -> str | None:
    return disorder_id(raw) if isinstance(raw, str) else None


@dataclass
class MatchableCohort:
    """The consented patients of this node, indexed for matching.

    Patients with phenotype are in the :class:`MatchIndex`; every patient's genes are in
    ``genes``, so a gene-only query (or a patient known only by genes) still matches."""

    secret: bytes
    patients: dict[str, Patient] = field(default_factory=dict)
    index: MatchIndex = field(default_factory=MatchIndex)
    contact: NodeContact | None = None
    genes: dict[str, set[str]] = field(default_factory=dict)
    # Patients with neither a known phenotype nor a gene: nothing to match them on, so a
    # query never fetches them again to find that out.
    unmatchable: set[str] = field(default_factory=set)

    @classmethod
    def build(
        cls, patients: list[Patient], secret: bytes, contact: NodeContact | None = None
    ) -> MatchableCohort:
        cohort = cls(secret, contact=contact)
        cohort.add([p for p in patients if p.matchmaking])
        return cohort

    def add(self, patients: list[Patient]) -> None:
        fresh = [p for p in patients if self._admits(p) and p.local_id not in self.patients]
        indexed = False
        for patient in fresh:
            profile = PhenotypeProfile.of(patient.observed, patient.excluded, patient.genes)
            try:
                self.index.add(patient.local_id, profile)
                indexed = True
            except PhenotypeError:
                if not patient.genes:
                    self.unmatchable.add(patient.local_id)
                    continue  # nothing this node could match the patient on
            self.patients[patient.local_id] = patient
            for gene in patient.genes:
                self.genes.setdefault(gene, set()).add(patient.local_id)
        if indexed and len(self.index) >= 2:
            self.index.calibrate()

    def _admits(self, patient: Patient) -> bool:
        """Whether ``patient`` is indexed: here, by its import's matchmaking flag."""
        return patient.matchmaking

    def surrogate(self, local_id: str) -> str:
        """A stable id for results that cannot be traced back without the node's secret."""
        return hmac.new(self.secret, local_id.encode(), hashlib.sha256).hexdigest()[:24]

    def search(self, profile: PhenotypeProfile, limit: int, threshold: float) -> list[Match]:
        if not profile.observed:
            return self._gene_matches(profile.genes)[:limit]
        if not len(self.index):
            return []
        found = self.index.search(profile, limit=limit, threshold=threshold)
        return [m for m in found if m.phenotype_score >= MIN_PHENOTYPE_SIMILARITY or m.shared_genes]

    def _gene_matches(self, genes: frozenset[str]) -> list[Match]:
        """Patients sharing a gene with a gene-only query, scored by the share of the
        query's genes they carry (no phenotype to compare), best first."""
        shared: dict[str, set[str]] = {}
        for gene in genes:
            for local_id in self.genes.get(gene, ()):
                shared.setdefault(local_id, set()).add(gene)
        found = [
            Match(
                local_id,
                len(hits) / len(genes),
                len(hits) / len(genes),
                0.0,
                (),
                frozenset(hits),
                (),
            )
            for local_id, hits in shared.items()
        ]
        return sorted(found, key=lambda m: (-m.score, m.patient_id))

    def contact_of(self, patient: Patient) -> dict[str, str] | None:
        """The result's contact: the treating clinician's e-mail, else this node's contact;
        None if there is neither (the result cannot be answered)."""
        clinician = patient.contact
        if clinician is not None and valid_href(f"mailto:{clinician.email}"):
            return {
                "name": clinician.name or (self.contact.name if self.contact else "clinician"),
                "institution": clinician.institution,
                "href": f"mailto:{clinician.email}",
            }
        return self.contact.as_mme() if self.contact is not None else None

    def shared_profile(self, patient: Patient) -> dict[str, Any]:
        """What a patient's matchmaking consent shares: features in the release's current
        terms (labelled; an id the release does not know is left out) and genes."""
        onto = self.index.ontology
        features = []
        for terms, observed in ((patient.observed, "yes"), (patient.excluded, "no")):
            for term in terms:
                try:
                    number = onto.term_id(term)
                except PhenotypeError:
                    continue
                features.append(
                    {"id": format_hpo(number), "label": onto.name(number), "observed": observed}
                )
        shared: dict[str, Any] = {}
        if features:
            shared["features"] = features
        if patient.genes:
            shared["genomicFeatures"] = [{"gene": {"id": gene}} for gene in patient.genes]
        return shared

    def result(self, match: Match) -> dict[str, Any] | None:
        """The MME result for ``match`` (official response schema); None if the patient
        has no contact to give, so a peer cannot be answered for them."""
        contact = self.contact_of(self.patients[match.patient_id])
        return None if contact is None else self._result(match, contact)

    def result_here(self, match: Match) -> dict[str, Any]:
        """The result as this node's own clinicians see it: a patient with no contact to
        give still shows, marked so."""
        contact = self.contact_of(self.patients[match.patient_id])
        return self._result(match, contact or {"name": NO_CONTACT})

    def _result(self, match: Match, contact: dict[str, str]) -> dict[str, Any]:
        return {
            "score": {"patient": round(match.score, 4)},
            "patient": {
                "id": self.surrogate(match.patient_id),
                "contact": contact,
                **self.shared_profile(self.patients[match.patient_id]),
            },
        }


class MatchmakerService:
    """The node's ``POST /match``, independent of the HTTP framework: refusals are raised
    as :class:`~ailedger.errors.RequestRefusedError` kinds, which carry the API's status."""

    def __init__(
        self,
        cohort: MatchableCohort,
        authenticate: Callable[[str | None], str | None],
        audit: AuditSink,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        limit: int = DEFAULT_LIMIT,
    ) -> None:
        self.cohort = cohort
        self._authenticate = authenticate
        self._audit = audit
        self._threshold = threshold
        self._limit = limit

    def match(self, token: str | None, content_type: str | None, body: bytes) -> dict[str, Any]:
        """Answer one query from the peer holding ``token``; the MME response document."""
        return self.answer(self.authenticate(token), content_type, body)

    def authenticate(self, token: str | None) -> str:
        """The peer holding ``token``; 401 (:class:`UnauthenticatedError`) for no known one,
        before anything of the request is read."""
        peer = self._authenticate(token)
        if peer is None:
            raise UnauthenticatedError("missing or unknown X-Auth-Token")
        return peer

    def answer(self, peer: str, content_type: str | None, body: bytes) -> dict[str, Any]:
        """Answer an authenticated ``peer``'s query; refused or answered, it is logged."""
        try:
            answer, withheld = self._answer(content_type, body)
        except RequestRefusedError as exc:
            self._log(peer, str(exc.http_status), 0)
            raise
        self._log(peer, ANSWERED, len(answer["results"]), withheld)
        return answer

    def _log(self, peer: str, outcome: str, results: int, withheld: int = 0) -> None:
        entry: dict[str, Any] = {
            "kind": "mme-query",
            "direction": "incoming",
            "peer": peer,
            "outcome": outcome,
            "results": results,
            "time": int(time.time()),
        }
        if withheld:
            # Matches whose patient has no contact to give (no clinician e-mail and no node
            # contact): counted so the operator can see what `health contact` would add.
            entry["withheld_no_contact"] = withheld
        self._audit.append(entry)

    def _answer(self, content_type: str | None, body: bytes) -> tuple[dict[str, Any], int]:
        """The response document and how many matches were withheld for want of a contact."""
        kind = (MME_CONTENT_TYPE if content_type is None else content_type).split(";")[0].strip()
        version = mme_version(kind)
        if version is None and kind.lower() != "application/json":
            raise UnsupportedMediaTypeError(f"send {MME_CONTENT_TYPE}, not {kind}")
        if version is not None and not speaks(version):
            raise NotAcceptableError(
                f"unsupported version number: this node speaks MME v1.1 (and answers v1.0); "
                f"send {MME_CONTENT_TYPE}"
            )
        try:
            document = parse_untrusted(body)
        except ValueError as exc:
            raise MalformedRequestError(f"the body is not usable JSON: {exc}") from None
        errors = validation_errors(document)
        if errors:
            raise UnprocessableError("invalid MME request", {"errors": errors})
        try:
            query = read_query(document["patient"], self.cohort.index.ontology)
            profile, notes = query.profile, list(query.notes)
            matches = self.cohort.search(profile, self._limit, self._threshold)
        except PhenotypeError as exc:
            raise UnprocessableError(str(exc)) from exc
        if not profile.observed and not profile.genes:
            notes.append("no feature of the query is a known HPO term and it names no gene")
        found = [self.cohort.result(m) for m in matches]
        results = [r for r in found if r is not None]
        answer: dict[str, Any] = {"results": results}
        if notes:
            answer["notes"] = notes[:50]
        return answer, len(found) - len(results)
