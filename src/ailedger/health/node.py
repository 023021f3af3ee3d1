"""A hospital's health data at its node: patients, matchmaking, saved queries.

Layout in the node home::

    health/patients.sqlite3   imported patients (identifiable: never leaves the node)
    health/mme-secret         key for result surrogates (random, 0600)
    health/mme-tokens.json    digests of tokens issued to MME peers
    health/saved-queries.json queries re-run when new patients arrive
    health/notifications.jsonl new matches found for saved queries
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ailedger._durable import atomic_write, atomic_write_json
from ailedger.health.matching import PhenotypeProfile
from ailedger.health.mme import DEFAULT_THRESHOLD, MatchableCohort
from ailedger.health.mme_auth import IssuedTokens
from ailedger.health.patients import Patient, PatientStore

if TYPE_CHECKING:
    from ailedger.health.fhir_import import ImportReport


@dataclass(frozen=True)
class Notification:
    query: str
    surrogate: str
    score: float
    contact: dict[str, Any]


class HealthNode:
    def __init__(self, home: Path) -> None:
        self.directory = home / "health"
        self.store = PatientStore(self.directory)
        self.tokens = IssuedTokens(self.directory / "mme-tokens.json")
        self._secret_path = self.directory / "mme-secret"
        self._saved_path = self.directory / "saved-queries.json"
        self._notes_path = self.directory / "notifications.jsonl"
        self._cohort: MatchableCohort | None = None

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> HealthNode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def secret(self) -> bytes:
        if not self._secret_path.exists():
            atomic_write(self._secret_path, secrets.token_bytes(32))
        return self._secret_path.read_bytes()

    @property
    def cohort(self) -> MatchableCohort:
        """Consented patients, indexed on first use (the ontology loads then)."""
        if self._cohort is None:
            self._cohort = MatchableCohort.build(
                self.store.consented_for_matchmaking(), self.secret()
            )
        return self._cohort

    def import_files(
        self, paths: list[Path], progress: Callable[[int, int], None] | None = None
    ) -> tuple[ImportReport, list[Notification]]:
        """Import (all or nothing), then re-run saved queries against the newcomers."""
        from ailedger.health.fhir_import import import_files

        before = set(self.store.ids())
        report = import_files(self.store, paths, progress=progress)
        arrived = [self.store.get(i) for i in self.store.ids() if i not in before]
        return report, self._rerun_saved(arrived)

    # ------------------------------------------------------------ saved queries

    def save_query(self, name: str, query: dict[str, Any]) -> None:
        saved = self.saved_queries()
        saved[name] = query
        atomic_write_json(self._saved_path, saved, indent=1)

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
                    result = cohort.result(match)
                    found.append(
                        Notification(
                            name, result["patient"]["id"], match.score, result["patient"]["contact"]
                        )
                    )
        with self._notes_path.open("a") as notes:
            for note in found:
                notes.write(json.dumps({**note.__dict__, "time": int(time.time())}) + "\n")
        return found
