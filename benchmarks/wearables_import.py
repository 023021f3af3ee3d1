"""Importing an Apple Health export.zip, next to a plain streaming parse of the same file.

The export is generated first, in a temporary directory: ``apple_health_export/export.xml``
(deflated) with Apple's DTD header, a ``Me`` element and mostly heart-rate and step-count
Records from two sources (an Apple Watch and an iPhone, whose steps overlap), plus resting
heart rate, HRV SDNN, sleep, blood pressure, a few types ailedger skips, a few exact
duplicates and ``Workout`` elements. Then, each in its own child process (so its peak RSS,
``VmHWM``, is its own):

* ailedger: ``import_readings`` (stream out of the zip, expat, checks, dedupe, spill) and
  iterating every accepted reading once;
* reference: ``xml.etree.ElementTree.iterparse`` over the same zip member, counting
  ``Record`` elements and clearing the root as it goes: the least any streaming import does.

Throughput is uncompressed XML MB (10**6 bytes) per second. Goals: >= 15 MB/s on one core,
<= 100 MB peak RSS. ``--quick`` (CI) is 20 MB of XML, the default 1024 MB; ``--size-mb N``
chooses. The last line is ``import_mb_per_s: x``.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree

MB = 1_000_000
MEMBER = "apple_health_export/export.xml"

HEADER = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE HealthData [
<!-- HealthKit Export Version: 13 -->
<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary)*)>
<!ATTLIST HealthData
  locale CDATA #REQUIRED
>
<!ELEMENT ExportDate EMPTY>
<!ATTLIST ExportDate
  value CDATA #REQUIRED
>
<!ELEMENT Me EMPTY>
<!ATTLIST Me
  HKCharacteristicTypeIdentifierDateOfBirth CDATA #REQUIRED
  HKCharacteristicTypeIdentifierBiologicalSex CDATA #REQUIRED
>
<!ELEMENT Record ((MetadataEntry|HeartRateVariabilityMetadataList)*)>
<!ATTLIST Record
  type CDATA #REQUIRED
  unit CDATA #IMPLIED
  value CDATA #IMPLIED
  sourceName CDATA #REQUIRED
  sourceVersion CDATA #IMPLIED
  device CDATA #IMPLIED
  creationDate CDATA #IMPLIED
  startDate CDATA #REQUIRED
  endDate CDATA #REQUIRED
>
<!ELEMENT MetadataEntry EMPTY>
<!ATTLIST MetadataEntry
  key CDATA #REQUIRED
  value CDATA #REQUIRED
>
]>
<HealthData locale="en_GB">
 <ExportDate value="2025-06-01 09:00:00 +0100"/>
 <Me HKCharacteristicTypeIdentifierDateOfBirth="1980-02-03" \
HKCharacteristicTypeIdentifierBiologicalSex="HKBiologicalSexFemale"/>
"""
WATCH = (
    'sourceName="Ada\'s Apple Watch" sourceVersion="10.1" device="&lt;&lt;HKDevice: '
    "0x283e2b9d0&gt;, name:Apple Watch, manufacturer:Apple Inc., model:Watch, "
    'hardware:Watch6,1, software:10.1&gt;"'
)
PHONE = (
    'sourceName="Ada\'s iPhone" sourceVersion="17.1" device="&lt;&lt;HKDevice: '
    "0x283e2c1a0&gt;, name:iPhone, manufacturer:Apple Inc., model:iPhone, "
    'hardware:iPhone14,2, software:17.1&gt;"'
)
APP = 'sourceName="Omron connect" sourceVersion="7.4"'


def _record(kind: str, who: str, unit: str, value: object, start: str, end: str) -> str:
    return (
        f' <Record type="{kind}" {who} unit="{unit}" creationDate="{end}" '
        f'startDate="{start}" endDate="{end}" value="{value}"'
    )


def _tick(moment: datetime, rng: random.Random) -> list[str]:
    """Five minutes of a life, as Apple writes it."""
    at = f"{moment:%Y-%m-%d %H:%M:%S} +0100"
    later = f"{moment + timedelta(minutes=4, seconds=30):%Y-%m-%d %H:%M:%S} +0100"
    hr = "HKQuantityTypeIdentifierHeartRate"
    out = [
        _record(hr, WATCH, "count/min", rng.randint(55, 120), at, at)
        + '>\n  <MetadataEntry key="HKMetadataKeyHeartRateMotionContext" value="0"/>\n'
        " </Record>\n",
        _record("HKQuantityTypeIdentifierStepCount", WATCH, "count", rng.randint(0, 600), at,
                later) + "/>\n",
        _record("HKQuantityTypeIdentifierStepCount", PHONE, "count", rng.randint(0, 600), at,
                later) + "/>\n",
        _record("HKQuantityTypeIdentifierActiveEnergyBurned", WATCH, "Cal",
                round(rng.uniform(0, 9), 3), at, later) + "/>\n",
    ]  # fmt: skip
    minute = moment.hour * 60 + moment.minute
    if minute % 60 == 0:
        out.append(_record("HKQuantityTypeIdentifierHeartRateVariabilitySDNN", WATCH, "ms",
                           round(rng.uniform(20, 90), 4), at, later) + "/>\n")  # fmt: skip
        out.append(_record("HKQuantityTypeIdentifierDistanceWalkingRunning", PHONE, "km",
                           round(rng.uniform(0, 1), 5), at, later) + "/>\n")  # fmt: skip
    if minute == 7 * 60:
        night = f"{moment - timedelta(hours=7):%Y-%m-%d %H:%M:%S} +0100"
        out.append(_record("HKQuantityTypeIdentifierRestingHeartRate", WATCH, "count/min",
                           rng.randint(50, 65), at, at) + "/>\n")  # fmt: skip
        out.append(f' <Record type="HKCategoryTypeIdentifierSleepAnalysis" {WATCH} '
                   f'startDate="{night}" endDate="{at}" '
                   'value="HKCategoryValueSleepAnalysisAsleepCore"/>\n')  # fmt: skip
        out.append(' <Workout workoutActivityType="HKWorkoutActivityTypeWalking" '
                   f'duration="30" {PHONE} startDate="{at}" endDate="{later}"/>\n')  # fmt: skip
        if rng.random() < 0.3:
            for kind, value in (("Systolic", rng.randint(105, 140)),
                                ("Diastolic", rng.randint(65, 90))):  # fmt: skip
                out.append(_record(f"HKQuantityTypeIdentifierBloodPressure{kind}", APP,
                                   "mmHg", value, at, at) + "/>\n")  # fmt: skip
    if rng.random() < 0.002:  # exports do carry exact repeats
        out.append(out[1])
    return out


def write_export(path: Path, size_mb: float, seed: int = 7) -> int:
    """Write an export.zip of about ``size_mb`` MB of XML; returns the XML's bytes."""
    rng = random.Random(seed)
    moment = datetime(2012, 1, 1, 0, 0)
    written = 0
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open(MEMBER, "w", force_zip64=True) as member,
    ):
        written += member.write(HEADER.encode())
        while written < size_mb * MB:
            batch = []
            for _ in range(2000):
                batch += _tick(moment, rng)
                moment += timedelta(minutes=5)
            written += member.write("".join(batch).encode())
        written += member.write(b"</HealthData>\n")
    return written


def _peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _child(side: str, path: Path) -> None:
    start = time.perf_counter()
    if side == "reference":
        with zipfile.ZipFile(path) as archive, archive.open(MEMBER) as stream:
            records, root = 0, None
            for event, element in ElementTree.iterparse(stream, events=("start", "end")):
                if root is None:
                    root = element
                elif event == "end" and element.tag == "Record":
                    records += 1
                    root.clear()
        counts = {"records": records}
    else:
        from ailedger.health.wearables.importer import import_readings

        with import_readings(path) as result:
            accepted = sum(1 for _ in result)
            counts = {**result.report.counts(), "iterated": accepted}
    elapsed = time.perf_counter() - start
    print(json.dumps({"seconds": elapsed, "peak_rss_mib": _peak_rss_mib(), "counts": counts}))


def _run_child(side: str, path: Path) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", side, str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 MB of XML, for CI")
    parser.add_argument("--size-mb", type=float, help="MB of XML (default 1024)")
    parser.add_argument("--dir", type=Path, help="where the temporary export goes")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], Path(args.child[1]))
        return
    size_mb = args.size_mb or (20 if args.quick else 1024)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "export.zip"
        start = time.perf_counter()
        xml_bytes = write_export(path, size_mb)
        print(f"export: {xml_bytes / MB:.0f} MB of XML, {path.stat().st_size / MB:.0f} MB zipped, "
              f"written in {time.perf_counter() - start:.0f} s")  # fmt: skip
        reference = _run_child("reference", path)
        ours = _run_child("ailedger", path)
    rates = {}
    for name, side in (("iterparse reference", reference), ("ailedger import", ours)):
        rates[name] = xml_bytes / MB / float(side["seconds"])  # type: ignore[arg-type]
        print(f"{name:20s} {rates[name]:7.1f} MB/s  peak RSS {side['peak_rss_mib']:.0f} MiB  "
              f"{side['counts']}")  # fmt: skip
    ratio = rates["ailedger import"] / rates["iterparse reference"]
    print(f"ratio to reference: {ratio:.2f}x")
    print(f"import_mb_per_s: {rates['ailedger import']:.1f}")


if __name__ == "__main__":
    main()
