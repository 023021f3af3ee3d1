"""PatientStore: round trip, consent queries, all-or-nothing writes (SQLite and PostgreSQL)."""

from __future__ import annotations

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
