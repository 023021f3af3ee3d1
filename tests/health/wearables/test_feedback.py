"""Personal feedback: each rule flags what it says it flags, with its numbers in the
explanation, stays quiet otherwise, says when there is too little data, and a flag's
receipt commits to exactly the finding the node recorded."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ailedger.health.wearables.feedback import (
    ENTRY_KIND,
    assess,
    bp_category,
    feedback_receipt,
    record_flags,
    verify_feedback,
)
from ailedger.health.wearables.observations import Reading, to_observation

DAY0 = datetime(2024, 3, 1, 7, 0, tzinfo=UTC)
UNITS = {
    "resting_heart_rate": "/min",
    "hrv_sdnn": "ms",
    "steps": "count",
    "sleep": "min",
    "systolic_bp": "mmHg",
    "diastolic_bp": "mmHg",
}


def _days(kind: str, values: list[float]) -> list[dict[str, Any]]:
    """One Observation a day, from DAY0 on."""
    return [
        to_observation(
            Reading(
                kind,
                v,
                UNITS[kind],
                DAY0 + timedelta(days=i),
                DAY0 + timedelta(days=i),
                "Watch",
                "",
                "test",
            )
        )
        for i, v in enumerate(values)
    ]


def _finding(observations: list[dict[str, Any]], rule: str) -> Any:
    return next(f for f in assess(observations) if f.rule == rule)


def test_a_sustained_rise_in_resting_heart_rate_is_flagged_with_its_numbers() -> None:
    found = _finding(
        _days("resting_heart_rate", [56.0] * 14 + [63.0] * 7), "resting-heart-rate-rise"
    )
    assert found.status == "flag"
    assert "63.0 /min over the last 7 days against 56.0 /min over the 14 days before (+7.0)" in (
        found.explanation
    )
    assert "not a diagnosis" in found.explanation
    assert len(found.inputs) == 21
    steady = _finding(
        _days("resting_heart_rate", [56.0] * 14 + [59.0] * 7), "resting-heart-rate-rise"
    )
    assert steady.status == "ok"


def test_drops_in_hrv_and_activity_and_short_sleep_are_flagged() -> None:
    observations = (
        _days("hrv_sdnn", [60.0] * 10 + [48.0] * 7)  # -20 %
        + _days("steps", [9000.0] * 10 + [5000.0] * 7)  # -44 %
        + _days("sleep", [400.0] * 7)  # 6.7 h
    )
    statuses = {f.rule: f.status for f in assess(observations)}
    assert statuses["hrv-drop"] == statuses["activity-drop"] == statuses["short-sleep"] == "flag"
    rested = _finding(_days("sleep", [450.0] * 7), "short-sleep")
    assert rested.status == "ok" and "7.5 h" in rested.explanation


def test_too_little_history_is_said_not_guessed() -> None:
    few = _finding(_days("resting_heart_rate", [56.0] * 3 + [70.0] * 7), "resting-heart-rate-rise")
    assert few.status == "not enough data" and "3 baseline days" in few.explanation
    none = {f.rule: f.status for f in assess([])}
    assert set(none.values()) == {"not enough data"}


@pytest.mark.parametrize(
    ("systolic", "diastolic", "category"),
    [
        (119, 79, "normal"),
        (120, 79, "elevated"),
        (129, 79, "elevated"),
        (130, 70, "stage 1 hypertension"),
        (118, 80, "stage 1 hypertension"),
        (139, 89, "stage 1 hypertension"),
        (140, 70, "stage 2 hypertension"),
        (110, 90, "stage 2 hypertension"),
        (181, 100, "hypertensive crisis"),
        (150, 121, "hypertensive crisis"),
    ],
    ids=lambda v: str(v).replace(" ", "-"),
)
def test_blood_pressure_categories_follow_acc_aha_2017(
    systolic: int, diastolic: int, category: str
) -> None:
    assert bp_category(systolic, diastolic) == category


def test_blood_pressure_is_judged_on_the_mean_of_several_days() -> None:
    observations = _days("systolic_bp", [128.0, 136.0, 134.0]) + _days(
        "diastolic_bp", [78.0, 84.0, 82.0]
    )
    found = _finding(observations, "blood-pressure")
    assert found.status == "flag"
    assert "133/81 mmHg over 3 days: stage 1 hypertension" in found.explanation
    one = _finding(_days("systolic_bp", [190.0]) + _days("diastolic_bp", [100.0]), "blood-pressure")
    assert one.status == "not enough data"


class MemoryLog:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def append(self, entry: dict[str, Any]) -> int:
        self.entries.append(entry)
        return len(self.entries) - 1

    def receipt(self, index: int) -> dict[str, Any]:
        return {"index": index, "entry": json.dumps(self.entries[index])}


def test_a_flag_is_logged_as_a_commitment_and_its_receipt_proves_exactly_it() -> None:
    findings = assess(_days("resting_heart_rate", [56.0] * 14 + [63.0] * 7))
    log = MemoryLog()
    (recorded,) = record_flags(findings, log)  # one flag: the others have no data
    (entry,) = log.entries
    assert entry["kind"] == ENTRY_KIND and entry["rule"] == "resting-heart-rate-rise"
    # No value is readable in the log: the entry is these fields, the finding only hashed.
    assert set(entry) == {"kind", "rule", "rules", "commitment", "time"}
    assert len(entry["commitment"]) == 64 and "averaged" not in json.dumps(entry)
    receipt = feedback_receipt(recorded, log, "0xnode")
    assert verify_feedback(receipt, lambda _: []) == []
    altered = json.loads(json.dumps(receipt))
    altered["finding"]["explanation"] = altered["finding"]["explanation"].replace("+7.0", "+1.0")
    assert verify_feedback(altered, lambda _: []) == [
        "the finding is not the one this node recorded (its commitment differs)"
    ]
    assert verify_feedback({"finding": 3}, lambda _: []) != []
