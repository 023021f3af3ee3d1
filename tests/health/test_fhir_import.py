"""FHIR R4 Bundle / bulk NDJSON / Phenopacket v2 import: mapping, errors, all-or-nothing."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from ailedger.db import open_database, sqlite_url
from ailedger.health.fhir_import import import_files, read_patients
from ailedger.health.patients import ClinicianContact, InvalidRecordError, PatientStore
from tests.health.fhir_synth import synth_bundle


def _write_bundles(directory: Path, count: int, start: int = 0) -> list[Path]:
    rng = random.Random(7)
    paths = []
    for n in range(start, start + count):
        path = directory / f"bundle-{n}.json"
        path.write_text(json.dumps(synth_bundle(n, rng)))
        paths.append(path)
    return paths


def test_bundle_mapping(tmp_path: Path) -> None:
    progress: list[tuple[int, int]] = []
    (patient,) = read_patients(
        _write_bundles(tmp_path, 1), progress=lambda d, t: progress.append((d, t))
    )
    assert patient.local_id == "pat-0"
    assert patient.sex in ("male", "female")
    assert patient.birth_date is not None and len(patient.birth_date) == 10
    assert patient.postal_code is not None and len(patient.postal_code) == 5
    assert len(patient.observed) == 3 and len(patient.excluded) == 1
    assert patient.genes == ("BRCA1",)
    assert patient.diagnoses == ("OMIM:616439",)
    assert patient.matchmaking and patient.research
    assert patient.contact == ClinicianContact(
        "Greg House", "General Hospital", "house@hospital.example.org"
    )
    kinds = {r["resourceType"] for r in patient.resources}
    assert {"Patient", "RelatedPerson", "Encounter", "DocumentReference", "Device"} <= kinds
    assert progress[-1] == (16, 16)


def test_bulk_ndjson_and_store(tmp_path: Path) -> None:
    bundle = synth_bundle(5, random.Random(1))
    by_type: dict[str, list[dict[str, Any]]] = {}
    for entry in bundle["entry"]:
        res = entry["resource"]
        by_type.setdefault(res["resourceType"], []).append(res)
    for kind, items in by_type.items():
        (tmp_path / f"{kind}.ndjson").write_text("\n".join(json.dumps(r) for r in items) + "\n")
    store = PatientStore(open_database(sqlite_url(tmp_path / "node.sqlite")))
    report = import_files(store, [tmp_path])
    assert report.patients == 1 and report.files == len(by_type)
    (patient,) = store.consented_for_matchmaking()
    assert patient.diagnoses == ("OMIM:616439",) and patient.genes == ("BRCA1",)


def test_invalid_resource_names_file_resource_and_field(tmp_path: Path) -> None:
    bundle = synth_bundle(1, random.Random(1))
    bundle["entry"][6]["resource"]["valueBoolean"] = "perhaps"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bundle))
    with pytest.raises(InvalidRecordError) as info:
        read_patients([path])
    err = info.value
    assert err.file == str(path)
    assert err.record == "entry[6] Observation/obs-1-0"
    assert err.field == "valueBoolean"
    assert "bad.json: entry[6] Observation/obs-1-0: field valueBoolean" in str(err)


def test_invalid_ndjson_line_names_line(tmp_path: Path) -> None:
    path = tmp_path / "Patient.ndjson"
    good = {"resourceType": "Patient", "id": "a"}
    bad = {"resourceType": "Patient", "id": "b", "name": [{"family": 5}]}
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(InvalidRecordError, match=r"line 2 Patient/b: field name\.0\.family"):
        read_patients([path])
    path.write_text("{not json\n")
    with pytest.raises(InvalidRecordError, match="line 1"):
        read_patients([path])
    path.write_text(json.dumps({"resourceType": "Nonsense", "id": "z"}) + "\n")
    with pytest.raises(InvalidRecordError, match="resourceType"):
        read_patients([path])


def test_import_is_all_or_nothing(tmp_path: Path) -> None:
    store = PatientStore(open_database(sqlite_url(tmp_path / "node.sqlite")))
    import_files(store, _write_bundles(tmp_path, 2))
    before = store.ids()
    paths = _write_bundles(tmp_path, 3, start=10)
    last = json.loads(paths[-1].read_text())
    last["entry"][-1]["resource"]["status"] = 42  # the very last resource is bad
    paths[-1].write_text(json.dumps(last))
    with pytest.raises(InvalidRecordError, match=r"bundle-12\.json"):
        import_files(store, paths)
    assert store.ids() == before == ["pat-0", "pat-1"]


def test_dangling_patient_reference_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "Observation.ndjson"
    obs = {
        "resourceType": "Observation",
        "id": "o",
        "status": "final",
        "code": {"text": "x"},
        "subject": {"reference": "Patient/ghost"},
    }
    path.write_text(json.dumps(obs) + "\n")
    with pytest.raises(InvalidRecordError, match="Patient/ghost"):
        read_patients([path])


PHENOPACKET: dict[str, Any] = {
    "id": "pp-1",
    "subject": {"id": "proband-7", "dateOfBirth": "2001-04-05T00:00:00Z", "sex": "MALE"},
    "phenotypicFeatures": [
        {"type": {"id": "HP:0001250", "label": "Seizure"}},
        {"type": {"id": "HP:0000252", "label": "Microcephaly"}, "excluded": True},
    ],
    "interpretations": [
        {
            "id": "i1",
            "progressStatus": "SOLVED",
            "diagnosis": {
                "disease": {"id": "OMIM:616439", "label": "x"},
                "genomicInterpretations": [
                    {
                        "subjectOrBiosampleId": "proband-7",
                        "interpretationStatus": "CAUSATIVE",
                        "variantInterpretation": {
                            "variationDescriptor": {
                                "id": "v",
                                "geneContext": {"valueId": "HGNC:3603", "symbol": "FBN1"},
                            }
                        },
                    },
                    {
                        "subjectOrBiosampleId": "proband-7",
                        "interpretationStatus": "CANDIDATE",
                        "gene": {"valueId": "HGNC:1100", "symbol": "BRCA1"},
                    },
                ],
            },
        }
    ],
    "diseases": [{"term": {"id": "ORPHA:558", "label": "Marfan"}}],
    "metaData": {
        "created": "2024-01-01T00:00:00Z",
        "createdBy": "x",
        "phenopacketSchemaVersion": "2.0",
        "resources": [],
    },
}


def test_phenopacket_import(tmp_path: Path) -> None:
    path = tmp_path / "pp.json"
    path.write_text(json.dumps(PHENOPACKET))
    store = PatientStore(open_database(sqlite_url(tmp_path / "node.sqlite")))
    import_files(store, [path], phenopacket_consent=(True, False))
    p = store.get("pp-1/proband-7")
    assert (p.sex, p.birth_date, p.source) == ("male", "2001-04-05", "phenopacket")
    assert p.observed == ("HP:0001250",) and p.excluded == ("HP:0000252",)
    assert p.diagnoses == ("ORPHA:558", "OMIM:616439")
    assert p.genes == ("FBN1", "BRCA1")
    assert p.matchmaking and not p.research


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.pop("subject"), "subject"),
        (lambda d: d.pop("metaData"), "metaData"),
        (
            lambda d: d["phenotypicFeatures"][1]["type"].update(id="HP:12"),
            "phenotypicFeatures[1].type.id",
        ),
        (
            lambda d: d["phenotypicFeatures"][0].update(excluded="no"),
            "phenotypicFeatures[0].excluded",
        ),
        (lambda d: d["diseases"][0]["term"].update(id="MONDO:1"), "diseases[0].term.id"),
        (lambda d: d["subject"].update(sex="M"), "subject.sex"),
        (lambda d: d["subject"].update(dateOfBirth="5 May 2001"), "subject.dateOfBirth"),
    ],
)
def test_phenopacket_errors_name_the_field(tmp_path: Path, mutate: Any, field: str) -> None:
    doc = json.loads(json.dumps(PHENOPACKET))
    mutate(doc)
    path = tmp_path / "pp.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(InvalidRecordError) as info:
        read_patients([path])
    assert info.value.field == field and info.value.file == str(path)


SYNTHEA = Path(__file__).resolve().parents[3] / "shared" / "data" / "synthea-bulk-10"


@pytest.mark.parametrize("compressed", [False, True], ids=["ndjson", "ndjson-gz"])
def test_a_real_bulk_export_directory_imports_with_its_log_and_compressed(
    tmp_path: Path, compressed: bool
) -> None:
    """A FHIR Bulk Data export as servers write it: one NDJSON file per resource type
    (gzip-compressed or not) beside the export's own log.ndjson, which holds no resource."""
    import gzip
    import shutil

    if not SYNTHEA.is_dir():
        pytest.skip("no Synthea bulk export in ../shared/data")
    export = tmp_path / "export"
    export.mkdir()
    for source in SYNTHEA.glob("*.ndjson"):
        if compressed and source.name != "log.ndjson":
            with source.open("rb") as raw, gzip.open(export / f"{source.name}.gz", "wb") as out:
                shutil.copyfileobj(raw, out)
        else:
            shutil.copy(source, export / source.name)
    store = PatientStore(open_database(sqlite_url(tmp_path / "node.sqlite")))
    report = import_files(store, [export])
    patients = sum(1 for line in (SYNTHEA / "Patient.000.ndjson").read_text().splitlines() if line)
    assert report.patients == patients == store.count()  # 13 Patient records
    assert report.files == len(list(SYNTHEA.glob("*.ndjson"))) - 1  # the log is no input


def test_a_truncated_gzip_is_an_error_not_zero_patients(tmp_path: Path) -> None:
    import gzip

    whole = gzip.compress(b'{"resourceType": "Patient", "id": "p1"}\n' * 50)
    (tmp_path / "Patient.000.ndjson.gz").write_bytes(whole[: len(whole) // 2])
    store = PatientStore(open_database(sqlite_url(tmp_path / "node.sqlite")))
    with pytest.raises(InvalidRecordError, match="cannot read the file"):
        import_files(store, [tmp_path])


# -- every resource counted, non-resource files passed over with a note --------------------


def _synthea_copy(tmp_path: Path, name: str = "export") -> Path:
    import shutil

    if not SYNTHEA.is_dir():
        pytest.skip("no Synthea bulk export in ../shared/data")
    export = tmp_path / name
    shutil.copytree(SYNTHEA, export)
    return export


def test_every_resource_type_of_a_real_export_is_counted(tmp_path: Path) -> None:
    export = _synthea_copy(tmp_path)
    lines: dict[str, int] = {}
    for path in SYNTHEA.glob("*.000.ndjson"):
        lines[path.name.split(".")[0]] = sum(1 for x in path.read_text().splitlines() if x)
    store = PatientStore(open_database(sqlite_url(tmp_path / "node.sqlite")))
    report = import_files(store, [export])
    assert {k: v.read for k, v in report.types.items()} == lines  # nothing read uncounted
    for kind in ("Location", "Organization", "Practitioner", "PractitionerRole"):
        assert report.types[kind].kept == 0 and report.types[kind].dropped == lines[kind] > 0
    assert report.types["Condition"].kept == lines["Condition"]
    assert report.resources == sum(c.kept for c in report.types.values())
    skipped = {Path(f).name: why for f, why in report.skipped}
    assert skipped == {
        "log.ndjson": "the bulk export's log, not resources",
        "LICENSE": "not .json, .ndjson or .ndjson.gz",
        "README.md": "not .json, .ndjson or .ndjson.gz",
    }
    assert {p.origin for p in store} == {"https://example.com/fhir"}  # from the log's kick-off
    data = report.to_dict()
    assert data["types"]["Location"] == {"read": lines["Location"], "kept": 0, "dropped": 44}
    assert json.loads(json.dumps(data)) == data


def test_a_bulk_manifest_is_passed_over_and_names_the_server(tmp_path: Path) -> None:
    bundle = synth_bundle(3, random.Random(3))
    kinds: dict[str, list[dict[str, Any]]] = {}
    for entry in bundle["entry"]:
        kinds.setdefault(entry["resource"]["resourceType"], []).append(entry["resource"])
    for kind, items in kinds.items():
        (tmp_path / f"{kind}.ndjson").write_text("".join(json.dumps(r) + "\n" for r in items))
    manifest = {
        "transactionTime": "2026-01-01T00:00:00Z",
        "request": "https://ehr.example.org/fhir/$export?_type=Patient",
        "requiresAccessToken": True,
        "output": [{"type": k, "url": f"https://files/{k}.ndjson"} for k in kinds],
        "error": [],
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    store = PatientStore(open_database(sqlite_url(tmp_path / "node.sqlite")))
    report = import_files(store, [tmp_path])
    assert report.patients == 1
    assert (str(tmp_path / "manifest.json"), "a bulk export's manifest, not resources") in (
        report.skipped
    )
    assert store.get("pat-3").origin == "https://ehr.example.org/fhir"


def test_a_json_file_that_is_neither_fhir_nor_a_phenopacket_is_named(tmp_path: Path) -> None:
    path = tmp_path / "notes.json"
    path.write_text(json.dumps({"title": "clinic notes", "rows": [1, 2]}))
    with pytest.raises(InvalidRecordError, match=r"notes\.json: document: neither a FHIR"):
        read_patients([path])


# -- identity: two sources never overwrite each other --------------------------------------


def _packet(pp_id: str, subject: str, term: str) -> dict[str, Any]:
    doc = json.loads(json.dumps(PHENOPACKET))
    doc["id"] = pp_id
    doc["subject"]["id"] = subject
    doc["phenotypicFeatures"] = [{"type": {"id": term, "label": "x"}}]
    doc.pop("interpretations")
    return doc


def test_phenopackets_sharing_a_subject_id_are_all_kept_and_reimport_updates(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "papers"
    folder.mkdir()
    terms = ["HP:0001250", "HP:0001263", "HP:0000252", "HP:0004322"]
    for n in range(40):  # forty papers, each calling its case "Patient 1"
        packet = _packet(f"PMID_{1000 + n}_Patient_1", "Patient 1", terms[n % 4])
        (folder / f"case-{n}.json").write_text(json.dumps(packet))
    store = PatientStore(open_database(sqlite_url(tmp_path / "node.sqlite")))
    first = import_files(store, [folder])
    assert (first.patients, first.new, store.count()) == (40, 40, 40)
    assert store.get("PMID_1003_Patient_1/Patient 1").observed == ("HP:0004322",)
    again = import_files(store, [folder])
    assert (again.new, again.updated, store.count()) == (0, 40, 40)
    assert first.types["Phenopacket"].read == first.types["Phenopacket"].kept == 40
    assert store.resolve("PMID_1003_Patient_1") == "PMID_1003_Patient_1/Patient 1"


def test_one_import_with_two_phenopackets_under_one_key_is_refused(tmp_path: Path) -> None:
    for name in ("a.json", "b.json"):
        (tmp_path / name).write_text(json.dumps(_packet("pp-same", "P1", "HP:0001250")))
    store = PatientStore(open_database(sqlite_url(tmp_path / "node.sqlite")))
    with pytest.raises(InvalidRecordError, match=r"b\.json.*a\.json holds a phenopacket"):
        import_files(store, [tmp_path])
    assert store.count() == 0


def _export(directory: Path, server: str | None, patient: dict[str, Any]) -> Path:
    directory.mkdir()
    (directory / "Patient.000.ndjson").write_text(json.dumps(patient) + "\n")
    if server is not None:
        log = {
            "exportId": "e1",
            "eventId": "kickoff",
            "eventDetail": {"exportUrl": f"{server}/Patient/$export"},
        }
        (directory / "log.ndjson").write_text(json.dumps(log) + "\n")
    return directory


def _fhir_patient(birth: str, mrn: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": "1",
        "birthDate": birth,
        "identifier": [{"system": "urn:mrn", "value": mrn}],
    }


def test_two_servers_with_the_same_patient_id_keep_both(tmp_path: Path) -> None:
    a = _export(tmp_path / "a", "https://a.example.org/fhir", _fhir_patient("1970-01-01", "A1"))
    b = _export(tmp_path / "b", "https://b.example.org/fhir", _fhir_patient("1999-09-09", "B7"))
    store = PatientStore(open_database(sqlite_url(tmp_path / "node.sqlite")))
    import_files(store, [a])
    second = import_files(store, [b])
    assert second.rekeyed == ("https://b.example.org/fhir/Patient/1",)
    assert store.ids() == ["1", "https://b.example.org/fhir/Patient/1"]
    assert store.get("1").birth_date == "1970-01-01"
    for directory in (a, b):  # each export again: updates, never a third row
        assert import_files(store, [directory]).updated == 1
    assert store.count() == 2
    assert store.get("https://b.example.org/fhir/Patient/1").birth_date == "1999-09-09"
    corrected = _export(  # the first server corrects a birth date: still its patient 1
        tmp_path / "a2", "https://a.example.org/fhir", _fhir_patient("1970-01-02", "A1")
    )
    assert import_files(store, [corrected]).updated == 1
    assert store.get("1").birth_date == "1970-01-02" and store.count() == 2


def test_a_different_patient_under_a_known_id_without_origin_is_refused(tmp_path: Path) -> None:
    a = _export(tmp_path / "a", None, _fhir_patient("1970-01-01", "A1"))
    b = _export(tmp_path / "b", None, _fhir_patient("1999-09-09", "B7"))
    same = _export(tmp_path / "same", None, _fhir_patient("1970-01-01", "A1"))
    store = PatientStore(open_database(sqlite_url(tmp_path / "node.sqlite")))
    import_files(store, [a])
    with pytest.raises(InvalidRecordError, match=r"b/Patient\.000\.ndjson.*different patient"):
        import_files(store, [b])
    assert store.get("1").birth_date == "1970-01-01"
    assert import_files(store, [same]).updated == 1  # the same patient, exported again


def test_consent_recorded_here_survives_a_reimport(tmp_path: Path) -> None:
    path = tmp_path / "pp.json"
    path.write_text(json.dumps(PHENOPACKET))
    store = PatientStore(open_database(sqlite_url(tmp_path / "node.sqlite")))
    import_files(store, [path])
    store.record_consent(
        "pp-1/proband-7", ["matchmaking"], granted=True, recorded_by="Dr A", basis="form 12"
    )
    import_files(store, [path])  # the phenopacket carries no consent
    patient = store.get("pp-1/proband-7")
    assert patient.matchmaking and not patient.research
    assert [p.local_id for p in store.consented_for_matchmaking()] == ["pp-1/proband-7"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("Patient.ndjson", b"[1, 2]\n", r"line 1: a line must be one FHIR resource"),
        ("Patient.ndjson.gz", b"plain text, not gzip", r"file: cannot read the file"),
        ("case.json", b'"a string"', r"the document must be a JSON object"),
        ("case.json", b'{"id": "pp", "subject": {"id": "s"}}', r"field metaData"),
        ("Bundle.json", b'{"resourceType": "Bundle", "type": "collection", "entry": 5}', "list"),
    ],
    ids=["ndjson-array", "not-gzip", "json-string", "phenopacket-no-metadata", "bad-bundle"],
)
def test_bad_input_is_an_error_naming_the_file(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    store = PatientStore(open_database(sqlite_url(tmp_path / "node.sqlite")))
    with pytest.raises(InvalidRecordError, match=message) as info:
        import_files(store, [tmp_path])
    assert info.value.file == str(path) and str(path) in str(info.value)
    assert store.count() == 0
