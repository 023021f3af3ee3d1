"""Readings: checks with clear reasons, unit conversion, FHIR R4 Observations, keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from fhir.resources.R4B.observation import Observation

from ailedger.health.wearables.observations import (
    KINDS,
    Reading,
    check,
    normalise,
    reading_key,
    to_observation,
)

NOW = datetime(2025, 1, 1, tzinfo=UTC)
AT = datetime(2024, 6, 1, 8, 0, tzinfo=UTC)
EXAMPLE = {  # a plausible value in each kind's UCUM unit
    "heart_rate": 72.0,
    "resting_heart_rate": 55.0,
    "hrv_sdnn": 48.5,
    "steps": 1200.0,
    "sleep": 420.0,
    "systolic_bp": 121.0,
    "diastolic_bp": 79.0,
}


def _reading(kind: str, value: float, unit: str, minutes: int = 5, **times: datetime) -> Reading:
    start = times.get("start", AT)
    end = times.get("end", start + timedelta(minutes=minutes))
    return Reading(kind, value, unit, start, end, "Ada's Apple Watch", "Watch Watch6,1", "test")


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_makes_a_valid_fhir_r4_observation(kind: str) -> None:
    spec = KINDS[kind]
    observation = to_observation(_reading(kind, EXAMPLE[kind], spec.unit))
    Observation.model_validate(observation)  # raises on any invalid field
    assert observation["code"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": spec.loinc,
        "display": spec.display,
    }
    assert observation["valueQuantity"]["system"] == "http://unitsofmeasure.org"
    assert observation["valueQuantity"]["code"] == spec.unit
    assert observation["contained"][0]["deviceName"][0]["name"] == "Ada's Apple Watch"
    assert observation["device"] == {"reference": "#device"}


def test_an_instant_is_an_effective_date_time_an_interval_a_period() -> None:
    instant = to_observation(_reading("heart_rate", 60, "/min", minutes=0))
    interval = to_observation(_reading("steps", 60, "count"))
    assert instant["effectiveDateTime"] == "2024-06-01T08:00:00Z"
    assert interval["effectivePeriod"] == {
        "start": "2024-06-01T08:00:00Z",
        "end": "2024-06-01T08:05:00Z",
    }


@pytest.mark.parametrize(
    ("kind", "value", "unit", "expected"),
    [
        ("heart_rate", 61, "count/min", 61),
        ("heart_rate", 61, "beats/min", 61),
        ("hrv_sdnn", 0.05, "s", 50),
        ("steps", 30, "count", 30),
        ("sleep", 7.5, "h", 450),
        ("sleep", 3600, "s", 60),
        ("systolic_bp", 120, "mmHg", 120),
    ],
    ids=[
        "hr-count-per-min",
        "hr-beats-per-min",
        "hrv-s",
        "steps-count",
        "sleep-h",
        "sleep-s",
        "bp-mmHg",
    ],
)
def test_units_convert_to_the_kinds_ucum_unit(
    kind: str, value: float, unit: str, expected: float
) -> None:
    reading = _reading(kind, value, unit)
    assert check(reading, NOW) is None
    converted = normalise(reading)
    assert converted.unit == KINDS[kind].unit
    assert converted.value == pytest.approx(expected)


@pytest.mark.parametrize(
    ("reading", "says"),
    [
        (_reading("heart_rate", 72, "kg"), "unit not accepted: 'kg' is not a unit of heart_rate"),
        (_reading("heart_rate", -5, "/min"), "negative value: heart_rate -5"),
        (_reading("heart_rate", float("nan"), "/min"), "not a finite number"),
        (_reading("heart_rate", 400, "/min"), "implausible value: heart_rate 400 /min"),
        (_reading("sleep", 30, "h"), "implausible value: sleep 1800 min"),
        (_reading("diastolic_bp", 200, "mmHg"), "outside the plausible range 30-160"),
        (
            _reading("steps", 10, "count", start=AT, end=AT - timedelta(seconds=1)),
            "ends before it starts",
        ),
        (_reading("steps", 10, "count", start=NOW + timedelta(days=2)), "in the future"),
        (_reading("steps", 10, "count", start=datetime(1969, 12, 31, tzinfo=UTC)), "before 1970"),
        (_reading("steps", 10, "count", minutes=60 * 30), "interval too long"),
        (_reading("steps", 10, "count", start=datetime(2024, 1, 1)), "no time zone"),
        (_reading("blood_pressure", 10, "mmHg"), "unknown kind"),
    ],
    ids=[
        "wrong-unit",
        "negative",
        "nan",
        "too-high",
        "sleep-over-a-day",
        "diastolic-high",
        "end-before-start",
        "future",
        "before-1970",
        "too-long",
        "naive",
        "unknown-kind",
    ],
)
def test_bad_readings_are_refused_saying_why(reading: Reading, says: str) -> None:
    reason = check(reading, NOW)
    assert reason is not None and says in reason


def test_a_few_minutes_of_clock_skew_are_forgiven() -> None:
    assert (
        check(_reading("heart_rate", 70, "/min", minutes=0, start=NOW + timedelta(minutes=5)), NOW)
        is None
    )


def test_the_key_ignores_unit_time_zone_and_source_but_not_the_value() -> None:
    base = _reading("sleep", 420, "min")
    paris = timezone(timedelta(hours=2))
    other = Reading(
        "sleep",
        7,
        "h",
        base.start.astimezone(paris),
        base.end.astimezone(paris),
        "Ada's iPhone",
        "",
        "other",
    )
    assert reading_key(other) == reading_key(base)
    assert reading_key(_reading("sleep", 421, "min")) != reading_key(base)
    assert reading_key(_reading("steps", 420, "count")) != reading_key(base)
