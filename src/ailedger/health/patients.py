"""The node's patient model and its SQLite store.

A :class:`Patient` is what one hospital node knows about one patient: the fields rare-disease
matchmaking and research need (sex, dates, ZIP, HPO phenotype terms observed and excluded,
candidate genes, OMIM/ORPHA diagnoses, consent flags) plus the raw source records (FHIR R4
resources or a GA4GH Phenopacket v2) that :mod:`ailedger.health.deidentify` works from when it
applies HIPAA Safe Harbor (45 CFR 164.514(b)(2)). These records are identifiable health data:
they stay in the node's own directory and never go on chain.

The clinician contact is the treating clinician's (name, institution, e-mail) for Matchmaker
Exchange replies; it is not patient data.

Storage is SQLite in WAL mode with ``synchronous=FULL``; :meth:`PatientStore.put_many` writes a
whole import in one ``BEGIN IMMEDIATE`` transaction, so an import is all-or-nothing even if the
process dies half-way.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ailedger.errors import AiledgerError

DB_NAME = "patients.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS patients (
    local_id    TEXT PRIMARY KEY,
    matchmaking INTEGER NOT NULL,
    research    INTEGER NOT NULL,
    record      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS patients_matchmaking ON patients(matchmaking);
CREATE INDEX IF NOT EXISTS patients_research ON patients(research);
"""


class PatientStoreError(AiledgerError):
    """The patient store cannot be opened or written; the message says why."""


class PatientNotFoundError(PatientStoreError):
    """No patient with that local id is in the store."""


class InvalidRecordError(AiledgerError):
    """A source record (FHIR resource, NDJSON line, phenopacket) cannot be imported.

    ``file`` names the file, ``record`` the resource (``entry[3] Observation/obs-1`` or
    ``line 12 Condition/c9``) and ``field`` the path of the bad field (pydantic's ``loc``
    joined with dots, or ``""`` when the whole record is bad). Nothing of the import was stored.
    """

    def __init__(self, file: str, record: str, field: str, problem: str) -> None:
        where = f"{file}: {record}" + (f": field {field}" if field else "")
        super().__init__(
            f"{where}: {problem}; fix or remove this record and import again "
            "(nothing from this import was stored)"
        )
        self.file = file
        self.record = record
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class ClinicianContact:
    """Who answers a Matchmaker Exchange match for this patient (not patient data)."""

    name: str
    institution: str = ""
    email: str = ""


@dataclass(frozen=True)
class Patient:
    """One patient as the node holds it (identifiable; never published as is).

    Dates are ISO 8601 strings as recorded (``"1980"``, ``"1980-02"`` or ``"1980-02-03"``);
    ``sex`` is FHIR's administrative gender (``male``, ``female``, ``other``, ``unknown``);
    HPO ids look like ``HP:0001250``; diagnoses ``OMIM:123456`` or ``ORPHA:558``; genes are
    HGNC symbols. ``resources`` are the raw source records, kept for de-identification.
    """

    local_id: str
    sex: str = "unknown"
    birth_date: str | None = None
    death_date: str | None = None
    deceased: bool = False
    postal_code: str | None = None
    observed: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    genes: tuple[str, ...] = ()
    diagnoses: tuple[str, ...] = ()
    contact: ClinicianContact | None = None
    matchmaking: bool = False
    research: bool = False
    source: str = "fhir"
    resources: tuple[dict[str, Any], ...] = field(default=(), repr=False, compare=False)

    def to_json(self) -> str:
        """Serialise for the store (also used by tests to compare round trips)."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Patient:
        raw = json.loads(text)
        contact = raw.pop("contact")
        for name in ("observed", "excluded", "genes", "diagnoses", "resources"):
            raw[name] = tuple(raw[name])
        return cls(contact=ClinicianContact(**contact) if contact else None, **raw)


class PatientStore:
    """Patients of one node in ``<directory>/patients.sqlite3``.

    Safe to use from one process with several readers; writers serialise on SQLite's lock.
    """

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                self.directory / DB_NAME, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise PatientStoreError(
                f"cannot open the patient store in {self.directory}: {exc}; "
                "check the directory exists and is writable"
            ) from exc

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> PatientStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def put(self, patient: Patient) -> None:
        self.put_many([patient])

    def put_many(self, patients: Iterable[Patient]) -> int:
        """Insert or replace ``patients`` in one transaction; all are written or none."""
        rows = [(p.local_id, int(p.matchmaking), int(p.research), p.to_json()) for p in patients]
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany("INSERT OR REPLACE INTO patients VALUES (?, ?, ?, ?)", rows)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise PatientStoreError(
                f"writing {len(rows)} patients failed and nothing was stored: {exc}"
            ) from exc
        return len(rows)

    def get(self, local_id: str) -> Patient:
        row = self._conn.execute(
            "SELECT record FROM patients WHERE local_id = ?", (local_id,)
        ).fetchone()
        if row is None:
            raise PatientNotFoundError(f"no patient {local_id!r} in {self.directory}")
        return Patient.from_json(str(row[0]))

    def delete(self, local_id: str) -> None:
        cur = self._conn.execute("DELETE FROM patients WHERE local_id = ?", (local_id,))
        if cur.rowcount == 0:
            raise PatientNotFoundError(f"no patient {local_id!r} in {self.directory}")

    def ids(self) -> list[str]:
        return [str(r[0]) for r in self._conn.execute("SELECT local_id FROM patients ORDER BY 1")]

    def count(self) -> int:
        (n,) = self._conn.execute("SELECT COUNT(*) FROM patients").fetchone()
        return int(n)

    def __iter__(self) -> Iterator[Patient]:
        return self._select("")

    def consented_for_matchmaking(self) -> list[Patient]:
        """Patients whose consent allows Matchmaker Exchange queries."""
        return list(self._select("WHERE matchmaking = 1"))

    def consented_for_research(self) -> list[Patient]:
        """Patients whose consent allows de-identified research sharing."""
        return list(self._select("WHERE research = 1"))

    def _select(self, where: str) -> Iterator[Patient]:
        query = f"SELECT record FROM patients {where} ORDER BY local_id"
        for (record,) in self._conn.execute(query).fetchall():
            yield Patient.from_json(str(record))
