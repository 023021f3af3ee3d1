"""FHIR import + HIPAA Safe Harbor de-identification of 10,000 synthetic patients.

Each patient is one FHIR R4 Bundle file of 16 resources (tests/health/fhir_synth.py: names,
addresses, identifiers, relatives, employer, narrative, attachments, coded phenotypes). The
project's figure is ``import_files`` (read, validate every resource with fhir.resources,
map, one transaction of the node's SQLite database) plus ``deidentify`` of every
research-consented patient plus ``write_dataset``. The reference, in the same run on the
same files, is the least any import must do: ``json.loads`` and fhir.resources validation
of each resource, nothing stored.

The last line is ``import_deid_s_per_10k: x`` (the goal is <= 60 s on 2 cores). ``--quick``
uses 1,000 patients and scales the figure to 10,000.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from fhir.resources.R4B import get_fhir_model_class

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.health.fhir_synth import synth_bundle

from ailedger.db import open_database, sqlite_url
from ailedger.health._terms import default_labels
from ailedger.health.deidentify import deidentify, k_anonymity, write_dataset
from ailedger.health.fhir_import import import_files
from ailedger.health.patients import PatientStore


def _reference(paths: list[Path]) -> float:
    start = time.perf_counter()
    for path in paths:
        bundle = json.loads(path.read_text())
        for entry in bundle["entry"]:
            resource = entry["resource"]
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 patients instead of 10,000")
    args = parser.parse_args()
    count = 1_000 if args.quick else 10_000
    labels = default_labels()  # loaded once per process, outside the timed part
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = root / "bundles"
        data.mkdir()
        rng = random.Random(42)
        paths = []
        for n in range(count):
            path = data / f"patient-{n:05d}.json"
            path.write_text(json.dumps(synth_bundle(n, rng)))
            paths.append(path)
        reference_s = _reference(paths)

        database = open_database(sqlite_url(root / "node.sqlite"))  # migrations: not timed
        start = time.perf_counter()
        store = PatientStore(database)
        report = import_files(store, [data])
        imported_s = time.perf_counter() - start
        result = deidentify(store.consented_for_research(), root / "keys", labels=labels)
        write_dataset(result.records, root / "dataset.json")
        total_s = time.perf_counter() - start
        database.dispose()
        k = k_anonymity(result.records, year_band=5)

    scale = 10_000 / count
    print(f"patients: {report.patients}, resources: {report.resources}")
    print(f"reference (json.loads + fhir.resources validation): {reference_s:.2f} s")
    print(f"ailedger import: {imported_s:.2f} s, import + de-identify: {total_s:.2f} s")
    print(f"ratio to reference: {total_s / reference_s:.2f}x")
    print(
        f"k-anonymity (5-year bands, sex, ZIP3): k={k.k}, classes={k.classes}, "
        f"below {k.threshold}: {len(k.classes_below_threshold)}"
    )
    print(f"import_deid_s_per_10k: {total_s * scale:.1f}")


if __name__ == "__main__":
    main()
