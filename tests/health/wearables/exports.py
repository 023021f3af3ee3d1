"""Small wearable exports written for tests: Apple Health XML/zip, Open mHealth, FHIR."""

from __future__ import annotations

import zipfile
from pathlib import Path

DTD = """<!DOCTYPE HealthData [
<!ELEMENT HealthData (ExportDate,Me,(Record|Workout)*)>
<!ATTLIST HealthData locale CDATA #REQUIRED>
<!ELEMENT Record ((MetadataEntry)*)>
<!ATTLIST Record type CDATA #REQUIRED unit CDATA #IMPLIED value CDATA #IMPLIED
  sourceName CDATA #REQUIRED device CDATA #IMPLIED startDate CDATA #REQUIRED
  endDate CDATA #REQUIRED>
]>
"""
WATCH_DEVICE = (
    "&lt;&lt;HKDevice: 0x1&gt;, name:Apple Watch, manufacturer:Apple Inc., model:Watch, "
    "hardware:Watch6,1, software:10.1&gt;"
)


def record(
    kind: str,
    value: object,
    unit: str,
    start: str = "2024-01-05 07:31:02 +0100",
    end: str | None = None,
    source: str = "Ada's Apple Watch",
    device: str = WATCH_DEVICE,
) -> str:
    return (
        f' <Record type="HKQuantityTypeIdentifier{kind}" sourceName="{source}" '
        f'device="{device}" unit="{unit}" startDate="{start}" endDate="{end or start}" '
        f'value="{value}"/>\n'
    )


def apple_xml(*records: str, dtd: str = DTD) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n{dtd}<HealthData locale="en_GB">\n'
        f' <ExportDate value="2024-02-01 09:00:00 +0100"/>\n{"".join(records)}</HealthData>\n'
    )


def write_zip(path: Path, xml: str, member: str = "apple_health_export/export.xml") -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, xml)
        archive.writestr("apple_health_export/export_cda.xml", "<ClinicalDocument/>")
    return path
