"""FHIR R4 vital-signs Observations as readings: a Bundle, one Observation, or NDJSON.

An Observation is taken when one of its ``code.coding`` is a LOINC code of
:data:`~ailedger.health.wearables.observations.KINDS` with a ``valueQuantity``, or the
blood-pressure panel 85354-9 (FHIR R4 vital-signs profile, section 8.2.1), whose
systolic and diastolic ``component`` entries become two readings. The unit is the UCUM
``code`` when ``system`` is UCUM, else ``unit``. Times are ``effectiveDateTime``, or
``effectivePeriod`` (an open end means an instant). Other resources and codes are
skipped. NDJSON (FHIR Bulk Data) is read a line at a time, so it has no size bound.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from ailedger.health.wearables._json_input import load_json, parse_instant, parse_json
from ailedger.health.wearables.errors import WearableImportError
from ailedger.health.wearables.observations import (
    BY_LOINC,
    LOINC,
    UCUM,
    Item,
    Reading,
    Rejected,
    Skipped,
)

FORMAT = "fhir"
BP_PANEL = "85354-9"
_MAX_LINE = 1 << 20  # one Observation is a few KB; a longer line is not one


def read_fhir(path: Path | str) -> Iterator[Item]:
    """Yield the readings of a FHIR JSON or NDJSON file; positions are bundle entries
    (from 1) or NDJSON lines. Raises :class:`WearableImportError` for unreadable files."""
    path = Path(path)
    if path.name.lower().endswith(".ndjson"):
        yield from _ndjson(path)
        return
    document = load_json(path)
    if not isinstance(document, dict):
        raise WearableImportError(f"{path.name}: not a FHIR resource (a JSON object)")
    if document.get("resourceType") == "Bundle":
        entries = document.get("entry") or []
        for index, entry in enumerate(entries, start=1):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            for item in _readings(resource):
                yield item, index
    else:
        for item in _readings(document):
            yield item, 1


def _ndjson(path: Path) -> Iterator[Item]:
    try:
        with path.open("rb") as handle:
            for number, line in enumerate(iter(lambda: handle.readline(_MAX_LINE + 1), b""), 1):
                if len(line) > _MAX_LINE:
                    raise WearableImportError(f"{path.name} line {number}: longer than 1 MiB")
                if line.strip():
                    resource = parse_json(line, f"{path.name} line {number}")
                    for item in _readings(resource):
                        yield item, number
    except OSError as exc:
        raise WearableImportError(f"cannot read {path}: {exc.strerror or exc}") from None


def _readings(resource: Any) -> list[Reading | Skipped | Rejected]:
    if not isinstance(resource, dict) or resource.get("resourceType") != "Observation":
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        return [Skipped(str(kind or "entry without a resource"))]
    codes = _loinc_codes(resource.get("code"))
    try:
        start, end = _effective(resource)
    except (ValueError, TypeError) as exc:
        return [Rejected(f"unreadable date: {exc}")]
    source, device = _device_names(resource)
    if BP_PANEL in codes:
        parts = [c for c in resource.get("component") or [] if isinstance(c, dict)]
        found: list[Reading | Skipped | Rejected] = [
            r for c in parts if (r := _quantity(c, start, end, source, device))
        ]
        return found or [Rejected("no blood pressure: the panel has no systolic or diastolic")]
    reading = _quantity(resource, start, end, source, device)
    return [reading or Skipped(f"Observation {', '.join(codes) or 'without a LOINC code'}")]


def _quantity(
    element: dict[str, Any], start: datetime, end: datetime, source: str, device: str
) -> Reading | Rejected | None:
    """The reading of an Observation or a component, None when its code is not ours."""
    kind = next((BY_LOINC[c] for c in _loinc_codes(element.get("code")) if c in BY_LOINC), None)
    if kind is None:
        return None
    quantity = element.get("valueQuantity")
    value = quantity.get("value") if isinstance(quantity, dict) else None
    if not isinstance(value, int | float) or isinstance(value, bool):
        return Rejected(f"not a number: {kind} valueQuantity {quantity!r}")
    assert isinstance(quantity, dict)
    unit = quantity.get("code") if quantity.get("system") == UCUM else quantity.get("unit")
    return Reading(kind, float(value), str(unit or ""), start, end, source, device, FORMAT)


def _loinc_codes(concept: Any) -> list[str]:
    codings = concept.get("coding") if isinstance(concept, dict) else None
    return [
        str(c.get("code"))
        for c in codings or []
        if isinstance(c, dict) and c.get("system") == LOINC and c.get("code")
    ]


def _effective(resource: dict[str, Any]) -> tuple[datetime, datetime]:
    if "effectiveDateTime" in resource:
        moment = parse_instant(resource["effectiveDateTime"])
        return moment, moment
    period = resource.get("effectivePeriod")
    if not isinstance(period, dict) or "start" not in period:
        raise ValueError("no effectiveDateTime or effectivePeriod with a start")
    start = parse_instant(period["start"])
    return start, parse_instant(period["end"]) if "end" in period else start


def _device_names(resource: dict[str, Any]) -> tuple[str, str]:
    """(source, model): the referenced contained Device's names, else the reference's
    display text."""
    reference = resource.get("device")
    if not isinstance(reference, dict):
        return "", ""
    target = str(reference.get("reference", ""))
    for contained in resource.get("contained") or []:
        if isinstance(contained, dict) and target == f"#{contained.get('id')}":
            names = {
                n.get("type"): str(n.get("name", ""))
                for n in contained.get("deviceName") or []
                if isinstance(n, dict)
            }
            return names.get("user-friendly-name", ""), names.get("model-name", "")
    return str(reference.get("display", "")), ""
