"""Open mHealth data points (IEEE 1752.1-2021) as readings.

Taken: a single data point, a list of them, or an object whose ``data`` or ``body`` is
such a list. The body is recognised by its measure: ``heart_rate``, ``step_count``,
``systolic_blood_pressure`` / ``diastolic_blood_pressure`` (one data point, two readings)
and ``sleep_duration``; each a ``{value, unit}`` unit-value (``step_count`` may also be a
bare number, as in schema version 1). Times come from ``effective_time_frame``: a
``date_time``, or a ``time_interval`` of start and end, or of one of them and a
``duration``. The source is ``header.acquisition_provenance.source_name``. Heart-rate
variability is not taken: IEEE 1752.1 defines no SDNN schema (omh's RR-interval data is a
different measure), so such points are counted as skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ailedger.health.wearables._json_input import load_json, parse_instant
from ailedger.health.wearables.errors import WearableImportError
from ailedger.health.wearables.observations import Item, Reading, Rejected, Skipped

FORMAT = "open-mhealth"
_MEASURES = {
    "heart_rate": "heart_rate",
    "step_count": "steps",
    "systolic_blood_pressure": "systolic_bp",
    "diastolic_blood_pressure": "diastolic_bp",
    "sleep_duration": "sleep",
}
_DURATION_UNITS = {"ms": 0.001, "sec": 1, "s": 1, "min": 60, "h": 3600, "d": 86400}


def read_open_mhealth(path: Path | str) -> Iterator[Item]:
    """Yield the readings of an Open mHealth JSON file; positions count data points
    from 1. Raises :class:`WearableImportError` for a file that is not such JSON."""
    for index, point in enumerate(_points(load_json(Path(path))), start=1):
        for item in _readings(point):
            yield item, index


def _points(document: Any) -> list[Any]:
    if isinstance(document, dict):
        for key in ("data", "body"):
            if isinstance(document.get(key), list):
                return list(document[key])
        return [document]
    if isinstance(document, list):
        return document
    raise WearableImportError(
        "not Open mHealth: expected a data point, a list of them, or an object with a 'data' list"
    )


def _readings(point: Any) -> list[Reading | Skipped | Rejected]:
    body = point.get("body") if isinstance(point, dict) else None
    if not isinstance(body, dict):
        return [Rejected("not a data point: no 'body' object")]
    measures = [key for key in _MEASURES if key in body]
    if not measures:
        return [Skipped(_schema_name(point) or "data point of another measure")]
    try:
        start, end = _time_frame(body.get("effective_time_frame"))
    except (ValueError, TypeError, OverflowError) as exc:
        return [Rejected(f"unreadable time frame: {exc}")]
    source = _source(point)
    return [_reading(key, body[key], start, end, source) for key in measures]


def _reading(
    key: str, measure: Any, start: datetime, end: datetime, source: str
) -> Reading | Rejected:
    if isinstance(measure, int | float) and not isinstance(measure, bool):
        value, unit = float(measure), "steps" if key == "step_count" else ""
    elif isinstance(measure, dict) and isinstance(measure.get("value"), int | float):
        value, unit = float(measure["value"]), str(measure.get("unit", ""))
    else:
        return Rejected(f"not a number: {key} is {measure!r}, not a unit-value")
    return Reading(_MEASURES[key], value, unit, start, end, source, "", FORMAT)


def _time_frame(frame: Any) -> tuple[datetime, datetime]:
    if not isinstance(frame, dict):
        raise ValueError("no effective_time_frame object")
    if "date_time" in frame:
        moment = parse_instant(frame["date_time"])
        return moment, moment
    interval = frame.get("time_interval")
    if not isinstance(interval, dict):
        raise ValueError("effective_time_frame has neither date_time nor time_interval")
    start, end = interval.get("start_date_time"), interval.get("end_date_time")
    if start is not None and end is not None:
        return parse_instant(start), parse_instant(end)
    length = _duration(interval.get("duration"))
    if start is not None:
        return parse_instant(start), parse_instant(start) + length
    if end is not None:
        return parse_instant(end) - length, parse_instant(end)
    raise ValueError("time_interval has no start_date_time or end_date_time")


def _duration(duration: Any) -> timedelta:
    if not isinstance(duration, dict) or duration.get("unit") not in _DURATION_UNITS:
        raise ValueError(f"duration {duration!r} is not a value with a unit of {_DURATION_UNITS}")
    value = duration.get("value")
    if not isinstance(value, int | float):
        raise ValueError(f"duration value {value!r} is not a number")
    return timedelta(seconds=value * _DURATION_UNITS[duration["unit"]])


def _source(point: dict[str, Any]) -> str:
    header = point.get("header")
    provenance = header.get("acquisition_provenance") if isinstance(header, dict) else None
    name = provenance.get("source_name") if isinstance(provenance, dict) else None
    return name if isinstance(name, str) else ""


def _schema_name(point: dict[str, Any]) -> str | None:
    header = point.get("header")
    schema = header.get("schema_id") if isinstance(header, dict) else None
    name = schema.get("name") if isinstance(schema, dict) else None
    return f"omh:{name}" if isinstance(name, str) else None
