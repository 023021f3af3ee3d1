"""A person's day-to-day patterns: their wearable Observations reduced to one value per
kind and UTC day (the day's mean, or its sum for steps and sleep). What feedback judges,
and what a person may share: with a clinician they grant, or privately with researchers
(only differentially private answers leave it)."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from statistics import fmean
from typing import Any

from ailedger.health.wearables.observations import KINDS

_BY_LOINC = {spec.loinc: kind for kind, spec in KINDS.items()}
_SUMMED = {"steps", "sleep"}
# The table's columns: a day, then one per kind with its UCUM unit in the name.
COLUMNS = {
    "resting_heart_rate": "resting_heart_rate_per_min",
    "heart_rate": "heart_rate_per_min",
    "hrv_sdnn": "hrv_sdnn_ms",
    "steps": "steps",
    "sleep": "sleep_min",
    "systolic_bp": "systolic_mmhg",
    "diastolic_bp": "diastolic_mmhg",
}


def daily_values(observations: Iterable[dict[str, Any]]) -> dict[str, dict[date, float]]:
    """Per kind, the value of each UTC day (mean, or sum for steps and sleep)."""
    values: dict[str, dict[date, list[float]]] = defaultdict(lambda: defaultdict(list))
    for observation in observations:
        kind = _BY_LOINC.get(observation["code"]["coding"][0]["code"])
        if kind is None:
            continue
        when = observation.get("effectiveDateTime") or observation["effectivePeriod"]["start"]
        day = date.fromisoformat(str(when)[:10])
        values[kind][day].append(float(observation["valueQuantity"]["value"]))
    return {
        kind: {d: (sum(v) if kind in _SUMMED else fmean(v)) for d, v in sorted(days.items())}
        for kind, days in values.items()
    }


def daily_table(observations: Iterable[dict[str, Any]]) -> str:
    """The patterns as CSV: one row per day with any value, one column per kind (empty
    where that day has none), values rounded to what a device resolves."""
    values = daily_values(observations)
    days = sorted({d for by_day in values.values() for d in by_day})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["day", *COLUMNS.values()])
    for day in days:
        row: list[Any] = [day.isoformat()]
        for kind in COLUMNS:
            value = values.get(kind, {}).get(day)
            row.append("" if value is None else round(value, 1))
        writer.writerow(row)
    return out.getvalue()
