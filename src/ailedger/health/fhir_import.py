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
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class ImportReport:
    """What one import wrote."""

    files: int
    resources: int
    patients: int


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


def _expand(paths: Iterable[Path | str]) -> list[Path]:
    out: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if _readable(p) and not _export_log(p)))
        else:
            out.append(path)
    return out


def _readable(path: Path) -> bool:
    return path.name.endswith((".json", ".ndjson", ".ndjson.gz"))


def _export_log(path: Path) -> bool:
    """A FHIR Bulk Data export's own ``log.ndjson`` (events of the export, each with an
    ``exportId``, no ``resourceType``): it describes the export and holds no resource, so a
    directory import passes over it rather than failing on it."""
    if path.name != "log.ndjson":
        return False
    try:
        with path.open(encoding="utf-8") as handle:
            first = parse_untrusted(handle.readline())
    except (OSError, UnicodeDecodeError, ValueError):
        return False  # not the log it is named like: read it, and fail on it there
    return isinstance(first, dict) and "exportId" in first and "resourceType" not in first


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
                source.units.append(_Unit(name, f"line {n} {_label(resource)}", resource))
            continue
        try:
            doc = parse_untrusted(text)
        except ValueError as exc:
            raise InvalidRecordError(name, "document", "", str(exc)) from exc
        if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
            _read_bundle(name, doc, source)
        elif isinstance(doc, dict) and "resourceType" in doc:
            source.units.append(_Unit(name, _label(doc), doc))
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


def read_patients(
    paths: Iterable[Path | str],
    *,
    progress: ProgressCallback | None = None,
    default_contact: ClinicianContact | None = None,
    phenopacket_consent: tuple[bool, bool] = (False, False),
) -> list[Patient]:
    """Read and validate files (Bundle ``.json``, bulk ``.ndjson``, phenopacket ``.json``, or
    directories of them) into patients, storing nothing.

    ``phenopacket_consent`` is (matchmaking, research) for phenopackets, which carry none.
    """
    source = _Source([], {}, [])
    _read(_expand(paths), source)
    total = len(source.units) + len(source.phenopackets)
    for done, unit in enumerate(source.units, start=1):
        _validate(unit)
        if progress is not None and done % _PROGRESS_EVERY == 0:
            progress(done, total)
    index: dict[str, dict[str, Any]] = {}
    for unit in source.units:
        index.setdefault(_label(unit.resource), unit.resource)
    index.update({alias: index[key] for alias, key in source.aliases.items() if key in index})
    related: dict[str, list[dict[str, Any]]] = {}
    patients: dict[str, _Unit] = {}
    for unit in source.units:
        res = unit.resource
        if res["resourceType"] == "Patient":
            key = _label(res)
            if key in patients:
                raise InvalidRecordError(
                    unit.file, unit.where, "id", f"{key} appears twice in this import"
                )
            patients[key] = unit
            related.setdefault(key, [])
        elif (ref := _patient_ref(res, source.aliases)) is not None:
            related.setdefault(ref, []).append(res)
    for unit in source.units:
        ref = _patient_ref(unit.resource, source.aliases)
        if ref is not None and ref not in patients:
            raise InvalidRecordError(
                unit.file, unit.where, "subject", f"refers to {ref}, which is not in this import"
            )
    out = [_build(u.resource, related[k], index, default_contact) for k, u in patients.items()]
    for name, doc in source.phenopackets:
        out.append(
            parse_phenopacket(
                doc,
                name,
                contact=default_contact,
                matchmaking=phenopacket_consent[0],
                research=phenopacket_consent[1],
            )
        )
    if progress is not None:
        progress(total, total)
    return out


def import_files(
    store: PatientStore,
    paths: Iterable[Path | str],
    *,
    progress: ProgressCallback | None = None,
    default_contact: ClinicianContact | None = None,
    phenopacket_consent: tuple[bool, bool] = (False, False),
) -> ImportReport:
    """Validate ``paths`` and store every patient in one transaction (all or nothing)."""
    files = _expand(paths)
    patients = read_patients(
        files,
        progress=progress,
        default_contact=default_contact,
        phenopacket_consent=phenopacket_consent,
    )
    store.put_many(patients)
    return ImportReport(
        files=len(files),
        resources=sum(len(p.resources) for p in patients),
        patients=len(patients),
    )
