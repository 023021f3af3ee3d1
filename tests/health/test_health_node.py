"""The node's health data: import, saved queries that re-run on arrival, consent."""

from __future__ import annotations

from pathlib import Path

from ailedger.demo.records import RARE_CASE, write_bundles
from ailedger.health.node import HealthNode


def _query(terms: list[str]) -> dict[str, object]:
    return {
        "patient": {
            "id": "q",
            "contact": {"name": "Dr Q", "href": "mailto:q@x"},
            "features": [{"id": t} for t in terms],
        }
    }


def test_saved_query_fires_when_a_matching_patient_arrives(tmp_path: Path) -> None:
    bundles = write_bundles(tmp_path / "fhir", 20)
    with HealthNode(tmp_path / "home") as node:
        node.import_files(bundles[:-1])  # everyone but the rare case
        node.save_query("kabuki-like", _query(RARE_CASE))
        report, notes = node.import_files([bundles[-1]])
    assert report.patients == 1
    assert [n.query for n in notes] == ["kabuki-like"]
    assert notes[0].contact["href"] == "mailto:genetics@hospital-a.example.org"
    log = tmp_path / "home" / "health" / "notifications.jsonl"
    logged = log.read_text().splitlines()
    assert len(logged) == 1 and "kabuki-like" in logged[0]
    assert log.stat().st_mode & 0o777 == 0o600  # it names patients' contacts


MARFAN_LIKE = ["HP:0001166", "HP:0001083", "HP:0002616", "HP:0001519"]


def test_no_notification_for_unrelated_arrivals(tmp_path: Path) -> None:
    bundles = write_bundles(tmp_path / "fhir", 20)
    with HealthNode(tmp_path / "home") as node:
        node.save_query("marfan-like", _query(MARFAN_LIKE))
        _, notes = node.import_files(bundles)
    assert notes == []


def test_surrogates_are_stable_and_keyed(tmp_path: Path) -> None:
    bundles = write_bundles(tmp_path / "fhir", 3)
    with HealthNode(tmp_path / "home") as node:
        node.import_files(bundles)
        first = node.cohort.surrogate("pat-0")
    with HealthNode(tmp_path / "home") as node:
        assert node.cohort.surrogate("pat-0") == first
    with HealthNode(tmp_path / "other") as other:
        assert other.cohort.surrogate("pat-0") != first  # another node's secret


def _phenopacket(case_id: str, terms: list[str]) -> dict[str, object]:
    return {
        "id": case_id,
        "subject": {"id": "Patient 1"},
        "phenotypicFeatures": [{"type": {"id": t, "label": t}} for t in terms],
        "metaData": {
            "created": "2024-01-01T00:00:00Z",
            "createdBy": "a curator",
            "resources": [],
            "phenopacketSchemaVersion": "2.0",
        },
    }


def test_consent_recorded_by_another_process_counts_at_a_running_nodes_next_query(
    tmp_path: Path,
) -> None:
    """A phenopacket carries no consent: it is not matchable until `health consent` says so,
    and a node already serving queries must see that (and a withdrawal) without restarting."""
    import json

    from ailedger.health.consent import record_consent
    from ailedger.health.profile import PhenotypeProfile

    case = tmp_path / "case.json"
    case.write_text(json.dumps(_phenopacket("PMID1", RARE_CASE)))
    home = tmp_path / "home"
    with HealthNode(home) as running, HealthNode(home) as other:
        running.import_files([case])
        profile = PhenotypeProfile.of(RARE_CASE, [])

        def found() -> list[str]:
            return [m.patient_id for m in running.cohort.search(profile, 5, 0.0)]

        assert found() == []  # imported without consent: never returned

        def decide(granted: bool) -> None:
            record_consent(
                other.store, other.links, "PMID1", ["matchmaking"], granted=granted,
                recorded_by="Dr A", basis="signed form", audit=lambda entry: 0,
                secret=other.secret(),
            )  # fmt: skip

        decide(True)
        assert found() == ["PMID1/Patient 1"]
        decide(False)
        assert found() == []
