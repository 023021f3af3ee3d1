"""PatientStore: round trip, consent queries, all-or-nothing writes (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from ailedger.health import patients
from ailedger.health.patients import (
    ClinicianContact,
    Patient,
    PatientNotFoundError,
    PatientStore,
    PatientStoreError,
)


def _patient(n: int, *, matchmaking: bool = False, research: bool = False) -> Patient:
    return Patient(
        local_id=f"p{n}",
        sex="female",
        birth_date="1980-02-03",
        observed=("HP:0001250",),
        excluded=("HP:0001263",),
        genes=("BRCA1",),
        diagnoses=("OMIM:616439",),
        resources=({"resourceType": "Patient", "id": "x"},),
        contact=ClinicianContact("Dr A", "Gen Hosp", "a@h.org"),
        matchmaking=matchmaking,
        research=research,
    )


def test_round_trip_and_queries(database: Engine) -> None:
    store = PatientStore(database)
    store.put_many([_patient(1, matchmaking=True), _patient(2, research=True), _patient(3)])
    assert store.count() == 3
    assert store.ids() == ["p1", "p2", "p3"]
    got = store.get("p1")
    assert got == _patient(1, matchmaking=True)
    assert got.resources == ({"resourceType": "Patient", "id": "x"},)
    assert [p.local_id for p in store.consented_for_matchmaking()] == ["p1"]
    assert [p.local_id for p in store.consented_for_research()] == ["p2"]
    assert len(list(store)) == 3
    store.put(_patient(1))  # replace
    assert store.consented_for_matchmaking() == []
    store.delete("p3")
    with pytest.raises(PatientNotFoundError, match="p3"):
        store.get("p3")
    with pytest.raises(PatientNotFoundError, match="p3"):
        store.delete("p3")


def test_put_many_is_atomic(database: Engine) -> None:
    store = PatientStore(database)
    store.put(_patient(0))

    def patients() -> object:
        yield _patient(1)
        raise RuntimeError("source broke")

    with pytest.raises(RuntimeError):
        store.put_many(patients())  # type: ignore[arg-type]
    assert store.ids() == ["p0"]


def test_a_database_failure_mid_write_stores_nothing(
    database: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = PatientStore(database)
    store.put(_patient(0))
    real_upsert = patients.upsert

    def write_then_fail(*args: Any, **kwargs: Any) -> None:
        real_upsert(*args, **kwargs)  # the rows are in the transaction...
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))  # ...then it fails

    monkeypatch.setattr(patients, "upsert", write_then_fail)
    with pytest.raises(PatientStoreError, match="nothing was stored"):
        store.put_many([_patient(1), _patient(2)])
    assert store.ids() == ["p0"]


def test_consent_recorded_here_with_who_when_and_why(database: Engine) -> None:
    store = PatientStore(database)
    store.put_many([_patient(1), _patient(2)])
    granted = store.record_consent(
        "p1",
        ["matchmaking", "research"],
        granted=True,
        recorded_by="Dr A",
        basis="signed form 7",
        at=1_700_000_000,
    )
    assert granted.matchmaking and granted.research
    assert [p.local_id for p in store.consented_for_research()] == ["p1"]
    store.record_consent("p1", ["research"], granted=False, recorded_by="Dr B", basis="call")
    assert [p.local_id for p in store.consented_for_research()] == []
    assert (store.consented_ids("matchmaking"), store.consented_ids("research")) == ({"p1"}, set())
    history = store.consent_history("p1")
    assert [(h.purpose, h.granted, h.recorded_by) for h in history] == [
        ("matchmaking", True, "Dr A"),
        ("research", True, "Dr A"),
        ("research", False, "Dr B"),
    ]
    assert history[0].recorded_at == 1_700_000_000 and history[0].basis == "signed form 7"
    store.put(_patient(1))  # the record arrives again without consent: the decisions stand
    assert store.get("p1").matchmaking and not store.get("p1").research
    store.delete("p1")  # a later record under this key is someone new
    assert store.consent_history("p1") == []
    with pytest.raises(PatientNotFoundError, match="nobody"):
        store.record_consent("nobody", ["research"], granted=True, recorded_by="x", basis="")
    with pytest.raises(PatientStoreError, match="not \\['gossip'\\]"):
        store.record_consent("p2", ["gossip"], granted=True, recorded_by="x", basis="")
    with pytest.raises(PatientStoreError, match="who records"):
        store.record_consent("p2", ["research"], granted=True, recorded_by=" ", basis="")


def test_migration_0005_keys_stored_phenopackets_by_case_and_loses_no_row(db_url: str) -> None:
    import json

    from sqlalchemy import text

    from ailedger.db import open_database
    from ailedger.db.migrate import downgrade, upgrade

    engine = open_database(db_url, migrate=False)
    upgrade(engine, "0004")
    packets = [
        Patient(
            local_id="Patient 1",
            source="phenopacket",
            research=True,
            resources=({"id": "PMID_1_P1", "subject": {"id": "Patient 1"}},),
        ),
        Patient(local_id="fhir-9", source="fhir", resources=({"resourceType": "Patient"},)),
    ]
    with engine.begin() as conn:
        for p in packets:
            conn.execute(
                text(
                    "INSERT INTO health_patients (local_id, matchmaking, research, record) "
                    "VALUES (:id, false, true, :record)"
                ),
                {"id": p.local_id, "record": p.to_json()},
            )
        conn.execute(
            text(
                "INSERT INTO health_patient_links VALUES ('Patient 1', :link, :wallet, "
                "'proposed', 1)"
            ),
            {"link": "ab" * 32, "wallet": "0x" + "11" * 20},
        )
    upgrade(engine)
    store = PatientStore(engine)
    assert store.ids() == ["PMID_1_P1/Patient 1", "fhir-9"]
    assert store.get("PMID_1_P1/Patient 1").research
    with engine.begin() as conn:
        linked = conn.execute(text("SELECT local_id FROM health_patient_links")).scalar_one()
    assert linked == "PMID_1_P1/Patient 1"
    downgrade(engine, "0004")
    with engine.begin() as conn:
        rows = conn.execute(text("SELECT local_id, record FROM health_patients")).all()
    assert sorted(r[0] for r in rows) == ["Patient 1", "fhir-9"]
    assert {json.loads(r[1])["local_id"] for r in rows} == {"Patient 1", "fhir-9"}
    engine.dispose()


def test_an_old_homes_phenopackets_are_adopted_under_their_case_keys(
    database: Engine, tmp_path: Path
) -> None:
    import json
    import sqlite3
    import stat

    path = tmp_path / "health" / "patients.sqlite3"
    path.parent.mkdir(parents=True)
    old = sqlite3.connect(path, isolation_level=None)
    old.execute(
        "CREATE TABLE patients (local_id TEXT PRIMARY KEY, matchmaking INTEGER NOT NULL, "
        "research INTEGER NOT NULL, record TEXT NOT NULL)"
    )
    packet = Patient(
        "Patient 1",
        source="phenopacket",
        resources=({"id": "PMID_9_P1", "subject": {"id": "Patient 1"}},),
    )
    record = json.loads(packet.to_json())
    del record["origin"]  # written before patients had an origin
    old.execute("INSERT INTO patients VALUES ('Patient 1', 0, 0, ?)", (json.dumps(record),))
    old.close()
    path.chmod(0o644)  # as old homes created it
    store = PatientStore(database)
    assert store.adopt_legacy_file(path) == 1
    adopted = path.with_name(path.name + ".adopted")
    assert stat.S_IMODE(adopted.stat().st_mode) == 0o600  # set aside, still identifiable
    assert store.ids() == ["PMID_9_P1/Patient 1"]
    assert store.get("PMID_9_P1/Patient 1").origin is None
