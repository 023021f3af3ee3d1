"""One wearable reading, normalised, checked, and written as a FHIR R4 Observation.

Every importer (Apple Health, Open mHealth, FHIR) turns what it reads into a :class:`Reading`
carrying the unit the source wrote; :func:`check` says why a reading cannot be used, and
:func:`normalise` converts it to the one UCUM unit of its kind. Codes are LOINC (the FHIR
vital-signs profile, FHIR R4 section 8.2.1, names 8867-4 and the blood-pressure pair);
units are UCUM (https://ucum.org/ucum), the code system FHIR's ``Quantity`` requires.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CLOCK_SKEW = timedelta(minutes=10)
"""How far in the future a reading may end: device clocks drift, and a watch synced a few
minutes fast should not lose its last readings."""
MAX_SPAN = timedelta(days=1)
"""The longest interval one reading may cover: sources write per-minute to daily values;
a longer one is a summary, not a reading, and would claim days of dedupe buckets."""


@dataclass(frozen=True)
class KindSpec:
    """What one kind of reading means: its LOINC code, its UCUM unit, the units it is
    accepted in (with the factor to the UCUM unit) and the values a body can produce."""

    loinc: str
    display: str
    unit: str
    accepted: dict[str, float]
    low: float
    high: float
    category: str  # FHIR observation-category: vital-signs or activity


KINDS: dict[str, KindSpec] = {
    "heart_rate": KindSpec(
        "8867-4", "Heart rate", "/min", {"/min": 1.0, "count/min": 1.0, "beats/min": 1.0},
        20, 300, "vital-signs",
    ),
    "resting_heart_rate": KindSpec(
        "40443-4", "Heart rate --resting", "/min",
        {"/min": 1.0, "count/min": 1.0, "beats/min": 1.0}, 20, 300, "vital-signs",
    ),
    "hrv_sdnn": KindSpec(
        "80404-7", "R-R interval.standard deviation (Heart rate variability)", "ms",
        {"ms": 1.0, "s": 1000.0}, 1, 500, "vital-signs",
    ),
    "steps": KindSpec(
        "55423-8", "Number of steps in unspecified time Pedometer", "{steps}",
        {"{steps}": 1.0, "count": 1.0, "steps": 1.0, "1": 1.0}, 0, 100_000, "activity",
    ),
    "sleep": KindSpec(
        "93832-4", "Sleep duration", "min", {"min": 1.0, "h": 60.0, "s": 1 / 60, "sec": 1 / 60},
        0, 1440, "activity",
    ),
    "systolic_bp": KindSpec(
        "8480-6", "Systolic blood pressure", "mm[Hg]", {"mm[Hg]": 1.0, "mmHg": 1.0}, 50, 260,
        "vital-signs",
    ),
    "diastolic_bp": KindSpec(
        "8462-4", "Diastolic blood pressure", "mm[Hg]", {"mm[Hg]": 1.0, "mmHg": 1.0}, 30, 160,
        "vital-signs",
    ),
}  # fmt: skip
KIND_NAMES = tuple(KINDS)
BY_LOINC = {spec.loinc: kind for kind, spec in KINDS.items()}


@dataclass(frozen=True)
class Reading:
    """One measurement over ``[start, end]`` (equal for an instant), in the unit the source
    wrote until :func:`normalise` converts it. Times are aware and in UTC."""

    kind: str
    value: float
    unit: str
    start: datetime
    end: datetime
    source: str
    device: str
    format: str


def check(reading: Reading, now: datetime) -> str | None:
    """Why ``reading`` cannot be imported, or None if it can: ``"category: details"``
    (the importer counts by category). ``now`` bounds the future."""
    spec = KINDS.get(reading.kind)
    if spec is None:
        return f"unknown kind: {reading.kind!r}"
    factor = spec.accepted.get(reading.unit)
    if factor is None:
        return (
            f"unit not accepted: {reading.unit!r} is not a unit of {reading.kind} (use {spec.unit})"
        )
    return _check_value(reading, spec, factor) or _check_times(reading, now)


def _check_value(reading: Reading, spec: KindSpec, factor: float) -> str | None:
    value = reading.value
    if not math.isfinite(value):
        return f"not a finite number: {reading.kind} value {value}"
    if value < 0:
        return f"negative value: {reading.kind} {value:g}"
    value *= factor
    if not spec.low <= value <= spec.high:
        return (
            f"implausible value: {reading.kind} {value:g} {spec.unit} is outside "
            f"the plausible range {spec.low:g}-{spec.high:g}"
        )
    return None


def _check_times(reading: Reading, now: datetime) -> str | None:
    start, end = reading.start, reading.end
    if start.tzinfo is None or end.tzinfo is None:
        return "no time zone: the reading's times carry no UTC offset"
    if end < start:
        return f"ends before it starts: {start.isoformat()} to {end.isoformat()}"
    if start < EPOCH:
        return f"before 1970: starts {start.isoformat()}"
    if end > now + CLOCK_SKEW:
        return f"in the future: ends {end.isoformat()}, now is {now.isoformat()}"
    if end - start > MAX_SPAN:
        return f"interval too long: covers {end - start}, more than {MAX_SPAN}"
    return None


def normalise(reading: Reading) -> Reading:
    """``reading`` in its kind's UCUM unit, times in UTC. Only for a reading :func:`check`
    accepted (its unit is one of the kind's)."""
    spec = KINDS[reading.kind]
    factor = spec.accepted[reading.unit]
    start, end = reading.start.astimezone(UTC), reading.end.astimezone(UTC)
    if reading.unit == spec.unit and start is reading.start and end is reading.end:
        return reading
    return replace(reading, value=reading.value * factor, unit=spec.unit, start=start, end=end)


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def reading_key(reading: Reading) -> bytes:
    """SHA-256 of (kind, start, end, value, unit) after normalising: the same measurement
    has the same key whatever unit, time zone or source brought it, so an upload seen
    before can be recognised. The value is written with ``repr`` (shortest round-trip)."""
    r = normalise(reading)
    text = f"{r.kind}|{_instant(r.start)}|{_instant(r.end)}|{float(r.value)!r}|{r.unit}"
    return hashlib.sha256(text.encode()).digest()


def to_observation(reading: Reading) -> dict[str, Any]:
    """The reading as a FHIR R4 Observation (JSON), its source and device as a contained
    Device referenced from ``Observation.device`` (FHIR R4 section 2.36: contained
    resources have no independent existence, which fits a device known only by name)."""
    r = normalise(reading)
    spec = KINDS[r.kind]
    device: dict[str, Any] = {
        "resourceType": "Device",
        "id": "device",
        "deviceName": [{"name": r.source or "unknown", "type": "user-friendly-name"}],
    }
    if r.device:
        device["deviceName"].append({"name": r.device, "type": "model-name"})
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "contained": [device],
        "status": "final",
        "category": [{"coding": [{"system": _CATEGORY, "code": spec.category}]}],
        "code": {
            "coding": [{"system": LOINC, "code": spec.loinc, "display": spec.display}],
            "text": spec.display,
        },
        "valueQuantity": {
            "value": _json_number(float(r.value)),
            "unit": spec.unit,
            "system": UCUM,
            "code": spec.unit,
        },
        "device": {"reference": "#device"},
    }
    if r.start == r.end:
        observation["effectiveDateTime"] = _instant(r.start)
    else:
        observation["effectivePeriod"] = {"start": _instant(r.start), "end": _instant(r.end)}
    return observation


def _json_number(value: float) -> int | float:
    """Whole values as integers: ``72`` reads better than ``72.0`` and FHIR's decimal
    keeps the precision the source gave."""
    return int(value) if value.is_integer() else value


@dataclass(frozen=True)
class Skipped:
    """A record of a type this import does not take (counted, not an error)."""

    what: str


@dataclass(frozen=True)
class Rejected:
    """A record of a wanted type that cannot be read as a reading (says why)."""

    reason: str


Item = tuple[Reading | Skipped | Rejected, int]
"""What a format reader yields: a reading, a skip or a rejection, with where it was (the
line for XML and NDJSON, the entry of a FHIR Bundle, the Open mHealth data point; from 1)."""
