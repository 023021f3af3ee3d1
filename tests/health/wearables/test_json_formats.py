"""Open mHealth and FHIR R4 files: readings out, other measures skipped, bad files refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.observation import Observation

from ailedger.health.wearables import _json_input
from ailedger.health.wearables.errors import WearableImportError
from ailedger.health.wearables.fhir_bundle import read_fhir
from ailedger.health.wearables.observations import (
    Reading,
    Rejected,
    Skipped,
    to_observation,
)
from ailedger.health.wearables.open_mhealth import read_open_mhealth


def _point(body: dict[str, Any], source: str = "Fitbit", schema: str = "heart-rate") -> Any:
    return {
        "header": {
            "id": "1",
            "schema_id": {"namespace": "omh", "name": schema, "version": "2.0"},
            "acquisition_provenance": {"source_name": source},
        },
        "body": body,
    }


AT = {"date_time": "2024-03-01T07:00:00+01:00"}
POINTS = [
    _point({"heart_rate": {"value": 64, "unit": "beats/min"}, "effective_time_frame": AT}),
    _point({"step_count": {"value": 900, "unit": "steps"}, "effective_time_frame": {
        "time_interval": {"start_date_time": "2024-03-01T07:00:00Z",
                          "end_date_time": "2024-03-01T08:00:00Z"}}}),
    _point({"step_count": 40, "effective_time_frame": {"time_interval": {
        "start_date_time": "2024-03-01T09:00:00Z", "duration": {"value": 15, "unit": "min"}}}}),
    _point({"systolic_blood_pressure": {"value": 118, "unit": "mmHg"},
            "diastolic_blood_pressure": {"value": 76, "unit": "mmHg"},
            "effective_time_frame": AT}, source="Omron"),
    _point({"sleep_duration": {"value": 7.5, "unit": "h"}, "effective_time_frame": {
        "time_interval": {"end_date_time": "2024-03-01T06:30:00Z",
                          "duration": {"value": 7.5, "unit": "h"}}}}),
    _point({"body_weight": {"value": 60, "unit": "kg"}, "effective_time_frame": AT},
           schema="body-weight"),
    _point({"heart_rate": {"value": 64, "unit": "beats/min"}}),
]  # fmt: skip


def _items(reader: Any, path: Path) -> list[Reading | Skipped | Rejected]:
    return [item for item, _ in reader(path)]


@pytest.mark.parametrize("shape", ["list", "data-object", "single"])
def test_open_mhealth_points_become_readings(tmp_path: Path, shape: str) -> None:
    document = {"list": POINTS, "data-object": {"data": POINTS}, "single": POINTS[0]}[shape]
    path = tmp_path / "omh.json"
    path.write_text(json.dumps(document))
    items = _items(read_open_mhealth, path)
    if shape == "single":
        assert isinstance(items[0], Reading) and items[0].value == 64 and len(items) == 1
        return
    readings = [i for i in items if isinstance(i, Reading)]
    assert [(r.kind, r.value, r.unit) for r in readings] == [
        ("heart_rate", 64, "beats/min"), ("steps", 900, "steps"), ("steps", 40, "steps"),
        ("systolic_bp", 118, "mmHg"), ("diastolic_bp", 76, "mmHg"), ("sleep", 7.5, "h"),
    ]  # fmt: skip
    assert readings[0].source == "Fitbit" and readings[3].source == "Omron"
    assert readings[2].end.isoformat() == "2024-03-01T09:15:00+00:00"
    assert readings[5].start.isoformat() == "2024-02-29T23:00:00+00:00"
    assert items[6] == Skipped("omh:body-weight")
    assert isinstance(items[7], Rejected) and "no effective_time_frame" in items[7].reason
    for reading in readings:
        Observation.model_validate(to_observation(reading))


def _observation(code: str, value: float, unit: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "effectiveDateTime": "2024-03-01T07:00:00Z",
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org",
                          "code": unit},
        **extra,
    }  # fmt: skip


def _component(code: str, value: float) -> dict[str, Any]:
    whole = _observation(code, value, "mm[Hg]")
    return {"code": whole["code"], "valueQuantity": whole["valueQuantity"]}


BP_PANEL = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
    "effectivePeriod": {"start": "2024-03-01T07:00:00Z"},
    "component": [
        _component("8480-6", 120),
        _component("8462-4", 80),
    ],
}  # fmt: skip
RESOURCES = [
    _observation("8867-4", 70, "/min", device={"display": "Polar H10"}),
    BP_PANEL,
    _observation("29463-7", 60, "kg"),
    {"resourceType": "Patient", "id": "p"},
]


@pytest.mark.parametrize("shape", ["bundle", "ndjson"])
def test_fhir_vital_signs_become_readings(tmp_path: Path, shape: str) -> None:
    if shape == "bundle":
        path = tmp_path / "bundle.json"
        entries = [{"resource": r} for r in RESOURCES]
        path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection",
                                    "entry": entries}))  # fmt: skip
    else:
        path = tmp_path / "obs.ndjson"
        path.write_text("\n".join(json.dumps(r) for r in RESOURCES) + "\n\n")
    items = list(read_fhir(path))
    readings = [(i, where) for i, where in items if isinstance(i, Reading)]
    assert [(r.kind, r.value, where) for r, where in readings] == [
        ("heart_rate", 70, 1), ("systolic_bp", 120, 2), ("diastolic_bp", 80, 2),
    ]  # fmt: skip
    assert readings[0][0].source == "Polar H10"
    assert [i for i, _ in items if isinstance(i, Skipped)] == [
        Skipped("Observation 29463-7"), Skipped("Patient")
    ]  # fmt: skip


def test_our_own_observation_reads_back_the_same(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    start = _json_input.parse_instant("2024-03-01T07:00:00Z")
    end = _json_input.parse_instant("2024-03-01T07:05:00Z")
    original = Reading("steps", 300, "count", start, end, "Watch", "Watch6,1", "x")
    path.write_text(json.dumps(to_observation(original)))
    [(reading, _)] = list(read_fhir(path))
    assert isinstance(reading, Reading)
    assert (reading.value, reading.unit, reading.start, reading.end) == (
        300, "{steps}", original.start, original.end
    )  # fmt: skip
    assert (reading.source, reading.device) == ("Watch", "Watch6,1")


@pytest.mark.parametrize(
    ("name", "text", "says"),
    [
        ("a.json", "{not json", "not JSON"),
        ("a.json", "[" * 5000 + "]" * 5000, "nested 5000 levels"),
        ("a.json", '"just a string"', "not Open mHealth"),
        ("a.ndjson", '{"resourceType": "Observation"}\n{broken\n', "a.ndjson line 2: not JSON"),
    ],
    ids=["not-json", "deep-nesting", "not-a-point", "broken-ndjson-line"],
)
def test_unreadable_json_is_refused(tmp_path: Path, name: str, text: str, says: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    reader = read_fhir if name.endswith(".ndjson") else read_open_mhealth
    with pytest.raises(WearableImportError) as caught:
        list(reader(path))
    assert says in str(caught.value)


def test_a_json_file_over_the_bound_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_text(json.dumps(POINTS))
    with pytest.raises(WearableImportError, match="at most 100 bytes are accepted"):
        _json_input.load_json(path, limit=100)
