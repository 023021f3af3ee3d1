"""The node's patient model and its SQLite store.

A :class:`Patient` is what one hospital node knows about one patient: the fields rare-disease
matchmaking and research need (sex, dates, ZIP, HPO phenotype terms observed and excluded,
candidate genes, OMIM/ORPHA diagnoses, consent flags) plus the raw source records (FHIR R4
resources or a GA4GH Phenopacket v2) that :mod:`ailedger.health.deidentify` works from when it
applies HIPAA Safe Harbor (45 CFR 164.514(b)(2)). These records are identifiable health data:
they stay in the node's own directory and never go on chain.

The clinician contact is the treating clinician's (name, institution, e-mail) for Matchmaker
Exchange replies; it is not patient data.

Patients are rows of the node's database (:mod:`ailedger.db`: SQLite in WAL mode with
``synchronous=FULL``, or the organisation's PostgreSQL); :meth:`PatientStore.put_many` writes a
whole import in one transaction, so an import is all-or-nothing even if the process dies
half-way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    ColumnElement,
    Engine,
    String,
    Table,
    Text,
    func,
    select,
)

from ailedger.db import DatabaseError, insert_missing, metadata, transaction, upsert
from ailedger.db.legacy import read_legacy_rows, retire_legacy_file
from ailedger.errors import AiledgerError

patients_table = Table(
    "health_patients",
    metadata,
    Column("local_id", String(256), primary_key=True),
    Column("matchmaking", Boolean, nullable=False, index=True),
    Column("research", Boolean, nullable=False, index=True),
    Column("record", Text, nullable=False),  # the Patient as JSON, source records included
)


class PatientStoreError(AiledgerError):
    """The patient store cannot be written; the message says why."""


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


_LEGACY_QUERY = "SELECT record FROM patients ORDER BY local_id"


def _row(patient: Patient) -> dict[str, Any]:
    return {
        "local_id": patient.local_id,
        "matchmaking": patient.matchmaking,
        "research": patient.research,
        "record": patient.to_json(),
    }


class PatientStore:
    """The patients of one organisation's node, in its database (:mod:`ailedger.db`).

    Safe to share between threads and processes; each write is one transaction.
    """

    def __init__(self, database: Engine) -> None:
        self._db = database

    def put(self, patient: Patient) -> None:
        self.put_many([patient])

    def put_many(self, patients: Iterable[Patient]) -> int:
        """Insert or replace ``patients`` in one transaction; all are written or none."""
        rows = [_row(p) for p in patients]
        try:
            with transaction(self._db) as conn:
                upsert(conn, patients_table, rows, key=("local_id",))
        except DatabaseError as exc:
            raise PatientStoreError(
                f"writing {len(rows)} patients failed and nothing was stored: {exc}"
            ) from exc
        return len(rows)

    def adopt_legacy_file(self, path: Path) -> int:
        """Copy the patients of a home made before ``node.sqlite`` (``health/patients.sqlite3``)
        into this store, then set the file aside; returns how many it held. A patient
        already in the database (imported since) is kept as it is."""
        if not path.exists():
            return 0
        records = [Patient.from_json(str(r)) for (r,) in read_legacy_rows(path, _LEGACY_QUERY)]
        rows = [_row(p) for p in records]
        try:
            with transaction(self._db) as conn:
                insert_missing(conn, patients_table, rows)
        except DatabaseError as exc:
            raise PatientStoreError(
                f"adopting the {len(rows)} patients of {path} failed and nothing was stored: {exc}"
            ) from exc
        retire_legacy_file(path)
        return len(rows)

    def get(self, local_id: str) -> Patient:
        with transaction(self._db) as conn:
            record = conn.execute(
                select(patients_table.c.record).where(patients_table.c.local_id == local_id)
            ).scalar_one_or_none()
        if record is None:
            raise PatientNotFoundError(f"no patient {local_id!r} in this node's patient store")
        return Patient.from_json(str(record))

    def delete(self, local_id: str) -> None:
        with transaction(self._db) as conn:
            deleted = conn.execute(
                patients_table.delete().where(patients_table.c.local_id == local_id)
            ).rowcount
        if deleted == 0:
            raise PatientNotFoundError(f"no patient {local_id!r} in this node's patient store")

    def ids(self) -> list[str]:
        with transaction(self._db) as conn:
            found = conn.execute(
                select(patients_table.c.local_id).order_by(patients_table.c.local_id)
            ).scalars()
            return [str(local_id) for local_id in found]

    def count(self) -> int:
        with transaction(self._db) as conn:
            return int(conn.execute(select(func.count()).select_from(patients_table)).scalar_one())

    def __iter__(self) -> Iterator[Patient]:
        return iter(self._select(None))

    def consented_for_matchmaking(self) -> list[Patient]:
        """Patients whose consent allows Matchmaker Exchange queries."""
        return self._select(patients_table.c.matchmaking.is_(True))

    def consented_for_research(self) -> list[Patient]:
        """Patients whose consent allows de-identified research sharing."""
        return self._select(patients_table.c.research.is_(True))

    def _select(self, where: ColumnElement[bool] | None) -> list[Patient]:
        query = select(patients_table.c.record).order_by(patients_table.c.local_id)
        if where is not None:
            query = query.where(where)
        with transaction(self._db) as conn:
            records = conn.execute(query).scalars().all()
        return [Patient.from_json(str(record)) for record in records]
