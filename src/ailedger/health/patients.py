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

import contextlib
import json
import os
import stat
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Connection,
    Engine,
    Integer,
    String,
    Table,
    Text,
    func,
    select,
)

from ailedger.db import DatabaseError, insert_missing, metadata, transaction, upsert
from ailedger.db.legacy import ADOPTED_SUFFIX, read_legacy_rows, retire_legacy_file
from ailedger.errors import AiledgerError

patients_table = Table(
    "health_patients",
    metadata,
    Column("local_id", String(256), primary_key=True),
    Column("matchmaking", Boolean, nullable=False, index=True),
    Column("research", Boolean, nullable=False, index=True),
    Column("record", Text, nullable=False),  # the Patient as JSON, source records included
)

consents_table = Table(
    "health_patient_consents",
    metadata,
    # Append-only: each row is one decision recorded at this node (who, when, on what basis);
    # the latest per (patient, purpose) is in force.
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("local_id", String(256), nullable=False, index=True),
    Column("purpose", String(32), nullable=False),  # matchmaking or research
    Column("granted", Boolean, nullable=False),
    Column("recorded_by", String(200), nullable=False),
    Column("recorded_at", BigInteger, nullable=False),  # unix seconds
    Column("basis", Text, nullable=False),  # e.g. "signed form 2026-03-01, scanned in EHR"
)

CONSENT_PURPOSES = ("matchmaking", "research")


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

    ``local_id`` is the store's key. A FHIR patient's is its ``Patient.id``, or
    ``ORIGIN/Patient/id`` when another source already holds that id here; a phenopacket's is
    ``phenopacket-id/subject-id`` (:func:`~ailedger.health.phenopackets.phenopacket_key`).
    ``origin`` names the system the record came from when the import knows it (a bulk
    export's server, a Bundle's server, ``Patient.meta.source`` or ``--source``).
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
    origin: str | None = None
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


@dataclass(frozen=True)
class ConsentRecord:
    """One consent decision recorded at this node (``health consent``)."""

    local_id: str
    purpose: str
    granted: bool
    recorded_by: str
    recorded_at: int
    basis: str


def phenopacket_key(phenopacket_id: str, subject_id: str) -> str:
    """A phenopacket's store key: its own id with its subject's. Subject ids repeat across
    publications ("Patient 1"), a phenopacket's id names the case; together two distinct
    cases never share a key, and the same file imported again keeps its key."""
    return f"{phenopacket_id}/{subject_id}"


def _short_names(local_id: str) -> tuple[str, ...]:
    """What a key may be called by: the id after the origin of a qualified FHIR key, the
    phenopacket id of a phenopacket key."""
    if "/Patient/" in local_id:
        return (local_id.rsplit("/Patient/", 1)[1],)
    if "/" in local_id:
        return (local_id.split("/", 1)[0],)
    return ()


def _with_recorded_consent(conn: Connection, patients: list[Patient]) -> list[Patient]:
    """``patients`` with the latest consent decision recorded here, per purpose, in force."""
    if not patients:
        return patients
    latest: dict[tuple[str, str], bool] = {}
    query = select(
        consents_table.c.local_id, consents_table.c.purpose, consents_table.c.granted
    ).order_by(consents_table.c.seq)
    for local_id, purpose, granted in conn.execute(query):  # small: one row per decision
        latest[(str(local_id), str(purpose))] = bool(granted)
    if not latest:
        return patients
    return [
        replace(
            p,
            matchmaking=latest.get((p.local_id, "matchmaking"), p.matchmaking),
            research=latest.get((p.local_id, "research"), p.research),
        )
        for p in patients
    ]


def _narrow(path: Path) -> None:
    """Only this node's user may read a file of patient records."""
    with contextlib.suppress(FileNotFoundError):
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)


def _current_key(patient: Patient) -> Patient:
    """A phenopacket stored before keys named the case (keyed by ``subject.id`` alone) under
    its key now; the same rule as migration 0005."""
    doc = patient.resources[0] if patient.resources else {}
    subject = doc.get("subject") if isinstance(doc, dict) else None
    if (
        patient.source == "phenopacket"
        and isinstance(doc.get("id"), str)
        and isinstance(subject, dict)
        and subject.get("id") == patient.local_id
    ):
        return replace(patient, local_id=phenopacket_key(str(doc["id"]), patient.local_id))
    return patient


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
        """Insert or replace ``patients`` in one transaction; all are written or none.

        Consent recorded at this node (:meth:`record_consent`) outranks the flags a record
        arrives with: re-importing a phenopacket (which carries no consent) or an export
        whose Consent resources say otherwise does not undo a decision recorded here."""
        given = list(patients)
        try:
            with transaction(self._db) as conn:
                rows = [_row(p) for p in _with_recorded_consent(conn, given)]
                upsert(conn, patients_table, rows, key=("local_id",))
        except DatabaseError as exc:
            raise PatientStoreError(
                f"writing {len(given)} patients failed and nothing was stored: {exc}"
            ) from exc
        return len(given)

    def record_consent(
        self,
        local_id: str,
        purposes: Sequence[str],
        *,
        granted: bool,
        recorded_by: str,
        basis: str,
        at: int | None = None,
    ) -> Patient:
        """Record a consent decision (grant, or withdrawal when ``granted`` is false) for
        ``purposes`` of ``local_id``, who recorded it and on what basis; the patient's
        flags change in the same transaction. Returns the patient as now stored."""
        unknown = [p for p in purposes if p not in CONSENT_PURPOSES]
        if unknown or not purposes:
            raise PatientStoreError(
                f"consent purposes are {' and '.join(CONSENT_PURPOSES)}, not {unknown or 'none'}"
            )
        if not recorded_by.strip() or len(recorded_by) > 200:
            raise PatientStoreError("say who records the consent in 1 to 200 characters")
        when = int(time.time()) if at is None else at
        decisions = [
            {
                "local_id": local_id,
                "purpose": purpose,
                "granted": granted,
                "recorded_by": recorded_by,
                "recorded_at": when,
                "basis": basis,
            }
            for purpose in dict.fromkeys(purposes)
        ]
        with transaction(self._db) as conn:
            record = conn.execute(
                select(patients_table.c.record).where(patients_table.c.local_id == local_id)
            ).scalar_one_or_none()
            if record is None:
                raise PatientNotFoundError(f"no patient {local_id!r} in this node's patient store")
            conn.execute(consents_table.insert(), decisions)
            (patient,) = _with_recorded_consent(conn, [Patient.from_json(str(record))])
            upsert(conn, patients_table, [_row(patient)], key=("local_id",))
        return patient

    def consent_history(self, local_id: str) -> list[ConsentRecord]:
        """Every consent decision recorded here for ``local_id``, oldest first."""
        query = (
            select(consents_table)
            .where(consents_table.c.local_id == local_id)
            .order_by(consents_table.c.seq)
        )
        with transaction(self._db) as conn:
            rows = conn.execute(query).mappings().all()
        return [ConsentRecord(**{k: v for k, v in row.items() if k != "seq"}) for row in rows]

    def get_many(self, local_ids: Iterable[str]) -> dict[str, Patient]:
        """The stored patients among ``local_ids`` (absent ones are left out)."""
        wanted = list(dict.fromkeys(local_ids))
        found: dict[str, Patient] = {}
        with transaction(self._db) as conn:
            for start in range(0, len(wanted), 500):  # bound the IN list
                chunk = wanted[start : start + 500]
                query = select(patients_table.c.record).where(patients_table.c.local_id.in_(chunk))
                for record in conn.execute(query).scalars():
                    patient = Patient.from_json(str(record))
                    found[patient.local_id] = patient
        return found

    def resolve(self, name: str) -> str:
        """The key of the patient ``name`` designates: its key, or the record id it was
        imported under (a FHIR ``Patient.id``, a phenopacket's ``id``) when exactly one
        stored patient has it."""
        ids = self.ids()
        if name in ids:
            return name
        matches = [i for i in ids if _short_names(i) and name in _short_names(i)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise PatientStoreError(
                f"{name!r} names {len(matches)} patients ({', '.join(matches[:3])}, ...); "
                "give the full id"
            )
        raise PatientNotFoundError(f"no patient {name!r} in this node's patient store")

    def adopt_legacy_file(self, path: Path) -> int:
        """Copy the patients of a home made before ``node.sqlite`` (``health/patients.sqlite3``)
        into this store, then set the file aside; returns how many it held. A patient
        already in the database (imported since) is kept as it is. The file set aside (and
        one set aside by an earlier version) holds identifiable records: it is narrowed to
        0600, as old homes created it 0644."""
        _narrow(path.with_name(path.name + ADOPTED_SUFFIX))
        if not path.exists():
            return 0
        _narrow(path)
        records = [
            _current_key(Patient.from_json(str(r)))
            for (r,) in read_legacy_rows(path, _LEGACY_QUERY)
        ]
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
        """Remove the patient and the consent decisions recorded for it (a later record
        under the same key is someone new: it must not inherit them)."""
        with transaction(self._db) as conn:
            deleted = conn.execute(
                patients_table.delete().where(patients_table.c.local_id == local_id)
            ).rowcount
            conn.execute(consents_table.delete().where(consents_table.c.local_id == local_id))
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

    def consented_ids(self, purpose: str) -> set[str]:
        """The keys of the patients whose flag for ``purpose`` (``matchmaking`` or
        ``research``) is set now: one indexed read, for a long-lived index that must see a
        consent recorded since it was built (``health consent`` in another process)."""
        if purpose not in CONSENT_PURPOSES:
            raise PatientStoreError(f"consent purposes are {' and '.join(CONSENT_PURPOSES)}")
        column = patients_table.c[purpose]
        with transaction(self._db) as conn:
            found = conn.execute(select(patients_table.c.local_id).where(column.is_(True)))
            return {str(local_id) for local_id in found.scalars()}

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
