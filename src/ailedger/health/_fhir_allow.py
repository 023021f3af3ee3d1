"""Field allow-list for FHIR R4 resources published under HIPAA Safe Harbor.

Only what ``_FHIR_ALLOW`` names is copied, through a rule that checks and transforms the value;
everything else (identifiers, names, telecom, addresses beyond ZIP3, narrative, notes,
extensions, attachments, free-text ``display``/``text``) is dropped. Codes survive only from
code systems listed here and only in their exact format, so a code field cannot smuggle a
number or name. See :mod:`ailedger.health.deidentify` for the rules of 45 CFR 164.514(b)(2).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
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
    "http://loinc.org": {"48018-6", "81259-4", "LA9633-4", "LA9634-2"},
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


class Context:
    """One patient's filtering state: surrogate ids minted and what they stand for."""

    def __init__(self, patient_ref: str, labels: Mapping[str, str], hide_birth: bool) -> None:
        self.patient_ref = patient_ref
        self.labels = labels
        self.hide_birth = hide_birth
        self.originals: dict[str, str] = {}  # surrogate "Type/id" -> original "Type/id"

    def filter(self, resource: dict[str, Any]) -> dict[str, Any] | None:
        kind = resource.get("resourceType")
        spec = _FHIR_ALLOW.get(kind) if isinstance(kind, str) else None
        if spec is None:
            return None
        out = _apply(spec, resource, self)
        if kind == "Patient":
            out["id"] = self.patient_ref.split("/", 1)[1]
        else:
            out["id"] = secrets.token_hex(8)
        self.originals[f"{kind}/{out['id']}"] = f"{kind}/{resource.get('id', '')}"
        return {"resourceType": kind, **out}


def _apply(spec: dict[str, _Rule], obj: dict[str, Any], ctx: Context) -> dict[str, Any]:
    out: dict[str, Any] = {}
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
    system, code = value.get("system"), value.get("code")
    if isinstance(system, str) and system in _FIXED:
        return {"system": system, "code": code} if code in _FIXED[system] else None
    term = term_id(system, code)
    prefix = term_prefix(term) if term else None
    if term is None or prefix is None:
        return None
    if prefix == "HGNC":
        return {"system": SYSTEM_BY_PREFIX["HGNC"], "code": term}
    if ctx.labels and term not in ctx.labels:
        return None
    out = {
        "system": SYSTEM_BY_PREFIX[prefix],
        "code": term if prefix == "HP" else term.split(":", 1)[1],
    }
    if term in ctx.labels:
        out["display"] = ctx.labels[term]
    return out


_CONCEPT: dict[str, _Rule] = {"coding": _coding}

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
        "recordedDate": _year,
    },
    "Observation": {
        "status": _enum(_OBS_STATUS),
        "category": _CONCEPT,
        "code": _CONCEPT,
        "subject": _patient_ref,
        "effectiveDateTime": _year,
        "valueBoolean": _bool,
        "valueCodeableConcept": _CONCEPT,
        "interpretation": _CONCEPT,
        "component": {"code": _CONCEPT, "valueCodeableConcept": _CONCEPT},
    },
    "Encounter": {
        "status": _enum(_ENC_STATUS),
        "class": _coding,
        "subject": _patient_ref,
        "period": {"start": _year, "end": _year},
    },
}
