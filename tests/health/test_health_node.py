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
    logged = (tmp_path / "home" / "health" / "notifications.jsonl").read_text().splitlines()
    assert len(logged) == 1 and "kabuki-like" in logged[0]


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
