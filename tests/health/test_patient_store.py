"""PatientStore: round trip, consent queries, all-or-nothing writes."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ailedger.health.patients import (
    ClinicianContact,
    Patient,
    PatientNotFoundError,
    PatientStore,
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


def test_round_trip_and_queries(tmp_path: Path) -> None:
    with PatientStore(tmp_path) as store:
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
    mode = (tmp_path / "patients.sqlite3").stat().st_mode
    assert stat.S_ISREG(mode)


def test_put_many_is_atomic(tmp_path: Path) -> None:
    store = PatientStore(tmp_path)
    store.put(_patient(0))

    def patients() -> object:
        yield _patient(1)
        raise RuntimeError("source broke")

    with pytest.raises(RuntimeError):
        store.put_many(patients())  # type: ignore[arg-type]
    assert store.ids() == ["p0"]
    journal = store._conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert journal == "wal"
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    store.close()
