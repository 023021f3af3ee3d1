"""A hospital's health data at its node: patients, matchmaking, saved queries.

Imported patients (identifiable: they never leave the organisation) are rows of the node's
database; the node's own files sit in the home's ``health/`` directory (``HomeLayout``):
the surrogate key (``mme-secret``, random, 0600), digests of tokens issued to MME peers,
the outside MME peers this node asks (``mme-peers.json``, 0600: it holds their tokens), the
node's MME contact (``mme-contact.json``), saved queries (re-run when new patients arrive)
and notifications of new matches.

Consent takes effect at the next match. The cohort's index is built once (the ontology and
the profiles are the expensive part) and holds every patient who might consent: those
whose flags say matchmaking (from the import, or recorded here by ``health consent``),
and every patient linked to a wallet; one who consents later joins it at the next query.
Whether a candidate may be returned is decided at each query, by a fresh
:class:`ConsentCheck`: the store's flags and the link table are read once per query, and
the chain's ``consents_to`` for each linked candidate, in rank order, until the query's
limit is filled. Nothing about consent is kept from one query to
the next, so a patient who withdraws matchmaking is absent from the very next answer. (The
index's calibration, a statistic of scores between indexed profiles, may still count
them; no result, score or contact of theirs is returned.)
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ailedger._durable import PRIVATE_FILE_MODE, atomic_write, atomic_write_json
from ailedger.chain.contracts.patients import MATCHMAKING
from ailedger.db import database_url as database_url_for
from ailedger.db import open_database
from ailedger.health.consent import ConsentCheck, ConsentOracle, local_flag
from ailedger.health.matching import Match
from ailedger.health.mme import DEFAULT_THRESHOLD, MatchableCohort, NodeContact
from ailedger.health.mme_auth import IssuedTokens
from ailedger.health.mme_peers import OutsidePeers
from ailedger.health.patient_links import RESEARCH, PatientLinks
from ailedger.health.patients import Patient, PatientStore
from ailedger.health.profile import PhenotypeProfile
from ailedger.home_layout import HomeLayout

if TYPE_CHECKING:
    from ailedger.health.fhir_import import ImportReport


@dataclass(frozen=True)
class Notification:
    query: str
    surrogate: str
    score: float
    contact: dict[str, Any]


def contact_path(health_directory: Path) -> Path:
    """Where a home's MME contact is kept, in its ``health/`` directory."""
    return health_directory / "mme-contact.json"


def outside_peers(health_directory: Path) -> OutsidePeers:
    """The outside MME peers of a home, kept in its ``health/`` directory."""
    return OutsidePeers(health_directory / "mme-peers.json")


def load_contact(path: Path) -> NodeContact | None:
    """The MME contact kept at ``path``; None if none was set."""
    if not path.exists():
        return None
    raw = json.loads(path.read_text())
    if not isinstance(raw, dict):
        raw = {}
    return NodeContact(
        str(raw.get("name", "")), str(raw.get("href", "")), str(raw.get("institution", ""))
    )


def _consent_by_flags() -> ConsentCheck | None:
    return None


@dataclass
class ConsentedCohort(MatchableCohort):
    """A cohort that returns only patients whose matchmaking consent holds at query time.

    ``consent`` makes a fresh :class:`ConsentCheck` for each query (None: the import's
    flags decide, as for a node with no linked patients); ``store`` lets a patient linked
    since the index was built join it at the next query."""

    consent: Callable[[], ConsentCheck | None] = field(default=_consent_by_flags)
    store: PatientStore | None = None

    def _admits(self, patient: Patient) -> bool:
        """Every patient is indexed, whatever their flags: whether one is returned is
        decided at query time."""
        return True

    def search(self, profile: PhenotypeProfile, limit: int, threshold: float) -> list[Match]:
        check = self.consent()
        if check is not None:
            self._add_newly_consenting(check)
        # Every candidate above the threshold, best first; consent is asked in that order
        # until ``limit`` are allowed, so withdrawn patients never take a result's place.
        ranked = super().search(profile, max(len(self.patients), 1), threshold)
        allowed: list[Match] = []
        for match in ranked:
            patient = self.patients[match.patient_id]
            ok = (
                local_flag(patient, MATCHMAKING)
                if check is None
                else check.allows(patient, MATCHMAKING)
            )
            if ok:
                allowed.append(match)
                if len(allowed) == limit:
                    break
        return allowed

    def _add_newly_consenting(self, check: ConsentCheck) -> None:
        """Index patients linked, or consented at this node, since the index was built."""
        if self.store is None:
            return
        may = [*check.linked_ids(), *check.flagged_ids(MATCHMAKING)]
        missing = [i for i in may if i not in self.patients and i not in self.unmatchable]
        if missing:
            self.add(list(self.store.get_many(missing).values()))


class HealthNode:
    """The health data of the home at ``home``; its patients in the database at
    ``database_url`` (AILEDGER_DATABASE_URL; unset: the home's SQLite file).

    ``consent_oracle`` answers for patients linked to a wallet (the chain's Patients
    contract, :class:`~ailedger.health.consent.ChainConsent`); without one, linked
    patients consent to nothing here (fail closed) and the others by their import's flags.
    """

    def __init__(
        self,
        home: Path,
        database_url: str | None = None,
        consent_oracle: ConsentOracle | None = None,
    ) -> None:
        layout = HomeLayout(home)
        self.directory = layout.health
        self.directory.mkdir(parents=True, exist_ok=True)
        self.database = open_database(database_url_for(database_url, layout.database))
        self.store = PatientStore(self.database)
        self.links = PatientLinks(self.database)
        self.consent_oracle = consent_oracle
        self.store.adopt_legacy_file(layout.legacy_patient_store)
        self.tokens = IssuedTokens(layout.mme_tokens)
        self.peers = outside_peers(self.directory)
        self._contact_path = contact_path(self.directory)
        self._secret_path = layout.mme_secret
        self._saved_path = layout.saved_queries
        self._notes_path = layout.notifications
        self._cohort: MatchableCohort | None = None

    def close(self) -> None:
        self.database.dispose()

    def __enter__(self) -> HealthNode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def secret(self) -> bytes:
        if not self._secret_path.exists():
            atomic_write(self._secret_path, secrets.token_bytes(32))
        return self._secret_path.read_bytes()

    def contact(self) -> NodeContact | None:
        """The node's MME contact (:class:`NodeContact`), None if none was set. A file
        edited into an invalid contact is a :class:`~ailedger.errors.ConfigError`: MME does
        not start with a contact peers could not reach."""
        return load_contact(self._contact_path)

    def set_contact(self, contact: NodeContact) -> None:
        atomic_write_json(self._contact_path, contact.as_mme(), indent=1)

    def consent_check(self) -> ConsentCheck:
        """Effective consent as of now (see :mod:`ailedger.health.consent`): make one per
        query or export, never keep it. The store's flags are read here too, so a consent
        given or withdrawn with `health consent` counts at the next query of a running node."""
        flags = {
            MATCHMAKING: self.store.consented_ids("matchmaking"),
            RESEARCH: self.store.consented_ids("research"),
        }
        return ConsentCheck(self.links, self.consent_oracle, flags)

    def candidates(self, purpose: int) -> list[Patient]:
        """Every patient who may consent to ``purpose``: those whose import's flag says so,
        and every linked patient (their consent is the chain's). Filter with
        :meth:`consent_check` at the moment of use."""
        flagged = {
            MATCHMAKING: self.store.consented_for_matchmaking,
            RESEARCH: self.store.consented_for_research,
        }
        found = {p.local_id: p for p in flagged[purpose]()} if purpose in flagged else {}
        stored = set(self.store.ids())
        for record in self.links.all():
            if record.local_id not in found and record.local_id in stored:
                found[record.local_id] = self.store.get(record.local_id)
        return [found[i] for i in sorted(found)]

    def consenting(self, purpose: int) -> list[Patient]:
        """The patients whose consent to ``purpose`` holds now."""
        return self.consent_check().consenting(self.candidates(purpose), purpose)

    @property
    def cohort(self) -> MatchableCohort:
        """Patients who may consent to matchmaking, indexed on first use (the ontology loads
        then); each query returns only those whose consent holds at that moment."""
        if self._cohort is None:
            cohort = ConsentedCohort(
                self.secret(), contact=self.contact(), consent=self.consent_check, store=self.store
            )
            cohort.add(self.candidates(MATCHMAKING))
            self._cohort = cohort
        return self._cohort

    def import_files(
        self,
        paths: list[Path],
        progress: Callable[[int, int], None] | None = None,
        *,
        source: str | None = None,
    ) -> tuple[ImportReport, list[Notification]]:
        """Import (all or nothing), then re-run saved queries against the newcomers.
        ``source`` names the system the FHIR records come from, when they do not say."""
        from ailedger.health.fhir_import import import_files

        before = set(self.store.ids())
        report = import_files(self.store, paths, progress=progress, source_name=source)
        arrived = [self.store.get(i) for i in self.store.ids() if i not in before]
        return report, self._rerun_saved(arrived)

    # ------------------------------------------------------------ saved queries

    def save_query(self, name: str, query: dict[str, Any]) -> None:
        saved = self.saved_queries()
        saved[name] = query
        atomic_write_json(self._saved_path, saved, indent=1)

    def delete_query(self, name: str) -> bool:
        """Forget the saved query ``name``; False if there was none."""
        saved = self.saved_queries()
        if saved.pop(name, None) is None:
            return False
        atomic_write_json(self._saved_path, saved, indent=1)
        return True

    @property
    def notifications_path(self) -> Path:
        """New matches of saved queries, one JSON object a line, appended by imports."""
        return self._notes_path

    def saved_queries(self) -> dict[str, dict[str, Any]]:
        if not self._saved_path.exists():
            return {}
        loaded: dict[str, dict[str, Any]] = json.loads(self._saved_path.read_text())
        return loaded

    def _rerun_saved(self, arrived: list[Patient]) -> list[Notification]:
        saved = self.saved_queries()
        newcomers = [p for p in arrived if p.matchmaking]
        if not saved or not newcomers:
            return []
        cohort = self.cohort
        cohort.add(newcomers)
        fresh = {p.local_id for p in newcomers}
        found = []
        for name, query in saved.items():
            profile = PhenotypeProfile.from_mme(query["patient"])
            for match in cohort.search(profile, limit=50, threshold=DEFAULT_THRESHOLD):
                if match.patient_id in fresh:
                    result = cohort.result_here(match)
                    found.append(
                        Notification(
                            name, result["patient"]["id"], match.score, result["patient"]["contact"]
                        )
                    )
        # Owner-only, like every file in the home: the lines name patients and contacts.
        fd = os.open(self._notes_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE_MODE)
        with os.fdopen(fd, "a") as notes:
            for note in found:
                notes.write(json.dumps({**note.__dict__, "time": int(time.time())}) + "\n")
        return found
