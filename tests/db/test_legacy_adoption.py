"""Homes made before node.sqlite: their owner records and patients are adopted, once."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from sqlalchemy import Engine

from ailedger.health.node import HealthNode
from ailedger.health.patients import ClinicianContact, Patient, PatientStore
from ailedger.home_layout import HomeLayout
from ailedger.sharing.owner_store import OwnedDataset, OwnerStore

OWNER = "0x" + "ab" * 20

# The schemas those homes were written with, verbatim.
OLD_OWNER_SCHEMA = """
CREATE TABLE IF NOT EXISTS datasets (
    dataset_id BLOB PRIMARY KEY,
    blob_hash TEXT NOT NULL,
    version INTEGER NOT NULL,
    wrapped_key BLOB NOT NULL,
    metadata TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS nonces (nonce BLOB PRIMARY KEY, expiry INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS watch (k TEXT PRIMARY KEY, block INTEGER NOT NULL);
"""
OLD_PATIENT_SCHEMA = """
CREATE TABLE IF NOT EXISTS patients (
    local_id    TEXT PRIMARY KEY,
    matchmaking INTEGER NOT NULL,
    research    INTEGER NOT NULL,
    record      TEXT NOT NULL
);
"""


def _old_store(path: Path, schema: str) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(schema)
    return conn


def test_owner_records_are_adopted_once(database: Engine, tmp_path: Path) -> None:
    path = tmp_path / "data" / "owner.sqlite"
    old = _old_store(path, OLD_OWNER_SCHEMA)
    expiry = int(time.time()) + 600
    old.execute(
        "INSERT INTO datasets VALUES (?, ?, ?, ?, ?, ?)",
        (b"\x01" * 32, "cd" * 32, 1, b"wrapped key", '{"title": "old"}', 1.0),
    )
    old.execute("INSERT INTO nonces VALUES (?, ?)", (b"\x09" * 32, expiry))
    old.execute("INSERT INTO watch VALUES ('market', 77)")
    old.close()

    store = OwnerStore(database, OWNER)
    assert store.adopt_legacy_file(path) == 1
    assert store.get(b"\x01" * 32) == OwnedDataset(
        b"\x01" * 32, "cd" * 32, 1, b"wrapped key", {"title": "old"}
    )
    assert not store.use_nonce(b"\x09" * 32, expiry)  # replays stay refused across the upgrade
    assert store.watched_block() == 77
    assert not path.exists() and (tmp_path / "data" / "owner.sqlite.adopted").exists()
    assert store.adopt_legacy_file(path) == 0


def test_adopting_again_after_a_crash_changes_nothing(database: Engine, tmp_path: Path) -> None:
    path = tmp_path / "owner.sqlite"
    old = _old_store(path, OLD_OWNER_SCHEMA)
    old.execute(
        "INSERT INTO datasets VALUES (?, ?, ?, ?, ?, ?)",
        (b"\x01" * 32, "cd" * 32, 1, b"key", "{}", 1.0),
    )
    old.execute("INSERT INTO watch VALUES ('market', 5)")
    old.close()
    store = OwnerStore(database, OWNER)
    store.set_watched_block(9)  # the node ran since: never go back
    backup = path.read_bytes()
    store.adopt_legacy_file(path)
    path.write_bytes(backup)  # as if the process died before setting the file aside
    assert store.adopt_legacy_file(path) == 1
    assert len(store.all()) == 1 and store.watched_block() == 9


def test_patients_are_adopted_and_newer_imports_win(database: Engine, tmp_path: Path) -> None:
    path = tmp_path / "health" / "patients.sqlite3"
    old = _old_store(path, OLD_PATIENT_SCHEMA)
    before = [
        Patient("p1", observed=("HP:0001250",), matchmaking=True),
        Patient("p2", contact=ClinicianContact("Dr A"), research=True),
    ]
    for p in before:
        old.execute(
            "INSERT INTO patients VALUES (?, ?, ?, ?)",
            (p.local_id, int(p.matchmaking), int(p.research), p.to_json()),
        )
    old.close()
    store = PatientStore(database)
    store.put(Patient("p2", sex="female"))  # imported again since the upgrade

    assert store.adopt_legacy_file(path) == 2
    assert store.get("p1") == before[0]
    assert store.get("p2").sex == "female"
    assert [p.local_id for p in store.consented_for_matchmaking()] == ["p1"]
    assert not path.exists() and store.adopt_legacy_file(path) == 0


def test_a_health_node_adopts_its_homes_old_patients(tmp_path: Path) -> None:
    home = tmp_path / "home"
    old = _old_store(HomeLayout(home).legacy_patient_store, OLD_PATIENT_SCHEMA)
    patient = Patient("p7", matchmaking=True)
    old.execute("INSERT INTO patients VALUES ('p7', 1, 0, ?)", (patient.to_json(),))
    old.close()
    with HealthNode(home) as node:
        assert node.store.get("p7") == patient
