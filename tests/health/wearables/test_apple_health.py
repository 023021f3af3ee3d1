"""Apple Health exports: records read from zip or XML; hostile and broken files refused."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from fhir.resources.R4B.observation import Observation

from ailedger.health.wearables import apple_health
from ailedger.health.wearables.apple_health import read_apple_health
from ailedger.health.wearables.errors import WearableImportError
from ailedger.health.wearables.observations import Reading, Rejected, Skipped, to_observation
from tests.health.wearables.exports import apple_xml, record, write_zip

SLEEP = (
    ' <Record type="HKCategoryTypeIdentifierSleepAnalysis" sourceName="Ada\'s Apple Watch" '
    'startDate="2024-01-04 23:00:00 +0100" endDate="2024-01-05 06:30:00 +0100" '
    'value="{value}"/>\n'
)
EVERY_TYPE = (
    record("HeartRate", 72, "count/min"),
    record("RestingHeartRate", 55, "count/min"),
    record("HeartRateVariabilitySDNN", 48.25, "ms"),
    record("StepCount", 312, "count", end="2024-01-05 07:40:00 +0100", source="Ada's iPhone"),
    record("BloodPressureSystolic", 121, "mmHg", source="Omron connect", device=""),
    record("BloodPressureDiastolic", 79, "mmHg", source="Omron connect", device=""),
    SLEEP.format(value="HKCategoryValueSleepAnalysisAsleepCore"),
    SLEEP.format(value="HKCategoryValueSleepAnalysisInBed"),
    record("ActiveEnergyBurned", 3.2, "Cal"),
)


def _read(path: Path) -> list[Reading | Skipped | Rejected]:
    return [item for item, _ in read_apple_health(path)]


def _xml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "export.xml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("container", ["zip", "xml"])
def test_every_taken_type_becomes_a_reading(tmp_path: Path, container: str) -> None:
    text = apple_xml(*EVERY_TYPE)
    path = write_zip(tmp_path / "export.zip", text) if container == "zip" else _xml(tmp_path, text)
    items = _read(path)
    readings = [i for i in items if isinstance(i, Reading)]
    assert [r.kind for r in readings] == [
        "heart_rate", "resting_heart_rate", "hrv_sdnn", "steps", "systolic_bp", "diastolic_bp",
        "sleep",
    ]  # fmt: skip
    heart = readings[0]
    assert (heart.value, heart.unit, heart.source) == (72.0, "count/min", "Ada's Apple Watch")
    assert heart.device == "Watch Watch6,1"
    assert heart.start.isoformat() == "2024-01-05T06:31:02+00:00"  # +0100 taken to UTC
    assert readings[-1].value == 450  # 23:00 to 06:30 asleep
    assert [i.what for i in items if isinstance(i, Skipped)] == [
        "HKCategoryTypeIdentifierSleepAnalysis HKCategoryValueSleepAnalysisInBed",
        "HKQuantityTypeIdentifierActiveEnergyBurned",
    ]
    for reading in readings:
        Observation.model_validate(to_observation(reading))


def test_the_one_member_named_export_xml_is_found_in_any_folder(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "e.zip", apple_xml(EVERY_TYPE[0]), member="Export/export.xml")
    assert len(_read(path)) == 1


def test_records_with_unreadable_values_or_dates_are_rejected_not_fatal(tmp_path: Path) -> None:
    path = _xml(
        tmp_path,
        apple_xml(
            record("HeartRate", "fast", "count/min"),
            record("HeartRate", 70, "count/min", start="yesterday"),
            record("HeartRate", 70, "count/min", start="2024-01-05 07:31:02"),
        ),
    )
    reasons = [i.reason for i in _read(path) if isinstance(i, Rejected)]
    assert reasons[0].startswith("not a number: HKQuantityTypeIdentifierHeartRate value 'fast'")
    assert all(r.startswith("unreadable date") for r in reasons[1:]) and len(reasons) == 3


def test_progress_is_reported_up_to_the_whole_size(tmp_path: Path) -> None:
    path = _xml(tmp_path, apple_xml(*EVERY_TYPE))
    calls: list[tuple[int, int]] = []
    for _ in read_apple_health(path, progress=lambda done, total: calls.append((done, total))):
        pass
    size = path.stat().st_size
    assert calls[-1] == (size, size)


LAUGHS = """<!DOCTYPE HealthData [
<!ENTITY lol "lol">
<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
"""
XXE = '<!DOCTYPE HealthData [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
PARAMETER = '<!DOCTYPE HealthData [<!ENTITY % p SYSTEM "http://127.0.0.1/x.dtd"> %p;]>\n'
EXTERNAL_DTD = '<!DOCTYPE HealthData SYSTEM "file:///etc/passwd">\n'
USES_X = record("HeartRate", "&x;", "count/min")
HOSTILE = {
    "billion-laughs": (
        apple_xml(record("HeartRate", "&lol3;", "count/min"), dtd=LAUGHS),
        "declares the entity 'lol'",
    ),
    "external-entity": (apple_xml(USES_X, dtd=XXE), "declares the entity 'x'"),
    "parameter-entity": (apple_xml(dtd=PARAMETER), "declares the entity 'p'"),
    "external-dtd": (
        apple_xml(USES_X, dtd=EXTERNAL_DTD),
        "names an external DTD ('file:///etc/passwd')",
    ),
    "undefined-entity": (apple_xml(USES_X, dtd=""), "undefined entity"),
    "deep-nesting": (
        apple_xml(" <Record>" + "<a>" * 100 + "</a>" * 100 + "</Record>\n"),
        "nest deeper than 64 levels",
    ),
    "malformed": (
        apple_xml(" <Record type='x'>\n").replace("</HealthData>", "</Health>"),
        "not well-formed XML (mismatched tag)",
    ),
    "truncated": (apple_xml(*EVERY_TYPE)[:-40], "the file is truncated"),
    "not-apple": ("<?xml version='1.0'?><html><body/></html>", "not <HealthData>"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
@pytest.mark.parametrize("container", ["zip", "xml"])
def test_hostile_or_broken_xml_is_refused_with_where(
    tmp_path: Path, case: str, container: str
) -> None:
    text, says = HOSTILE[case]
    path = write_zip(tmp_path / "export.zip", text) if container == "zip" else _xml(tmp_path, text)
    with pytest.raises(WearableImportError, match=r"line [0-9]+, column [0-9]+") as caught:
        _read(path)
    assert says in str(caught.value)


def test_a_truncated_zip_is_refused(tmp_path: Path) -> None:
    whole = write_zip(tmp_path / "whole.zip", apple_xml(*EVERY_TYPE * 50)).read_bytes()
    cut = tmp_path / "export.zip"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(WearableImportError, match=r"not a readable zip archive.*truncated"):
        _read(cut)


def test_a_corrupted_zip_member_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("apple_health_export/export.xml", apple_xml(*EVERY_TYPE))
    data = bytearray(path.read_bytes())
    spot = data.index(b"Ada's iPhone")
    data[spot : spot + 3] = b"Bob"  # same length, so only the CRC can tell
    path.write_bytes(bytes(data))
    with pytest.raises(WearableImportError, match="truncated or corrupt"):
        _read(path)


def test_a_zip_without_one_export_xml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(WearableImportError, match="0 members named"):
        _read(path)


@pytest.mark.parametrize("token", ["attribute", "comment"])
def test_an_endless_token_is_refused_before_it_fills_memory(
    tmp_path: Path, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(apple_health, "MAX_TOKEN", 3 << 20)
    filler = "x" * (8 << 20)
    body = f' <Record type="{filler}"/>' if token == "attribute" else f"<!-- {filler} -->"
    path = _xml(tmp_path, apple_xml(body))
    with pytest.raises(WearableImportError, match="more than 3 MiB without an element ending"):
        _read(path)
