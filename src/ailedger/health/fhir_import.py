"""Import FHIR R4 Bundles, FHIR Bulk Data NDJSON and GA4GH Phenopackets v2 into a PatientStore.

Every FHIR resource is validated with the ``fhir.resources`` models before anything is
stored. fhir.resources 8.x ships FHIR R5 at ``fhir.resources`` and R4B (4.3, wire-compatible
with R4 4.0.1 for the resources used here) at ``fhir.resources.R4B``; there is no separate R4
package in 8.x, so R4 JSON is validated against the R4B models. An invalid resource raises
:class:`~ailedger.health.patients.InvalidRecordError` naming the file, the resource (bundle
entry or NDJSON line, with ``Type/id``) and the field (pydantic's ``loc``).

An import is all-or-nothing: all files are read and validated first, then every patient is
written in one SQLite transaction (:meth:`PatientStore.put_many`).

Mapping (FHIR R4): ``Patient`` gives sex, birth and death dates, home ZIP; ``Condition`` codes
from HPO are phenotypes (``verificationStatus`` *refuted* means excluded) and OMIM/ORPHA codes
diagnoses; ``Observation`` HPO codes are phenotypes, excluded when ``valueBoolean`` is false or
the value/interpretation says absent/negative/not detected; LOINC 48018-6 *Gene studied*
(value or component) with an HGNC coding names a candidate gene; an active ``Consent``
permits ``research`` (v3 ActReason HRESCH, or code ``research``) and ``matchmaking`` (code
``matchmaking``), a ``deny`` provision revokes; ``Patient.generalPractitioner`` and
``managingOrganization`` give the clinician contact. Other resources (RelatedPerson,
Encounter, DocumentReference, ...) are kept raw for de-identification.

Nothing is dropped without a count: the :class:`ImportReport` gives, per resource type, how
many were read, kept (stored in a patient's record) and dropped (resources that refer to no
patient: Location, Organization, Practitioner, ... are directory data shared by many
patients), and names every file passed over and why (a bulk export's ``log.ndjson`` or
manifest, files that are not ``.json``/``.ndjson``/``.ndjson.gz`` in a directory).

Identity: a FHIR patient is keyed by its ``Patient.id``. Ids are unique only within the
server that assigned them, so before writing, each patient is compared with the one stored
under its id (:func:`same_patient`: with both origins known the origin decides; else a
shared identifier says same, disjoint identifiers or another birth date say different).
A different patient is keyed by its origin (``ORIGIN/Patient/id``, FHIR's absolute
reference); when its origin is unknown the import is refused, naming the file and how to
give it one (the export's log or manifest, ``Patient.meta.source``, or the
``source_name`` of :func:`import_files`). Two sources never overwrite each other; the
same export imported again updates its patients. The origin is the ``source_name`` given,
else the export's server (the kick-off URL in ``log.ndjson``, the ``request`` of a
manifest), else the server in a Bundle entry's ``fullUrl``, else ``Patient.meta.source``.
"""

from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pydantic
from fhir.resources.R4B import get_fhir_model_class

from ailedger.health._terms import GENE_SYMBOL, term_id, term_prefix
from ailedger.health.patients import (
    ClinicianContact,
    InvalidRecordError,
    Patient,
    PatientStore,
)
from ailedger.health.phenopackets import parse_phenopacket
from ailedger.untrusted_json import parse_untrusted

ProgressCallback = Callable[[int, int], None]
"""Called with (resources done, resources in total) while an import validates."""

_ABSENT = {"absent", "neg", "nd", "negative", "373067005", "2667000", "la9634-2", "n"}
_GENE_STUDIED = "48018-6"
_PATIENT_REFS = ("subject", "patient", "beneficiary")
_PROGRESS_EVERY = 500


DROPPED_WHY = "refers to no patient (directory data shared by many patients)"
PHENOPACKET = "Phenopacket"  # the "type" phenopackets are counted under


@dataclass(frozen=True)
class TypeCount:
    """Resources of one type in one import: ``read`` = ``kept`` + ``dropped``."""

    read: int
    kept: int
    dropped: int


@dataclass(frozen=True)
class ImportReport:
    """What one import read, wrote and passed over."""

    files: int
    resources: int  # kept: stored in patients' records
    patients: int
    types: dict[str, TypeCount] = field(default_factory=dict)
    skipped: tuple[tuple[str, str], ...] = ()  # (file, why it is no input)
    new: int = 0  # patients not stored before
    updated: int = 0  # patients that replaced their earlier import
    rekeyed: tuple[str, ...] = ()  # keys qualified by origin: another source held the id

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (``health import --json``)."""
        return {
            "files": self.files,
            "resources": self.resources,
            "patients": self.patients,
            "new": self.new,
            "updated": self.updated,
            "rekeyed": list(self.rekeyed),
            "types": {k: vars(v) for k, v in sorted(self.types.items())},
            "dropped_why": DROPPED_WHY,
            "skipped": [{"file": f, "why": why} for f, why in self.skipped],
        }


@dataclass
class _Unit:
    file: str
    where: str
    resource: dict[str, Any]


@dataclass
class _Source:
    units: list[_Unit]
    aliases: dict[str, str]  # Bundle fullUrl -> "Type/id"
    phenopackets: list[tuple[str, object]]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)  # file -> the server it came from


@dataclass(frozen=True)
class _Inputs:
    files: list[Path]
    skipped: list[tuple[str, str]]
    origins: dict[str, str]  # file -> origin found beside it (a bulk export's log)


@dataclass(frozen=True)
class ReadResult:
    """Patients read from files (nothing stored), with the counts of what was read."""

    patients: list[Patient]
    types: dict[str, TypeCount]
    skipped: list[tuple[str, str]]
    files: int
    file_of: dict[str, str]  # patient key -> the file it was read from


def _expand(paths: Iterable[Path | str]) -> _Inputs:
    files: list[Path] = []
    skipped: list[tuple[str, str]] = []
    origins: dict[str, str] = {}
    for path in map(Path, paths):
        if not path.is_dir():
            files.append(path)
            continue
        origin = None
        for entry in sorted(path.iterdir()):
            log_origin = _export_log(entry)
            if log_origin is not None:
                skipped.append((str(entry), "the bulk export's log, not resources"))
                origin = origin or log_origin or None
            elif entry.is_dir():
                skipped.append((str(entry), "a directory inside a directory is not read"))
            elif not _readable(entry):
                skipped.append((str(entry), "not .json, .ndjson or .ndjson.gz"))
            else:
                files.append(entry)
        if origin:
            origins.update({str(f): origin for f in files if f.parent == path})
    return _Inputs(files, skipped, origins)


def _readable(path: Path) -> bool:
    return path.name.endswith((".json", ".ndjson", ".ndjson.gz"))


def _export_log(path: Path) -> str | None:
    """For a FHIR Bulk Data export's own ``log.ndjson`` (events of the export, each with an
    ``exportId``, no ``resourceType``), the server it came from (``""`` when the log does
    not say); ``None`` for any other file. The log describes the export and holds no
    resource, so a directory import passes over it rather than failing on it."""
    if path.name != "log.ndjson":
        return None
    try:
        with path.open(encoding="utf-8") as handle:
            events = [parse_untrusted(line) for line in handle if line.strip()]
    except (OSError, UnicodeDecodeError, ValueError):
        return None  # not the log it is named like: read it, and fail on it there
    if not events or not all(
        isinstance(e, dict) and "exportId" in e and "resourceType" not in e for e in events
    ):
        return None
    for event in events:
        detail = event.get("eventDetail")
        if isinstance(detail, dict) and isinstance(detail.get("exportUrl"), str):
            return _server(detail["exportUrl"]) or ""
    return ""


def _server(url: str) -> str | None:
    """The FHIR base of an http(s) URL of that server (``https://h/fhir/Group/g/$export``
    or ``https://h/fhir/Patient/1`` -> ``https://h/fhir``)."""
    if not url.startswith(("http://", "https://")):
        return None
    base = url.split("?", 1)[0]
    cuts = [base.find(m) for m in ("/$export", "/Patient/", "/Group/") if m in base]
    if cuts:
        return base[: min(cuts)].rstrip("/") or None
    # a resource URL of another type: [base]/Type/id
    return (base.rsplit("/", 2)[0] if base.count("/") > 3 else base).rstrip("/") or None


def _manifest_origin(doc: object) -> str | None:
    """For a Bulk Data export's manifest (``transactionTime``, ``request``, ``output``, no
    ``resourceType``), the server it came from (``""`` when unknown); else ``None``."""
    if not isinstance(doc, dict) or "resourceType" in doc:
        return None
    if "transactionTime" not in doc or not isinstance(doc.get("output"), list):
        return None
    request = doc.get("request")
    return (_server(request) if isinstance(request, str) else None) or ""


def _text(path: Path) -> str:
    """The file's text; a bulk export's ``.ndjson.gz`` decompressed (Bulk Data Access lets
    a server compress its files)."""
    if path.name.endswith(".gz"):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            return handle.read()
    return path.read_text(encoding="utf-8")


def _label(resource: object) -> str:
    if not isinstance(resource, dict):
        return "(not an object)"
    return f"{resource.get('resourceType', '?')}/{resource.get('id', '?')}"


def _read(paths: Sequence[Path], source: _Source) -> None:
    for path in paths:
        name = str(path)
        try:
            text = _text(path)
        except (OSError, UnicodeDecodeError, EOFError) as exc:  # EOFError: a truncated .gz
            raise InvalidRecordError(name, "file", "", f"cannot read the file: {exc}") from exc
        if path.name.endswith((".ndjson", ".ndjson.gz")):
            for n, line in enumerate(text.splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    resource = parse_untrusted(line)
                except ValueError as exc:
                    raise InvalidRecordError(name, f"line {n}", "", str(exc)) from exc
                if not isinstance(resource, dict):
                    raise InvalidRecordError(
                        name, f"line {n}", "", "a line must be one FHIR resource (a JSON object)"
                    )
                source.units.append(_Unit(name, f"line {n} {_label(resource)}", resource))
            continue
        try:
            doc = parse_untrusted(text)
        except ValueError as exc:
            raise InvalidRecordError(name, "document", "", str(exc)) from exc
        manifest = _manifest_origin(doc)
        if manifest is not None:
            source.skipped.append((name, "a bulk export's manifest, not resources"))
            if manifest:
                for other in paths:
                    if other.parent == path.parent:
                        source.origins.setdefault(str(other), manifest)
        elif isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
            _read_bundle(name, doc, source)
        elif isinstance(doc, dict) and "resourceType" in doc:
            source.units.append(_Unit(name, _label(doc), doc))
        elif isinstance(doc, dict) and not {"subject", "metaData", "phenotypicFeatures"} & set(doc):
            raise InvalidRecordError(
                name,
                "document",
                "",
                "neither a FHIR resource (no resourceType) nor a phenopacket "
                "(no subject or metaData)",
            )
        else:
            source.phenopackets.append((name, doc))


def _read_bundle(name: str, doc: dict[str, Any], source: _Source) -> None:
    entries = doc.get("entry", [])
    if not isinstance(entries, list):
        raise InvalidRecordError(name, f"Bundle/{doc.get('id', '?')}", "entry", "must be a list")

    shell = {k: v for k, v in doc.items() if k != "entry"}
    shell["entry"] = [
        {k: v for k, v in e.items() if k != "resource"} if isinstance(e, dict) else e
        for e in entries
    ]
    _validate(_Unit(name, f"Bundle/{doc.get('id', '?')}", shell))
    for i, entry in enumerate(entries):
        resource = entry.get("resource")
        if not isinstance(resource, dict):
            raise InvalidRecordError(name, f"entry[{i}]", "resource", "a resource is required")
        if "id" not in resource and isinstance(entry.get("fullUrl"), str):
            resource = {**resource, "id": entry["fullUrl"].rsplit(":", 1)[-1][-64:]}
        if isinstance(entry.get("fullUrl"), str):
            source.aliases[entry["fullUrl"]] = _label(resource)
            server = _server(entry["fullUrl"])
            if server and resource.get("resourceType") == "Patient":
                source.origins.setdefault(f"{name}#{_label(resource)}", server)
        source.units.append(_Unit(name, f"entry[{i}] {_label(resource)}", resource))


def _validate(unit: _Unit) -> None:
    kind = unit.resource.get("resourceType")
    try:
        model = get_fhir_model_class(str(kind))
    except (ValueError, KeyError) as exc:
        raise InvalidRecordError(
            unit.file, unit.where, "resourceType", f"{kind!r} is not a FHIR R4 resource type"
        ) from exc
    try:
        model.model_validate(unit.resource)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(part) for part in first["loc"])
        raise InvalidRecordError(unit.file, unit.where, loc, first["msg"]) from exc


def _codings(value: object) -> list[dict[str, Any]]:
    """All Coding objects in a CodeableConcept, Coding, or a list of either."""
    if isinstance(value, list):
        return [c for item in value for c in _codings(item)]
    if not isinstance(value, dict):
        return []
    if "coding" in value and isinstance(value["coding"], list):
        return [c for c in value["coding"] if isinstance(c, dict)]
    return [value] if "code" in value else []


def _codes(value: object) -> set[str]:
    return {str(c.get("code", "")).lower() for c in _codings(value)}


def _patient_ref(resource: dict[str, Any], aliases: dict[str, str]) -> str | None:
    for key in _PATIENT_REFS:
        ref = resource.get(key)
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
            target = str(aliases.get(ref["reference"], ref["reference"]))
            if "Patient/" in target:
                return "Patient/" + target.rsplit("Patient/", 1)[1].split("/")[0]
    return None


def _person_name(resource: dict[str, Any]) -> str:
    for name in resource.get("name", []):
        if name.get("text"):
            return str(name["text"])
        parts = [*name.get("given", []), name.get("family", "")]
        if any(parts):
            return " ".join(p for p in parts if p)
    return ""


def _contact(patient: dict[str, Any], index: dict[str, dict[str, Any]]) -> ClinicianContact | None:
    gps = [index.get(g.get("reference", "")) for g in patient.get("generalPractitioner", [])]
    practitioner = next((g for g in gps if g and g["resourceType"] == "Practitioner"), None)
    if practitioner is None:
        return None
    org_ref = patient.get("managingOrganization", {}).get("reference", "")
    org = index.get(org_ref, {})
    email = next(
        (
            str(t["value"])
            for t in practitioner.get("telecom", [])
            if t.get("system") == "email" and t.get("value")
        ),
        "",
    )
    return ClinicianContact(_person_name(practitioner), str(org.get("name", "")), email)


def _build(
    patient: dict[str, Any],
    related: list[dict[str, Any]],
    index: dict[str, dict[str, Any]],
    default_contact: ClinicianContact | None,
) -> Patient:
    observed: list[str] = []
    excluded: list[str] = []
    diagnoses: list[str] = []
    genes: list[str] = []
    consent = {"research": False, "matchmaking": False}
    for res in related:
        kind = res["resourceType"]
        if kind == "Condition":
            status = _codes(res.get("verificationStatus"))
            if "entered-in-error" in status:
                continue
            for coding in _codings(res.get("code")):
                term = term_id(coding.get("system"), coding.get("code"))
                prefix = term_prefix(term) if term else None
                if term and prefix == "HP":
                    (excluded if "refuted" in status else observed).append(term)
                elif term and prefix in ("OMIM", "ORPHA") and "refuted" not in status:
                    diagnoses.append(term)
        elif kind == "Observation" and res.get("status") not in ("entered-in-error", "cancelled"):
            absent = (
                res.get("valueBoolean") is False
                or bool(_codes(res.get("valueCodeableConcept")) & _ABSENT)
                or bool(_codes(res.get("interpretation")) & _ABSENT)
            )
            for part in [res, *res.get("component", [])]:
                codes = _codings(part.get("code"))
                if any(c.get("code") == _GENE_STUDIED for c in codes):
                    for c in _codings(part.get("valueCodeableConcept")):
                        symbol = c.get("display") or c.get("code")
                        if isinstance(symbol, str) and GENE_SYMBOL.fullmatch(symbol):
                            genes.append(symbol)
            for coding in _codings(res.get("code")):
                term = term_id(coding.get("system"), coding.get("code"))
                if term and term_prefix(term) == "HP":
                    (excluded if absent else observed).append(term)
        elif kind == "Consent" and res.get("status") == "active":
            provision = res.get("provision", {})
            purposes: set[str] = set().union(
                *(_codes(res.get(k)) for k in ("scope", "category", "policyRule")),
                _codes(provision.get("purpose")),
                _codes(provision.get("code")),
            )
            allow = provision.get("type", "permit") != "deny"
            if purposes & {"hresch", "research"}:
                consent["research"] = allow
            if "matchmaking" in purposes:
                consent["matchmaking"] = allow
    addresses: list[dict[str, Any]] = patient.get("address", [])
    address = next((a for a in addresses if a.get("use") == "home"), None)
    address = address or next(iter(addresses), {})
    death = patient.get("deceasedDateTime")
    return Patient(
        local_id=str(patient["id"]),
        sex=str(patient.get("gender", "unknown")),
        birth_date=patient.get("birthDate"),
        death_date=death[:10] if isinstance(death, str) else None,
        deceased=bool(patient.get("deceasedBoolean") or death),
        postal_code=address.get("postalCode"),
        observed=tuple(dict.fromkeys(observed)),
        excluded=tuple(t for t in dict.fromkeys(excluded) if t not in observed),
        genes=tuple(dict.fromkeys(genes)),
        diagnoses=tuple(dict.fromkeys(diagnoses)),
        contact=_contact(patient, index) or default_contact,
        matchmaking=consent["matchmaking"],
        research=consent["research"],
        source="fhir",
        resources=(patient, *related),
    )


def read_files(
    paths: Iterable[Path | str],
    *,
    progress: ProgressCallback | None = None,
    default_contact: ClinicianContact | None = None,
    phenopacket_consent: tuple[bool, bool] = (False, False),
    source_name: str | None = None,
) -> ReadResult:
    """Read and validate files (Bundle ``.json``, bulk ``.ndjson``/``.ndjson.gz``,
    phenopacket ``.json``, or directories of them) into patients, storing nothing, and
    count every resource read, kept and dropped.

    ``phenopacket_consent`` is (matchmaking, research) for phenopackets, which carry none;
    ``source_name`` names the system the FHIR records come from (their origin).
    """
    inputs = _expand(paths)
    source = _Source([], {}, [], list(inputs.skipped), dict(inputs.origins))
    _read(inputs.files, source)
    total = len(source.units) + len(source.phenopackets)
    for done, unit in enumerate(source.units, start=1):
        _validate(unit)
        if progress is not None and done % _PROGRESS_EVERY == 0:
            progress(done, total)
    grouped = _group(source)
    index = _index(source)
    fhir = [
        _with_origin(
            _build(u.resource, grouped.related[k], index, default_contact), u, source, source_name
        )
        for k, u in grouped.patients.items()
    ]
    packets = [
        parse_phenopacket(
            doc,
            name,
            contact=default_contact,
            matchmaking=phenopacket_consent[0],
            research=phenopacket_consent[1],
        )
        for name, doc in source.phenopackets
    ]
    names = [name for name, _doc in source.phenopackets]
    _refuse_duplicates(packets, names)
    if packets:
        grouped.read[PHENOPACKET] = grouped.kept[PHENOPACKET] = len(packets)
    file_of = {p.local_id: u.file for p, u in zip(fhir, grouped.patients.values(), strict=True)}
    file_of.update({p.local_id: name for p, name in zip(packets, names, strict=True)})
    if progress is not None:
        progress(total, total)
    types = {t: TypeCount(n, grouped.kept[t], n - grouped.kept[t]) for t, n in grouped.read.items()}
    return ReadResult(fhir + packets, types, source.skipped, len(inputs.files), file_of)


@dataclass
class _Grouped:
    patients: dict[str, _Unit]  # "Patient/id" -> its unit
    related: dict[str, list[dict[str, Any]]]  # "Patient/id" -> the resources about them
    read: Counter[str]  # per resource type
    kept: Counter[str]  # per resource type: stored in a patient's record


def _index(source: _Source) -> dict[str, dict[str, Any]]:
    """Every resource by ``Type/id`` and by its Bundle ``fullUrl``."""
    index: dict[str, dict[str, Any]] = {}
    for unit in source.units:
        index.setdefault(_label(unit.resource), unit.resource)
    index.update({alias: index[key] for alias, key in source.aliases.items() if key in index})
    return index


def _group(source: _Source) -> _Grouped:
    """Each resource with the patient it is about, counted; one that names a patient
    absent from the import is an error, one about no patient is counted as dropped."""
    grouped = _Grouped({}, {}, Counter(), Counter())
    present = {_label(u.resource) for u in source.units if u.resource["resourceType"] == "Patient"}
    for unit in source.units:
        res = unit.resource
        grouped.read[res["resourceType"]] += 1
        if res["resourceType"] == "Patient":
            key = _label(res)
            if key in grouped.patients:
                raise InvalidRecordError(
                    unit.file, unit.where, "id", f"{key} appears twice in this import"
                )
            grouped.patients[key] = unit
            grouped.related.setdefault(key, [])
        elif (ref := _patient_ref(res, source.aliases)) is not None:
            if ref not in present:
                why = f"refers to {ref}, which is not in this import"
                raise InvalidRecordError(unit.file, unit.where, "subject", why)
            grouped.related.setdefault(ref, []).append(res)
        else:
            continue
        grouped.kept[res["resourceType"]] += 1
    return grouped


def _with_origin(
    patient: Patient, unit: _Unit, source: _Source, source_name: str | None
) -> Patient:
    meta = unit.resource.get("meta")
    origin = (
        source_name
        or source.origins.get(unit.file)
        or source.origins.get(f"{unit.file}#{_label(unit.resource)}")
        or (meta.get("source") if isinstance(meta, dict) else None)
    )
    return replace(patient, origin=str(origin)) if origin else patient


def _refuse_duplicates(packets: list[Patient], files: list[str]) -> None:
    """Two phenopackets with one key (same ``id`` and ``subject.id``) in one import: one
    would silently replace the other."""
    seen: dict[str, str] = {}
    for patient, name in zip(packets, files, strict=True):
        if patient.local_id in seen:
            raise InvalidRecordError(
                name,
                f"phenopacket {patient.local_id!r}",
                "id",
                f"{seen[patient.local_id]} holds a phenopacket with the same id and subject.id; "
                "give one of them its own id",
            )
        seen[patient.local_id] = name


def read_patients(
    paths: Iterable[Path | str],
    *,
    progress: ProgressCallback | None = None,
    default_contact: ClinicianContact | None = None,
    phenopacket_consent: tuple[bool, bool] = (False, False),
) -> list[Patient]:
    """The patients of :func:`read_files` (nothing stored)."""
    return read_files(
        paths,
        progress=progress,
        default_contact=default_contact,
        phenopacket_consent=phenopacket_consent,
    ).patients


def _identifiers(patient: Patient) -> set[tuple[str, str]]:
    first = patient.resources[0] if patient.resources else {}
    found = first.get("identifier", []) if patient.source == "fhir" else []
    return {
        (str(i.get("system", "")), str(i["value"]))
        for i in found
        if isinstance(i, dict) and isinstance(i.get("value"), str)
    }


def same_patient(stored: Patient, arriving: Patient) -> bool:
    """Whether ``arriving`` may replace ``stored`` under one key. A server's ids are unique
    within it: with both origins known, the origin decides. Otherwise a shared identifier
    says same, identifiers of which none is shared or another birth date say different."""
    if stored.source != arriving.source:
        return False
    if stored.origin and arriving.origin:
        return stored.origin == arriving.origin
    old, new = _identifiers(stored), _identifiers(arriving)
    if old and new:
        return bool(old & new)
    births = (stored.birth_date, arriving.birth_date)
    return not (all(births) and births[0] != births[1])


def _keyed(
    store: PatientStore, patients: list[Patient], file_of: dict[str, str]
) -> tuple[list[Patient], list[str], int]:
    """``patients`` with the keys they are stored under: a patient whose key another
    source holds here gets its origin-qualified key; refused when it has no origin. Also
    the keys qualified, and how many of the patients replace one stored under their key."""
    stored = store.get_many(p.local_id for p in patients)
    qualified = {
        p.local_id: f"{p.origin}/Patient/{p.local_id}"
        for p in patients
        if p.local_id in stored and not same_patient(stored[p.local_id], p) and p.origin
    }
    stored.update(store.get_many(qualified.values()))
    out: list[Patient] = []
    rekeyed: list[str] = []
    for patient in patients:
        held = stored.get(patient.local_id)
        if held is None or same_patient(held, patient):
            out.append(patient)
            continue
        key = qualified.get(patient.local_id)
        if (
            key is None
            or len(key) > 256
            or (key in stored and not same_patient(stored[key], patient))
        ):
            raise InvalidRecordError(
                file_of.get(patient.local_id, "the import"),
                f"Patient/{patient.local_id}",
                "id",
                f"another patient is stored here under {patient.local_id!r} (from "
                f"{held.origin or 'a source of unknown origin'}); this one is a different "
                "patient, and replacing it would lose it. Keep both by importing it with its "
                "origin: the export directory with its log.ndjson or manifest, "
                "Patient.meta.source naming the system it comes from, or --source URL",
            )
        out.append(replace(patient, local_id=key))
        rekeyed.append(key)
    return out, rekeyed, sum(1 for p in out if p.local_id in stored)


def import_files(
    store: PatientStore,
    paths: Iterable[Path | str],
    *,
    progress: ProgressCallback | None = None,
    default_contact: ClinicianContact | None = None,
    phenopacket_consent: tuple[bool, bool] = (False, False),
    source_name: str | None = None,
) -> ImportReport:
    """Validate ``paths`` and store every patient in one transaction (all or nothing);
    the report counts what was read, kept, dropped and passed over."""
    result = read_files(
        paths,
        progress=progress,
        default_contact=default_contact,
        phenopacket_consent=phenopacket_consent,
        source_name=source_name,
    )
    patients, rekeyed, updated = _keyed(store, result.patients, result.file_of)
    store.put_many(patients)
    return ImportReport(
        files=result.files,
        resources=sum(len(p.resources) for p in patients),
        patients=len(patients),
        types=result.types,
        skipped=tuple(result.skipped),
        new=len(patients) - updated,
        updated=updated,
        rekeyed=tuple(rekeyed),
    )
