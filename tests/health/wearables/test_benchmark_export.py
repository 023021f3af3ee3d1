"""The benchmark's generated export is one ailedger reads, with every kind and a skip."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from ailedger.health.wearables.importer import import_readings
from ailedger.health.wearables.observations import KINDS

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "wearables_import.py"


def _benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("wearables_import_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_generated_export_parses_with_every_kind(tmp_path: Path) -> None:
    path = tmp_path / "export.zip"
    xml_bytes = _benchmark().write_export(path, size_mb=0.5)
    assert xml_bytes >= 500_000
    with import_readings(path) as result:
        kinds = {reading.kind for reading in result}
        report = result.report
    assert kinds == set(KINDS)
    assert report.overridden > 0  # the phone's steps under the watch's
    assert report.rejected == {}
    assert "HKQuantityTypeIdentifierActiveEnergyBurned" in report.skipped
