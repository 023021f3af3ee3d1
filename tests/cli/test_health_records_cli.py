"""``ailedger health import``/``consent``/``deidentify`` as a hospital types them: imported
phenopackets (which carry no consent) are kept case by case, consented at the hospital with
who, when and why (store and audit log), then matched and de-identified; a withdrawal
counts at the next export. Runs on the shared embedded chain of ``test_patient_cli``."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from tests.cli.test_cli import run
from tests.cli.test_patient_cli import Homes, homes  # noqa: F401 (fixture)

from ailedger.keys.home import NodeHome
from ailedger.sharing.owner import OwnerNode


def _packet(pp_id: str, subject: str, terms: list[str]) -> dict[str, Any]:
    return {
        "id": pp_id,
        "subject": {"id": subject, "sex": "FEMALE", "dateOfBirth": "2001-04-05T00:00:00Z"},
        "phenotypicFeatures": [{"type": {"id": t, "label": "x"}} for t in terms],
        "diseases": [{"term": {"id": "OMIM:616439", "label": "x"}}],
        "metaData": {"created": "2024-01-01T00:00:00Z", "phenopacketSchemaVersion": "2.0"},
    }


def test_imported_phenopackets_are_consented_here_then_matched_and_exported(
    homes: Homes,  # noqa: F811
    tmp_path: Path,
) -> None:
    folder = tmp_path / "papers"
    folder.mkdir()
    seizures = ["HP:0001250", "HP:0001263", "HP:0000252"]
    for n, subject in enumerate(["Patient 1", "Patient 1", "II-3"]):
        packet = _packet(f"PMID_{n}_case", subject, seizures[: n + 1])
        (folder / f"case-{n}.json").write_text(json.dumps(packet))
    (folder / "notes.txt").write_text("where these came from")
    imported = homes.json("hospital", "health", "import", str(folder))
    assert (imported["patients"], imported["new"], imported["stored"]) == (3, 3, 3)
    assert imported["types"] == {"Phenopacket": {"read": 3, "kept": 3, "dropped": 0}}
    assert [Path(s["file"]).name for s in imported["skipped"]] == ["notes.txt"]

    refused = homes.refused("hospital", "health", "deidentify", "-o", str(tmp_path / "a.json"))
    assert "no patient here consents to research (3 stored)" in refused

    given = homes.json(
        "hospital", "health", "consent", "PMID_1_case", "--purpose", "research",
        "--purpose", "matchmaking", "--by", "Dr Ada (genetics)", "--basis", "form 7",
    )  # fmt: skip
    assert given["patient"] == "PMID_1_case/Patient 1"
    assert (given["research"], given["matchmaking"]) == (True, True)
    assert [h["recorded_by"] for h in given["history"]] == ["Dr Ada (genetics)"] * 2

    exported = homes.json("hospital", "health", "deidentify", "-o", str(tmp_path / "a.json"))
    assert exported["records"] == 1 and exported["report"]["patients"] == {"in": 1, "out": 1}
    assert exported["report"]["codes_kept"] == {}  # phenopackets hold no FHIR resources
    # ...their terms, diseases and genes are the record's own fields, the document not copied
    assert exported["report"]["records"] == {"Phenopacket": {"in": 1, "out": 0}}
    published = json.loads((tmp_path / "a.json").read_text())
    assert len(published["records"][0]["phenotypic_features"]) == 2
    assert published["report"] == exported["report"]

    found = homes.json("hospital", "health", "match", "--hpo", "HP:0001250", "--hpo", "HP:0001263")
    assert len(found["results"]) == 1  # the two others never consented

    homes.json(
        "hospital", "health", "consent", "PMID_1_case/Patient 1", "--purpose",
        "rare-disease-research", "--withdraw", "--by", "Dr Ada (genetics)", "--basis", "call",
    )  # fmt: skip
    again = homes.refused("hospital", "health", "deidentify", "-o", str(tmp_path / "b.json"))
    assert "no patient here consents to research" in again

    with OwnerNode(homes.sessions["hospital"]) as node:
        entries = [node.audit.entry(i) for i in range(node.audit.size)]
    decisions = [e for e in entries if e.get("kind") == "health-consent"]
    assert [(e["purposes"], e["granted"]) for e in decisions] == [
        ("research,matchmaking", True),
        ("research", False),
    ]
    assert "PMID" not in json.dumps(decisions) and "Patient 1" not in json.dumps(decisions)

    assert "no patient 'nobody'" in homes.refused(
        "hospital", "health", "consent", "nobody", "--purpose", "research", "--by", "x"
    )
    assert "not ['gossip']" in homes.refused(
        "hospital", "health", "consent", "PMID_0_case", "--purpose", "gossip", "--by", "x"
    )


SYNTHEA = Path(__file__).resolve().parents[3] / "shared" / "data" / "synthea-bulk-10"


def test_a_real_bulk_export_imports_with_every_count_shown_and_a_private_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if not SYNTHEA.is_dir():
        pytest.skip("no Synthea bulk export in ../shared/data")
    home = NodeHome.init(tmp_path / "home", "import test", scrypt_n=2**12).path
    monkeypatch.setenv("AILEDGER_HOME", str(home))
    monkeypatch.delenv("AILEDGER_DATABASE_URL", raising=False)
    code, out, err = run(["health", "import", str(SYNTHEA)], capsys, monkeypatch)
    assert code == 0, err
    text = " ".join(out.split())
    assert "imported 13 patients (13 new, 0 updated;" in text
    assert "Location 44 read, 0 kept, 44 dropped" in text
    assert "Practitioner 43 read, 0 kept, 43 dropped" in text
    assert "Condition 555 read, 555 kept" in text
    assert "dropped: refers to no patient" in text
    assert f"skipped {SYNTHEA / 'log.ndjson'}: the bulk export's log, not resources" in text
    again = json.loads(run(["health", "import", str(SYNTHEA), "--json"], capsys, monkeypatch)[1])
    assert (again["new"], again["updated"], again["stored"]) == (0, 13, 13)
    assert again["types"]["Organization"] == {"read": 43, "kept": 0, "dropped": 43}
    assert stat.S_IMODE((home / "node.sqlite").stat().st_mode) == 0o600


def test_source_names_the_origin_of_records_that_do_not_say_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two systems' patient "1": without an origin the second is refused (it would replace
    the first); with --source it is kept beside it, keyed by that system."""
    from tests.health.test_fhir_import import _export, _fhir_patient

    home = NodeHome.init(tmp_path / "home", "import test", scrypt_n=2**12).path
    monkeypatch.setenv("AILEDGER_HOME", str(home))
    monkeypatch.delenv("AILEDGER_DATABASE_URL", raising=False)
    first = _export(tmp_path / "a", None, _fhir_patient("1970-01-01", "A1"))
    second = _export(tmp_path / "b", None, _fhir_patient("1999-09-09", "B7"))
    assert run(["health", "import", str(first)], capsys, monkeypatch)[0] == 0
    code, _, err = run(["health", "import", str(second)], capsys, monkeypatch)
    assert code != 0 and "or --source URL" in " ".join(err.split())
    kept = ["health", "import", str(second), "--source", "https://b.example.org/fhir", "--json"]
    code, out, err = run(kept, capsys, monkeypatch)
    assert code == 0, err
    imported = json.loads(out)
    assert imported["rekeyed"] == ["https://b.example.org/fhir/Patient/1"]
    assert imported["stored"] == 2
