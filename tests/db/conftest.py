"""Database backends for the storage suites: each test gets a fresh SQLite file and a
fresh PostgreSQL database, so every store is tested on both.

One throwaway PostgreSQL server (``scripts/postgres.sh``) serves the whole test session.
Where PostgreSQL is not installed its tests skip, unless ``AILEDGER_REQUIRE_POSTGRES=1``
(``scripts/test.sh`` sets it: on CI they must run), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url

from ailedger.db import open_database, sqlite_url

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "postgres.sh"


def _unavailable() -> str | None:
    if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
        return "PostgreSQL is not installed (no initdb): apt-get install postgresql"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: cannot start PostgreSQL as its own user"
    return None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL server running for this test session."""
    reason = _unavailable()
    if reason is not None:
        if os.environ.get("AILEDGER_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    # Not under pytest's tmp_path: that directory is private to root, and the server runs
    # as the postgres user, which must reach its data directory.
    directory = tempfile.mkdtemp(prefix="ailedger-postgres-")
    try:
        started = subprocess.run(
            ["bash", str(SCRIPT), "start", directory],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if started.returncode != 0:
            pytest.fail(f"scripts/postgres.sh start failed: {started.stderr}")
        yield started.stdout.strip()
        subprocess.run(["bash", str(SCRIPT), "stop", directory], check=False, timeout=60)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database: an SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "node.sqlite")
        return
    server = make_url(request.getfixturevalue("postgres_server"))
    name = f"test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(server.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield server.set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@pytest.fixture
def database(db_url: str) -> Iterator[Engine]:
    """An opened, migrated database on each backend."""
    engine = open_database(db_url)
    yield engine
    engine.dispose()
