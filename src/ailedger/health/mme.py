"""Matchmaker Exchange API v1.1 (ga4gh/mme-apis): answering ``POST /match`` and asking
other nodes.

A node answers only for patients whose consent allows matchmaking, and a result
discloses the clinician to contact and a score — never the record: the patient id in a
result is a keyed surrogate (HMAC with a node secret), not the local identifier. Every
incoming and outgoing query is an audit log entry (who asked, how many results; no
phenotype data). Refusals follow the API (a status each, see ``ailedger.errors``): no
known ``X-Auth-Token`` (401), a body that is not JSON (400), JSON that is not a valid
request (422), another content type (415), an MME version it does not speak (406: minor
versions are cross-compatible, so v1.0 and v1.1 are answered, in v1.1).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ailedger.errors import (
    MalformedRequestError,
    NotAcceptableError,
    RequestRefusedError,
    UnauthenticatedError,
    UnprocessableError,
    UnsupportedMediaTypeError,
)
from ailedger.health.matching import Match, MatchIndex
from ailedger.health.mme_schema import MME_CONTENT_TYPE, mme_version, speaks, validation_errors
from ailedger.health.patients import Patient
from ailedger.health.phenotype import PhenotypeError
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


class AuditSink(Protocol):
    def append(self, entry: dict[str, Any]) -> int: ...


@dataclass
class MatchableCohort:
    """The consented patients of this node, indexed for matching."""

    secret: bytes
    patients: dict[str, Patient] = field(default_factory=dict)
    index: MatchIndex = field(default_factory=MatchIndex)

    @classmethod
    def build(cls, patients: list[Patient], secret: bytes) -> MatchableCohort:
        cohort = cls(secret)
        cohort.add([p for p in patients if p.matchmaking])
        return cohort

    def add(self, patients: list[Patient]) -> None:
        fresh = [p for p in patients if self._admits(p) and p.local_id not in self.patients]
        for patient in fresh:
            self.patients[patient.local_id] = patient
        self.index.add_many(
            (p.local_id, PhenotypeProfile.of(p.observed, p.excluded, p.genes)) for p in fresh
        )
        if len(self.index) >= 2:
            self.index.calibrate()

    def _admits(self, patient: Patient) -> bool:
        """Whether ``patient`` is indexed: here, by its import's matchmaking flag."""
        return patient.matchmaking

    def surrogate(self, local_id: str) -> str:
        """A stable id for results that cannot be traced back without the node's secret."""
        return hmac.new(self.secret, local_id.encode(), hashlib.sha256).hexdigest()[:24]

    def search(self, profile: PhenotypeProfile, limit: int, threshold: float) -> list[Match]:
        if not len(self.index):
            return []
        found = self.index.search(profile, limit=limit, threshold=threshold)
        return [m for m in found if m.phenotype_score >= MIN_PHENOTYPE_SIMILARITY or m.shared_genes]

    def result(self, match: Match) -> dict[str, Any]:
        patient = self.patients[match.patient_id]
        contact = patient.contact
        return {
            "score": {"patient": round(match.score, 4)},
            "patient": {
                "id": self.surrogate(match.patient_id),
                "contact": {
                    "name": contact.name if contact else "data custodian",
                    "institution": contact.institution if contact else "",
                    "href": f"mailto:{contact.email}" if contact and contact.email else "",
                },
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
        peer = self._authenticate(token)
        if peer is None:
            raise UnauthenticatedError("missing or unknown X-Auth-Token")
        try:
            answer = self._answer(content_type, body)
        except RequestRefusedError as exc:
            self._log(peer, str(exc.http_status), 0)
            raise
        self._log(peer, ANSWERED, len(answer["results"]))
        return answer

    def _log(self, peer: str, outcome: str, results: int) -> None:
        self._audit.append(
            {
                "kind": "mme-query",
                "direction": "incoming",
                "peer": peer,
                "outcome": outcome,
                "results": results,
                "time": int(time.time()),
            }
        )

    def _answer(self, content_type: str | None, body: bytes) -> dict[str, Any]:
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
            profile = PhenotypeProfile.from_mme(document["patient"])
            matches = self.cohort.search(profile, self._limit, self._threshold)
        except PhenotypeError as exc:
            raise UnprocessableError(str(exc)) from exc
        return {"results": [self.cohort.result(m) for m in matches]}


def merge_results(answers: Mapping[str, list[dict[str, Any]]], limit: int) -> list[dict[str, Any]]:
    """Results from several nodes, best first, each tagged with the node that holds it."""
    merged = [{**result, "node": node} for node, results in answers.items() for result in results]
    merged.sort(key=lambda r: -float(r.get("score", {}).get("patient", 0.0)))
    return merged[:limit]
