"""import_readings: format detection, checks, source priority, duplicates, all-or-nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ailedger.health.wearables.errors import WearableImportError
from ailedger.health.wearables.importer import detect_format, import_readings
from ailedger.health.wearables.observations import reading_key
from tests.health.wearables.exports import apple_xml, record, write_zip

NOW = datetime(2024, 6, 1, tzinfo=UTC)
WATCH, PHONE, APP = "Ada's Apple Watch", "Ada's iPhone", "Pedometer++"


def _steps(source: str, value: int, start: str, end: str) -> str:
    return record("StepCount", value, "count", start=start, end=end, source=source)


def _walk(tmp_path: Path) -> Path:
    """One walk counted by the phone and the watch; later an hour only the phone saw."""
    return write_zip(
        tmp_path / "export.zip",
        apple_xml(
            _steps(PHONE, 500, "2024-01-05 08:00:00 +0000", "2024-01-05 08:10:00 +0000"),
            _steps(WATCH, 480, "2024-01-05 08:01:00 +0000", "2024-01-05 08:11:00 +0000"),
            _steps(PHONE, 700, "2024-01-05 08:50:00 +0000", "2024-01-05 09:10:00 +0000"),
            _steps(PHONE, 300, "2024-01-05 10:00:00 +0000", "2024-01-05 10:05:00 +0000"),
            _steps(APP, 310, "2024-01-05 10:00:00 +0000", "2024-01-05 10:05:00 +0000"),
            record("HeartRate", 61, "count/min", source=PHONE),
        ),
    )


def test_the_watch_wins_the_hours_it_counted_and_the_phone_keeps_the_rest(
    tmp_path: Path,
) -> None:
    with import_readings(_walk(tmp_path), now=NOW) as result:
        kept = [(r.source, r.value, r.start.hour) for r in result]
        counts = result.report.counts()
    # 08:50-09:10 touches hour 8, which the watch won, so the phone's reading goes too.
    assert kept == [(WATCH, 480, 8), (PHONE, 300, 10), (PHONE, 61, 6)]
    assert counts == {"accepted": 3, "duplicate": 0, "overridden": 3, "skipped": 0,
                      "rejected": 0}  # fmt: skip


def test_a_stated_priority_changes_the_winner(tmp_path: Path) -> None:
    with import_readings(_walk(tmp_path), now=NOW, priority=["pedometer", "phone"]) as result:
        kept = [(r.source, r.value) for r in result if r.kind == "steps"]
    assert kept == [(PHONE, 500), (PHONE, 700), (APP, 310)]


def test_exact_duplicates_are_kept_once(tmp_path: Path) -> None:
    heart = record("HeartRate", 61, "count/min")
    path = write_zip(tmp_path / "export.zip", apple_xml(heart, heart, heart))
    with import_readings(path, now=NOW) as result:
        assert len(list(result)) == 1 == len(result)
        assert result.report.duplicate == 2


def test_the_same_file_twice_is_all_duplicates_the_second_time(tmp_path: Path) -> None:
    path = _walk(tmp_path)
    with import_readings(path, now=NOW) as first:
        keys = {reading_key(r) for r in first}
    with import_readings(path, now=NOW, known=keys) as second:
        assert list(second) == []
        assert second.report.duplicate == len(keys) == 3
    with import_readings(path, now=NOW, known=lambda key: False) as third:
        assert len(list(third)) == 3


def test_bad_readings_are_counted_by_reason_with_where(tmp_path: Path) -> None:
    path = write_zip(
        tmp_path / "export.zip",
        apple_xml(
            record("HeartRate", -60, "count/min"),
            record("HeartRate", -61, "count/min"),
            record("HeartRate", 60, "kg"),
            record("HeartRate", 60, "count/min", start="2030-01-01 00:00:00 +0000"),
            record("HeartRate", "x", "count/min"),
            record("Height", 1.7, "m"),
            record("HeartRate", 60, "count/min"),
        ),
    )
    with import_readings(path, now=NOW) as result:
        report = result.report
        assert len(list(result)) == 1
    assert dict(report.rejected) == {"negative value": 2, "unit not accepted": 1,
                                     "in the future": 1, "not a number": 1}  # fmt: skip
    assert dict(report.skipped) == {"HKQuantityTypeIdentifierHeight": 1}
    assert report.examples[0] == "line 12: negative value: heart_rate -60"
    assert len(report.examples) == 5


@pytest.mark.parametrize("container", ["xml", "zip"])
def test_a_truncated_export_gives_an_error_and_nothing_else(tmp_path: Path, container: str) -> None:
    """Thousands of good readings before the cut: still an error, never a partial result."""
    rows = [
        record("HeartRate", 60 + n % 50, "count/min", start=f"2024-01-05 07:{n % 60:02d}:00 +0000")
        for n in range(3000)
    ]
    whole = apple_xml(*rows).encode()
    if container == "zip":
        data = write_zip(tmp_path / "whole.zip", whole.decode()).read_bytes()
    else:
        data = whole
    cut = tmp_path / f"export.{container}"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(WearableImportError, match="truncated"):
        import_readings(cut, now=NOW)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("export.zip", b"", "apple-health"),
        ("Export.XML", b"", "apple-health"),
        ("obs.ndjson", b"", "fhir"),
        ("bundle.json", b'{"resourceType": "Bundle"}', "fhir"),
        ("points.json", b'[{"header": {}, "body": {}}]', "open-mhealth"),
    ],
    ids=["zip", "xml", "ndjson", "fhir-json", "omh-json"],
)
def test_the_format_is_told_by_name_and_content(
    tmp_path: Path, name: str, content: bytes, expected: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert detect_format(path) == expected


def test_an_unknown_format_is_refused_saying_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("a,b\n")
    with pytest.raises(WearableImportError, match=r"cannot tell the format of data\.csv"):
        import_readings(path)
    with pytest.raises(WearableImportError, match="unknown format 'csv'"):
        import_readings(path, format="csv")


def test_json_formats_go_through_the_same_checks(tmp_path: Path) -> None:
    path = tmp_path / "points.json"
    frame = {"date_time": "2024-03-01T07:00:00Z"}
    points = [
        {"body": {"heart_rate": {"value": bpm, "unit": "beats/min"}, "effective_time_frame": frame}}
        for bpm in (64, 640)
    ]
    path.write_text(json.dumps(points))
    with import_readings(path, now=NOW) as result:
        [reading] = list(result)
        assert (reading.value, reading.unit, reading.format) == (64, "/min", "open-mhealth")
        assert result.report.examples == [
            "data point 2: implausible value: heart_rate 640 /min is outside the plausible "
            "range 20-300"
        ]


def test_blood_pressure_inside_a_correlation_counts_once(tmp_path: Path) -> None:
    """Apple lists each blood-pressure Record at the top level and again in its Correlation."""
    pair = record("BloodPressureSystolic", 121, "mmHg") + record(
        "BloodPressureDiastolic", 79, "mmHg"
    )
    correlation = (
        ' <Correlation type="HKCorrelationTypeIdentifierBloodPressure" sourceName="Omron" '
        f'startDate="2024-01-05 07:31:02 +0100" endDate="2024-01-05 07:31:02 +0100">\n'
        f"{pair} </Correlation>\n"
    )
    path = write_zip(tmp_path / "export.zip", apple_xml(pair, correlation))
    with import_readings(path, now=NOW) as result:
        assert sorted((r.kind, r.value) for r in result) == [
            ("diastolic_bp", 79), ("systolic_bp", 121)
        ]  # fmt: skip
        assert result.report.duplicate == 2


def test_now_without_a_time_zone_is_refused(tmp_path: Path) -> None:
    with pytest.raises(WearableImportError, match="now must carry a time zone"):
        import_readings(_walk(tmp_path), now=datetime(2024, 6, 1))


def test_fhir_rejections_name_the_bundle_entry(tmp_path: Path) -> None:
    path = tmp_path / "bundle.json"
    heart = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "effectiveDateTime": "2024-03-01T07:00:00Z",
        "valueQuantity": {"value": 70, "unit": "kg"},
    }
    entries = [{"resource": {"resourceType": "Patient"}}, {"resource": heart}]
    path.write_text(json.dumps({"resourceType": "Bundle", "entry": entries}))
    with import_readings(path, now=NOW) as result:
        assert list(result) == []
        assert result.report.examples == [
            "entry 2: unit not accepted: 'kg' is not a unit of heart_rate (use /min)"
        ]
        assert result.report.counts()["skipped"] == 1
