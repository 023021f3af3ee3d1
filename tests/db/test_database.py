"""open_database and the migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, make_url, text

import ailedger.health.patient_links
import ailedger.health.patients
import ailedger.health.wearables.vault_tables
import ailedger.sharing.catalog
import ailedger.sharing.owner_store  # noqa: F401 (each capability adds its tables to metadata)
from ailedger.db import DatabaseError, database_url, metadata, open_database, sqlite_url
from ailedger.db.migrate import current_revision, downgrade, head_revision, upgrade
from ailedger.keys.home import NodeHome
from ailedger.session import Session
from ailedger.settings import load_settings


def test_sqlite_connections_are_durable_and_wait_for_locks(tmp_path: Path) -> None:
    engine = open_database(sqlite_url(tmp_path / "node.sqlite"))
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    finally:
        engine.dispose()


def test_the_default_is_the_sqlite_file_in_the_home(tmp_path: Path) -> None:
    assert database_url(None, tmp_path / "node.sqlite") == f"sqlite:///{tmp_path}/node.sqlite"
    configured = "postgresql://ailedger@db.example.org:5432/ailedger"
    assert database_url(configured, tmp_path / "node.sqlite") == configured


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "is invalid"),
        ("mysql://root@localhost/x", "SQLite or PostgreSQL, not 'mysql'"),
    ],
)
def test_unusable_urls_are_refused_with_a_fix(url: str, message: str) -> None:
    with pytest.raises(DatabaseError, match=message) as caught:
        open_database(url)
    assert "AILEDGER_DATABASE_URL" in str(caught.value)


def test_an_unreachable_server_is_a_database_error() -> None:
    with pytest.raises(DatabaseError, match="check that it is reachable"):
        open_database("postgresql://nobody@127.0.0.1:1/none")


def test_migrations_create_exactly_the_tables_capabilities_describe(database: Engine) -> None:
    with database.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
        assert current_revision(conn) == head_revision()
    assert differences == []


def test_migrations_go_down_and_up_again(database: Engine) -> None:
    ours = set(metadata.tables)
    assert ours <= set(inspect(database).get_table_names())
    with database.begin() as conn:
        conn.execute(
            text("INSERT INTO health_patients VALUES ('p1', :yes, :no, '{}')"),
            {"yes": True, "no": False},
        )
    downgrade(database, "base")
    inspect_after = inspect(database)
    assert not ours & set(inspect_after.get_table_names())
    with database.connect() as conn:
        assert current_revision(conn) is None
    upgrade(database)
    assert ours <= set(inspect(database).get_table_names())
    with database.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM health_patients")).scalar() == 0


def test_opening_again_is_a_no_op(db_url: str) -> None:
    first = open_database(db_url)
    second = open_database(db_url)
    try:
        with second.connect() as conn:
            assert current_revision(conn) == head_revision()
    finally:
        first.dispose()
        second.dispose()


def test_processes_opening_a_new_database_at_once_migrate_it_once(db_url: str) -> None:
    errors: list[BaseException] = []
    engines: list[Engine] = []
    lock = threading.Lock()

    def open_one() -> None:
        try:
            engine = open_database(db_url)
            with lock:
                engines.append(engine)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for engine in engines:
        engine.dispose()
    assert errors == []
    assert len(engines) == 4


def test_threads_migrating_different_databases_do_not_mix(tmp_path: Path) -> None:
    # Alembic's op/context are process-wide: unserialised, one thread's CREATE INDEX
    # once ran on another thread's half-migrated database.
    start = threading.Barrier(6)
    errors: list[BaseException] = []
    urls = [sqlite_url(tmp_path / f"home{n}" / "node.sqlite") for n in range(6)]

    def open_one(url: str) -> None:
        start.wait()
        try:
            open_database(url).dispose()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one, args=(url,)) for url in urls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for url in urls:
        engine = open_database(url, migrate=False)
        try:
            assert set(metadata.tables) <= set(inspect(engine).get_table_names())
        finally:
            engine.dispose()


def test_a_session_opens_the_configured_database_or_the_homes(db_url: str, tmp_path: Path) -> None:
    home = NodeHome.init(tmp_path / "home", "database", scrypt_n=2**12)
    no_chain: Any = None  # the database needs no chain
    for configured, expected in ((db_url, db_url), (None, sqlite_url(home.layout.database))):
        settings = load_settings(home=home.path, database_url=configured)
        session = Session(settings, home, no_chain, None)
        try:
            assert session.database is session.database
            opened, wanted = session.database.url, make_url(expected)
            assert (opened.get_backend_name(), opened.database) == (
                wanted.get_backend_name(),
                wanted.database,
            )
            assert set(metadata.tables) <= set(inspect(session.database).get_table_names())
        finally:
            session.close()


def test_the_sqlite_file_and_its_journal_are_private(tmp_path: Path) -> None:
    """It holds identifiable patient records: 0600 from creation, its -wal and -shm too,
    and a file an older version left wider is narrowed."""
    import os
    import stat

    path = tmp_path / "node.sqlite"
    engine = open_database(sqlite_url(path))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE probe (x INTEGER)"))
        conn.execute(text("INSERT INTO probe VALUES (1)"))
    names = ("node.sqlite", "node.sqlite-wal", "node.sqlite-shm")
    files = [p for p in tmp_path.iterdir() if p.name in names]
    assert len(files) >= 2  # (node.sqlite.lock, the migration lock, holds nothing)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files), files
    engine.dispose()
    os.chmod(path, 0o644)
    open_database(sqlite_url(path)).dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
