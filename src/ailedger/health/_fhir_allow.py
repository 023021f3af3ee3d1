"""Field allow-list for FHIR R4 resources published under HIPAA Safe Harbor.

Only what ``_FHIR_ALLOW`` names is copied, through a rule that checks and transforms the value;
everything else (identifiers, names, telecom, addresses beyond ZIP3, narrative, notes,
extensions, attachments, free-text ``display``/``text``) is dropped. Codes survive only from
code systems listed here and only in their exact format, so a code field cannot smuggle a
number or name. See :mod:`ailedger.health.deidentify` for the rules of 45 CFR 164.514(b)(2).

Clinical codes are not identifiers: coded diagnoses (SNOMED CT, ICD-10/ICD-10-CM, HPO,
OMIM, Orphanet), observations (LOINC, with their values and UCUM units), medications
(RxNorm), vaccines (CVX) and procedures (SNOMED CT) are kept. Their format is checked as
strictly as each system allows: a SNOMED CT concept id by its partition and Verhoeff check
digit, a LOINC code by its mod-10 check digit, so an arbitrary number (a record number, a
phone) placed in a code field is dropped. Their ``display`` text is dropped (the source
wrote it); HPO/OMIM/ORPHA codes get the canonical label instead.

Every run keeps a :class:`Tally`: resources in and out per type, codes kept per system, and
fields removed by name (``identifier``, ``name``, ``display``, ``text``, ...), the count
report ``health deidentify`` prints and writes.
"""

from __future__ import annotations

import re
import secrets
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from ailedger.health._terms import SYSTEM_BY_PREFIX, term_id, term_prefix

_Rule: TypeAlias = "Callable[[Any, Context], Any] | dict[str, _Rule]"

# HHS, "Guidance Regarding Methods for De-identification of PHI" (2012), section 2.4: the
# three-digit ZIP areas with 20,000 or fewer people (2000 Census) must be published as 000.
RESTRICTED_ZIP3 = frozenset(
    {
        "036",
        "059",
        "063",
        "102",
        "203",
        "556",
        "692",
        "790",
        "821",
        "823",
        "830",
        "831",
        "878",
        "879",
        "884",
        "890",
        "893",
    }
)


def zip3(postal_code: str | None) -> str | None:
    """First three digits of a US ZIP code, ``"000"`` for the restricted areas, else ``None``."""
    if not postal_code:
        return None
    digits = postal_code.strip()[:5]
    if len(digits) < 3 or not digits[:3].isdigit():
        return None
    return "000" if digits[:3] in RESTRICTED_ZIP3 else digits[:3]


SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
CVX = "http://hl7.org/fhir/sid/cvx"
UCUM = "http://unitsofmeasure.org"

# The Verhoeff dihedral-group tables (SNOMED CT Technical Implementation Guide, 6.7).
_VERHOEFF_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_VERHOEFF_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)


def snomed_concept(code: str) -> bool:
    """A SNOMED CT concept id: 6-18 digits, no leading zero, partition 00 or 10 (a
    concept), and a valid Verhoeff check digit."""
    if not re.fullmatch(r"[1-9]\d{5,17}", code) or code[-3:-1] not in ("00", "10"):
        return False
    check = 0
    for i, digit in enumerate(reversed(code)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[i % 8][int(digit)]]
    return check == 0


def loinc_code(code: str) -> bool:
    """A LOINC code ``NNNNN-C`` whose check digit C is the mod-10 (Luhn) digit of N, or
    an answer code ``LAnnnnn-C`` (LOINC Users' Guide, check digit calculation)."""
    match = re.fullmatch(r"(LA)?(\d{1,7})-(\d)", code)
    if match is None:
        return False
    if match.group(1):
        return True  # answer codes: checked in LOINC's own way, format only here
    total = 0
    for i, digit in enumerate(reversed(match.group(2))):
        n = int(digit) * (2 if i % 2 == 0 else 1)
        total += n // 10 + n % 10
    return (10 - total % 10) % 10 == int(match.group(3))


_ICD10 = re.compile(r"[A-TV-Z]\d[0-9A-Z](\.[0-9A-Z]{1,4})?")
# Clinical code systems kept (not identifiers), with how a code of each is recognised, and
# the short name the count report gives them.
CLINICAL: dict[str, tuple[Callable[[str], bool], str]] = {
    SNOMED: (snomed_concept, "SNOMED CT"),
    LOINC: (loinc_code, "LOINC"),
    RXNORM: (lambda c: re.fullmatch(r"[1-9]\d{0,8}", c) is not None, "RxNorm"),
    ICD10CM: (lambda c: _ICD10.fullmatch(c) is not None, "ICD-10-CM"),
    ICD10: (lambda c: _ICD10.fullmatch(c) is not None, "ICD-10"),
    CVX: (lambda c: re.fullmatch(r"\d{1,3}", c) is not None, "CVX"),
}
# UCUM units as Synthea and US Core write them (mm[Hg], kg/m2, /min, {score}, 10*3/uL);
# an annotation in braces is free text in UCUM, so only short lower-case words pass.
_UCUM = re.compile(r"(?:[A-Za-z0-9%/.*^\[\]'-]|\{[a-z#' ]{1,16}\}){1,24}")
_COMPARATORS = {"<", "<=", ">=", ">"}
# LOINC codes whose value is an age: Safe Harbor aggregates ages over 89 (164.514(b)(2)(i)(C)).
_AGE_CODES = {"30525-0", "21612-7", "29553-5", "21611-9"}


@dataclass
class Tally:
    """What one de-identification run kept and removed (the count report)."""

    records_in: Counter[str] = field(default_factory=Counter)
    records_out: Counter[str] = field(default_factory=Counter)
    codes_kept: Counter[str] = field(default_factory=Counter)
    fields_removed: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        kinds = sorted(set(self.records_in) | set(self.records_out))
        return {
            "records": {k: {"in": self.records_in[k], "out": self.records_out[k]} for k in kinds},
            "codes_kept": dict(sorted(self.codes_kept.items())),
            "fields_removed": dict(sorted(self.fields_removed.items())),
        }


# Fixed-vocabulary FHIR/HL7 code systems: (system -> allowed codes).
_FIXED = {
    "http://terminology.hl7.org/CodeSystem/condition-clinical": {
        "active",
        "recurrence",
        "relapse",
        "inactive",
        "remission",
        "resolved",
    },
    "http://terminology.hl7.org/CodeSystem/condition-ver-status": {
        "unconfirmed",
        "provisional",
        "differential",
        "confirmed",
        "refuted",
        "entered-in-error",
    },
    "http://terminology.hl7.org/CodeSystem/condition-category": {
        "problem-list-item",
        "encounter-diagnosis",
    },
    "http://terminology.hl7.org/CodeSystem/observation-category": {
        "social-history",
        "vital-signs",
        "imaging",
        "laboratory",
        "procedure",
        "survey",
        "exam",
        "therapy",
        "activity",
    },
    "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation": {
        "POS",
        "NEG",
        "ND",
        "DET",
        "A",
        "N",
        "H",
        "L",
    },
    "http://terminology.hl7.org/CodeSystem/v3-ActCode": {
        "AMB",
        "EMER",
        "FLD",
        "HH",
        "IMP",
        "ACUTE",
        "NONAC",
        "OBSENC",
        "PRENC",
        "SS",
        "VR",
    },
    "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical": {
        "active",
        "inactive",
        "resolved",
    },
    "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification": {
        "unconfirmed",
        "confirmed",
        "refuted",
        "entered-in-error",
    },
    "http://terminology.hl7.org/CodeSystem/medicationrequest-category": {
        "inpatient",
        "outpatient",
        "community",
        "discharge",
    },
}
_OBS_STATUS = {
    "registered",
    "preliminary",
    "final",
    "amended",
    "corrected",
    "cancelled",
    "entered-in-error",
    "unknown",
}
_ENC_STATUS = {
    "planned",
    "arrived",
    "triaged",
    "in-progress",
    "onleave",
    "finished",
    "cancelled",
    "entered-in-error",
    "unknown",
}

_MED_STATUS = {
    "active",
    "on-hold",
    "cancelled",
    "completed",
    "entered-in-error",
    "stopped",
    "draft",
    "unknown",
}
_MED_INTENT = {
    "proposal",
    "plan",
    "order",
    "original-order",
    "reflex-order",
    "filler-order",
    "instance-order",
    "option",
}
_PROC_STATUS = {
    "preparation",
    "in-progress",
    "not-done",
    "on-hold",
    "stopped",
    "completed",
    "entered-in-error",
    "unknown",
}


class Context:
    """One patient's filtering state: surrogate ids minted and what they stand for."""

    def __init__(
        self,
        patient_ref: str,
        labels: Mapping[str, str],
        hide_birth: bool,
        tally: Tally | None = None,
    ) -> None:
        self.patient_ref = patient_ref
        self.labels = labels
        self.hide_birth = hide_birth
        self.tally = tally if tally is not None else Tally()
        self.originals: dict[str, str] = {}  # surrogate "Type/id" -> original "Type/id"

    def filter(self, resource: dict[str, Any]) -> dict[str, Any] | None:
        kind = resource.get("resourceType")
        # A phenopacket is published through the record's own fields (terms, genes), never raw.
        name = kind if isinstance(kind, str) else "Phenopacket" if "metaData" in resource else "?"
        self.tally.records_in[name] += 1
        spec = _FHIR_ALLOW.get(kind) if isinstance(kind, str) else None
        if spec is None:
            return None
        out = _apply(spec, resource, self)
        if kind == "Observation":
            _group_old_age(out)
        if kind == "Patient":
            out["id"] = self.patient_ref.split("/", 1)[1]
        else:
            out["id"] = secrets.token_hex(8)
        self.originals[f"{kind}/{out['id']}"] = f"{kind}/{resource.get('id', '')}"
        self.tally.records_out[name] += 1
        return {"resourceType": kind, **out}


def _group_old_age(observation: dict[str, Any]) -> None:
    """An observed age of 90 or more becomes ">= 90" (ages over 89 are identifiers)."""
    codes = {c.get("code") for c in observation.get("code", {}).get("coding", [])}
    quantity = observation.get("valueQuantity")
    if codes & _AGE_CODES and isinstance(quantity, dict):
        value = quantity.get("value")
        if isinstance(value, int | float) and value >= 90:
            observation["valueQuantity"] = {**quantity, "value": 90, "comparator": ">="}


def _apply(spec: dict[str, _Rule], obj: dict[str, Any], ctx: Context) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in obj:
        if key not in spec and key != "resourceType":  # an "id" gives way to a surrogate
            ctx.tally.fields_removed[key] += 1
    for key, rule in spec.items():
        if key not in obj:
            continue
        value = obj[key]
        if isinstance(value, list):
            kept = [v for v in (_one(rule, item, ctx) for item in value) if v not in (None, {})]
            if kept:
                out[key] = kept
        else:
            one = _one(rule, value, ctx)
            if one not in (None, {}):
                out[key] = one
    return out


def _one(rule: _Rule, value: Any, ctx: Context) -> Any:
    if isinstance(rule, dict):
        return _apply(rule, value, ctx) if isinstance(value, dict) else None
    return rule(value, ctx)


def _enum(allowed: set[str]) -> Callable[[Any, Context], Any]:
    return lambda v, _ctx: v if isinstance(v, str) and v in allowed else None


def _bool(value: Any, _ctx: Context) -> Any:
    return value if isinstance(value, bool) else None


def _year(value: Any, _ctx: Context) -> Any:
    """Safe Harbor keeps the year of a date and nothing finer."""
    if isinstance(value, str) and len(value) >= 4 and value[:4].isdigit():
        return value[:4]
    return None


def _birth_year(value: Any, ctx: Context) -> Any:
    return None if ctx.hide_birth else _year(value, ctx)


def _patient_ref(value: Any, ctx: Context) -> Any:
    return {"reference": ctx.patient_ref} if isinstance(value, dict) else None


def _zip3(value: Any, _ctx: Context) -> Any:
    return zip3(value) if isinstance(value, str) else None


def _coding(value: Any, ctx: Context) -> Any:
    if not isinstance(value, dict):
        return None
    kept = _kept_coding(value, ctx)
    removed = set(value) - {"system", "code"} if kept is not None else {"coding"}
    for key in removed:
        ctx.tally.fields_removed[key] += 1
    return kept


def _kept_coding(value: dict[str, Any], ctx: Context) -> dict[str, Any] | None:
    system, code = value.get("system"), value.get("code")
    if isinstance(system, str) and system in _FIXED:
        return {"system": system, "code": code} if code in _FIXED[system] else None
    if isinstance(system, str) and system in CLINICAL:
        valid, name = CLINICAL[system]
        if not isinstance(code, str) or not valid(code):
            return None
        ctx.tally.codes_kept[name] += 1
        return {"system": system, "code": code}  # the source's display is free text
    term = term_id(system, code)
    prefix = term_prefix(term) if term else None
    if term is None or prefix is None:
        return None
    if prefix == "HGNC":
        ctx.tally.codes_kept["HGNC"] += 1
        return {"system": SYSTEM_BY_PREFIX["HGNC"], "code": term}
    if ctx.labels and term not in ctx.labels:
        return None
    out = {
        "system": SYSTEM_BY_PREFIX[prefix],
        "code": term if prefix == "HP" else term.split(":", 1)[1],
    }
    if term in ctx.labels:
        out["display"] = ctx.labels[term]
    ctx.tally.codes_kept[prefix] += 1
    return out


def _number(value: Any, _ctx: Context) -> Any:
    # bool is an int in Python: a boolean is not a measured value
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _unit(value: Any, _ctx: Context) -> Any:
    return value if isinstance(value, str) and _UCUM.fullmatch(value) else None


def _ucum_system(value: Any, _ctx: Context) -> Any:
    return value if value == UCUM else None


_CONCEPT: dict[str, _Rule] = {"coding": _coding}
_QUANTITY: dict[str, _Rule] = {
    "value": _number,
    "comparator": _enum(_COMPARATORS),
    "unit": _unit,
    "system": _ucum_system,
    "code": _unit,
}
_PERIOD: dict[str, _Rule] = {"start": _year, "end": _year}

_FHIR_ALLOW: dict[str, dict[str, _Rule]] = {
    "Patient": {
        "gender": _enum({"male", "female", "other", "unknown"}),
        "birthDate": _birth_year,
        "deceasedBoolean": _bool,
        "deceasedDateTime": _year,
        "address": {"postalCode": _zip3},
    },
    "Condition": {
        "clinicalStatus": _CONCEPT,
        "verificationStatus": _CONCEPT,
        "category": _CONCEPT,
        "code": _CONCEPT,
        "subject": _patient_ref,
        "onsetDateTime": _year,
        "abatementDateTime": _year,
        "recordedDate": _year,
    },
    "Observation": {
        "status": _enum(_OBS_STATUS),
        "category": _CONCEPT,
        "code": _CONCEPT,
        "subject": _patient_ref,
        "effectiveDateTime": _year,
        "issued": _year,
        "valueBoolean": _bool,
        "valueInteger": _number,
        "valueQuantity": _QUANTITY,
        "valueCodeableConcept": _CONCEPT,
        "interpretation": _CONCEPT,
        "component": {
            "code": _CONCEPT,
            "valueQuantity": _QUANTITY,
            "valueCodeableConcept": _CONCEPT,
        },
    },
    "Encounter": {
        "status": _enum(_ENC_STATUS),
        "class": _coding,
        "type": _CONCEPT,
        "reasonCode": _CONCEPT,
        "subject": _patient_ref,
        "period": _PERIOD,
    },
    "MedicationRequest": {
        "status": _enum(_MED_STATUS),
        "intent": _enum(_MED_INTENT),
        "category": _CONCEPT,
        "medicationCodeableConcept": _CONCEPT,
        "subject": _patient_ref,
        "authoredOn": _year,
        "reasonCode": _CONCEPT,
    },
    "Procedure": {
        "status": _enum(_PROC_STATUS),
        "code": _CONCEPT,
        "subject": _patient_ref,
        "performedDateTime": _year,
        "performedPeriod": _PERIOD,
        "reasonCode": _CONCEPT,
    },
    "Immunization": {
        "status": _enum({"completed", "entered-in-error", "not-done"}),
        "vaccineCode": _CONCEPT,
        "patient": _patient_ref,
        "occurrenceDateTime": _year,
    },
    "AllergyIntolerance": {
        "clinicalStatus": _CONCEPT,
        "verificationStatus": _CONCEPT,
        "type": _enum({"allergy", "intolerance"}),
        "category": _enum({"food", "medication", "environment", "biologic"}),
        "criticality": _enum({"low", "high", "unable-to-assess"}),
        "code": _CONCEPT,
        "patient": _patient_ref,
        "recordedDate": _year,
    },
}
