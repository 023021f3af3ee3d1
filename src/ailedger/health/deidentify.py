"""HIPAA Safe Harbor de-identification (45 CFR 164.514(b)(2)) of the node's patients.

Safe Harbor requires removing 18 kinds of identifiers of the individual *and of relatives,
employers and household members* (164.514(b)(2)(i)(A)-(R)): names; geographic subdivisions
smaller than a state (street, city, county, ZIP except its first three digits, and those set to
000 where the three-digit area holds 20,000 people or fewer); all elements of dates except the
year, and ages over 89; phone and fax numbers; e-mail; SSN; medical record, health plan,
account, certificate/licence numbers; vehicle and device identifiers; URLs; IP addresses;
biometric identifiers; full-face photographs; any other unique identifying number or code.

This module **fails closed**: it does not look for identifiers, it copies only allow-listed
fields and drops everything else. A published record holds: a random surrogate id, sex, birth
year (or ``age_group: "90+"`` and no birth year when the patient is, or died, 90 or older),
deceased flag and death year, ZIP3, HPO/OMIM/ORPHA terms (well-formed ids known to the label
table, labels from that table, never the source's ``display`` text), HGNC gene symbols, consent
flags, and FHIR R4 resources filtered field by field through ``_FHIR_ALLOW``: Patient,
Condition, Observation, Encounter, MedicationRequest, Procedure, Immunization and
AllergyIntolerance, with their clinical codes (SNOMED CT, ICD-10(-CM), LOINC with values and
UCUM units, RxNorm, CVX), which are not identifiers, each checked for its system's exact
format. Narrative (``text.div``), notes, ``display`` and ``text`` strings, attachments,
extensions, identifiers, telecom, names, contacts (employers), references to other records,
RelatedPerson, Practitioner, Organization, Location, Device (its UDI is an identifier),
DocumentReference, Consent and every unlisted resource type are dropped. Relatives' and
employers' data is therefore never copied. Each run counts what it kept and removed
(:attr:`DeidResult.report`: records in and out per resource type, codes kept per system,
fields removed by name); the published file carries that report.

Dates: Safe Harbor allows the year only; a shifted full date is *not* Safe Harbor (it is an
expert-determination technique). So every published date is its true year (FHIR R4 accepts a
year as ``date``/``dateTime``) and nothing finer. Each patient also gets a random date offset
(uniform in +/-365 days, never 0) recorded only in the key file, with the map from surrogate
ids to local ids; a key holder may use it (:func:`shift_date`) to build a date-shifted limited
view for longitudinal intervals inside the node. The key file ``deid-keys.json`` is created
with mode 0600 and must stay at the node: it re-identifies the dataset. Surrogates come from
``secrets`` and are not derived from the originals.

ZIP3 areas restricted to 000: the 17 three-digit ZIP codes with 20,000 or fewer people in the
2000 Census, as listed by HHS, "Guidance Regarding Methods for De-identification of Protected
Health Information", section 2.4 (2012).
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from ailedger._durable import PUBLIC_FILE_MODE, atomic_write
from ailedger.errors import AiledgerError
from ailedger.health import _fhir_allow
from ailedger.health._fhir_allow import RESTRICTED_ZIP3, zip3
from ailedger.health._terms import GENE_SYMBOL, default_labels, term_prefix
from ailedger.health.patients import Patient

__all__ = [
    "KEY_FILE",
    "MAX_SHIFT_DAYS",
    "QUASI_IDENTIFIERS",
    "RESTRICTED_ZIP3",
    "DeidResult",
    "DeidentificationError",
    "KAnonymityReport",
    "age_at",
    "deidentify",
    "k_anonymity",
    "parse_date",
    "shift_date",
    "write_dataset",
    "zip3",
]

KEY_FILE = "deid-keys.json"
MAX_SHIFT_DAYS = 365
QUASI_IDENTIFIERS = ("birth_year", "age_group", "sex", "zip3")
_SEXES = {"male", "female", "other", "unknown"}


class DeidentificationError(AiledgerError):
    """De-identification could not finish (e.g. the key file cannot be written)."""


def parse_date(value: str | None) -> date | None:
    """A FHIR date/dateTime as a date; partial dates take the earliest day (older is safer)."""
    if not value or len(value) < 4 or not value[:4].isdigit():
        return None
    parts = [*value[:10].split("-"), "01", "01"][:3]
    try:
        return date(int(parts[0]), int(parts[1]), int(parts[2]))
    except ValueError:
        return None


def age_at(birth: date, when: date) -> int:
    return when.year - birth.year - ((when.month, when.day) < (birth.month, birth.day))


def shift_date(value: str, days: int) -> str:
    """``value`` moved by ``days`` (for key holders only; shifted dates are not Safe Harbor)."""
    parsed = parse_date(value)
    if parsed is None:
        raise DeidentificationError(f"{value!r} is not a date; pass YYYY[-MM[-DD]]")
    return (parsed + timedelta(days=days)).isoformat()


def _random_shift() -> int:
    """Uniform in [-MAX_SHIFT_DAYS, MAX_SHIFT_DAYS] without 0."""
    days = secrets.randbelow(2 * MAX_SHIFT_DAYS) - MAX_SHIFT_DAYS
    return days + 1 if days >= 0 else days


@dataclass
class DeidResult:
    """Published records, where their re-identification keys were written, and the count
    report of the run (patients in/out, FHIR records in/out per type, codes kept per
    system, fields removed by name)."""

    records: list[dict[str, Any]]
    key_file: Path
    report: dict[str, Any] = field(default_factory=dict)


def _terms(
    ids: Iterable[str], prefixes: tuple[str, ...], labels: Mapping[str, str]
) -> list[dict[str, str]]:
    out = []
    for term in ids:
        if term_prefix(term) not in prefixes or (labels and term not in labels):
            continue
        out.append({"id": term, "label": labels[term]} if labels else {"id": term})
    return out


def _record(
    patient: Patient,
    labels: Mapping[str, str],
    today: date,
    keys: dict[str, Any],
    tally: _fhir_allow.Tally,
) -> dict[str, Any]:
    surrogate = "DEID-" + secrets.token_hex(8)
    birth = parse_date(patient.birth_date)
    death = parse_date(patient.death_date)
    # The age that matters is the oldest the record shows: at death, else now.
    over_89 = birth is not None and age_at(birth, death or today) >= 90
    ctx = _fhir_allow.Context(f"Patient/{surrogate}", labels, hide_birth=over_89, tally=tally)
    fhir = [r for r in (ctx.filter(res) for res in patient.resources) if r is not None]
    keys[surrogate] = {
        "local_id": patient.local_id,
        "date_shift_days": _random_shift(),
        "resources": ctx.originals,
    }
    hpo = labels if labels else {}
    return {
        "id": surrogate,
        "sex": patient.sex if patient.sex in _SEXES else "unknown",
        "birth_year": None if over_89 or birth is None else birth.year,
        "age_group": "90+" if over_89 else None,
        "deceased": bool(patient.deceased or death),
        "death_year": death.year if death else None,
        "zip3": zip3(patient.postal_code),
        "phenotypic_features": [
            {"type": t, "excluded": excluded}
            for excluded, ids in ((False, patient.observed), (True, patient.excluded))
            for t in _terms(ids, ("HP",), hpo)
        ],
        "diseases": [{"term": t} for t in _terms(patient.diagnoses, ("OMIM", "ORPHA"), hpo)],
        "genes": [g for g in patient.genes if GENE_SYMBOL.fullmatch(g)],
        "consent": {"matchmaking": patient.matchmaking, "research": patient.research},
        "fhir": fhir,
    }


def _write_keys(key_dir: Path, new: dict[str, Any]) -> Path:
    path = key_dir / KEY_FILE
    try:
        key_dir.mkdir(parents=True, exist_ok=True)
        keys: dict[str, Any] = {"format": "ailedger-deid-keys/1", "patients": {}}
        if path.exists():
            keys = json.loads(path.read_text(encoding="utf-8"))
        keys["patients"].update(new)
        atomic_write(path, json.dumps(keys).encode("utf-8"))
    except (OSError, ValueError, KeyError) as exc:
        raise DeidentificationError(
            f"cannot write the de-identification keys to {path}: {exc}; nothing was published, "
            "fix the key directory and run again"
        ) from exc
    return path


def deidentify(
    patients: Iterable[Patient],
    key_dir: Path | str,
    *,
    labels: Mapping[str, str] | None = None,
    today: date | None = None,
    only_research_consented: bool = True,
    consents: Callable[[Patient], bool] | None = None,
    progress: Callable[[int], None] | None = None,
) -> DeidResult:
    """Safe Harbor records for ``patients``; keys are added to ``key_dir/deid-keys.json``.

    ``labels`` maps term ids to canonical labels (default: hpo3's HPO/OMIM/ORPHA names); when
    it is not empty, terms missing from it are dropped. Patients without research consent are
    skipped unless ``only_research_consented`` is false. ``consents`` says whether a patient
    consents to rare-disease research now (the node's effective consent, which for a
    patient linked to a wallet is the chain's: ``HealthNode.consent_check``); without it,
    the import's ``research`` flag decides.
    """
    research = consents if consents is not None else (lambda patient: patient.research)
    table = default_labels() if labels is None else labels
    when = today or date.today()
    keys: dict[str, Any] = {}
    records = []
    tally = _fhir_allow.Tally()
    seen = 0
    for seen, patient in enumerate(patients, start=1):
        if not only_research_consented or research(patient):
            records.append(_record(patient, table, when, keys, tally))
        if progress is not None and seen % 500 == 0:
            progress(seen)
    report = {"patients": {"in": seen, "out": len(records)}, **tally.to_dict()}
    return DeidResult(records, _write_keys(Path(key_dir), keys), report)


def write_dataset(
    records: Sequence[dict[str, Any]],
    path: Path | str,
    report: Mapping[str, Any] | None = None,
) -> None:
    """The records (and the run's count report) as one JSON file for publication; keys
    are never part of it. It holds no identifier, so it is written 0644 (narrowed by the
    umask), atomically: a reader never sees half of it."""
    document: dict[str, Any] = {"records": list(records)}
    if report is not None:
        document["report"] = dict(report)
    atomic_write(Path(path), json.dumps(document, indent=1).encode("utf-8"), mode=PUBLIC_FILE_MODE)


@dataclass(frozen=True)
class KAnonymityReport:
    """k-anonymity over quasi-identifiers: k is the size of the smallest equivalence class."""

    k: int
    records: int
    classes: int
    threshold: int
    quasi_identifiers: tuple[str, ...]
    classes_below_threshold: list[tuple[tuple[object, ...], int]] = field(default_factory=list)

    @property
    def smallest_class_size(self) -> int:
        return self.k


def k_anonymity(
    records: Sequence[Mapping[str, Any]],
    *,
    threshold: int = 5,
    quasi_identifiers: Sequence[str] = QUASI_IDENTIFIERS,
    year_band: int = 1,
) -> KAnonymityReport:
    """Group ``records`` by ``quasi_identifiers``; birth years fall into ``year_band`` bins."""

    def value(record: Mapping[str, Any], name: str) -> object:
        v = record.get(name)
        if name == "birth_year" and isinstance(v, int) and year_band > 1:
            start = v - v % year_band
            return f"{start}-{start + year_band - 1}"
        return v

    sizes = Counter(tuple(value(r, q) for q in quasi_identifiers) for r in records)
    below = sorted(
        ((c, n) for c, n in sizes.items() if n < threshold), key=lambda x: (x[1], str(x[0]))
    )
    return KAnonymityReport(
        k=min(sizes.values(), default=0),
        records=len(records),
        classes=len(sizes),
        threshold=threshold,
        quasi_identifiers=tuple(quasi_identifiers),
        classes_below_threshold=below,
    )
