"""A hospital's health data at its node: patients, matchmaking, saved queries.

Imported patients (identifiable: they never leave the organisation) are rows of the node's
database; the node's own files sit in the home's ``health/`` directory (``HomeLayout``):
the surrogate key (``mme-secret``, random, 0600), digests of tokens issued to MME peers,
saved queries (re-run when new patients arrive) and notifications of new matches.
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
from ailedger.db import database_url as database_url_for
from ailedger.db import open_database
from ailedger.health.mme import DEFAULT_THRESHOLD, MatchableCohort
from ailedger.health.mme_auth import IssuedTokens
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


class HealthNode:
    """The health data of the home at ``home``; its patients in the database at
    ``database_url`` (AILEDGER_DATABASE_URL; unset: the home's SQLite file)."""

    def __init__(self, home: Path, database_url: str | None = None) -> None:
        layout = HomeLayout(home)
        self.directory = layout.health
        self.directory.mkdir(parents=True, exist_ok=True)
        self.database = open_database(database_url_for(database_url, layout.database))
        self.store = PatientStore(self.database)
        self.store.adopt_legacy_file(layout.legacy_patient_store)
        self.tokens = IssuedTokens(layout.mme_tokens)
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
