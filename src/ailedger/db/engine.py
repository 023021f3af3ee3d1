"""Open the database named by a URL: SQLite with durable pragmas, or PostgreSQL (psycopg 3).

Every SQLite connection gets the same settings from one ``connect`` listener:

* ``journal_mode=WAL``: readers do not block the writer, and a commit is one append;
* ``synchronous=FULL``: a commit is on disk (WAL fsync-ed) before it returns;
* ``foreign_keys=ON``: SQLite ignores declared foreign keys unless told otherwise;
* ``busy_timeout``: a writer waits for another process's transaction instead of failing.

Transactions start with ``BEGIN IMMEDIATE`` (a ``begin`` listener; pysqlite's own
transaction handling is switched off, as SQLAlchemy's SQLite notes advise): a transaction
that reads and then writes never has to upgrade its lock, which is where SQLite gives up
with "database is locked" without waiting. Node processes and CLI commands share one file,
so this matters.
"""

from __future__ import annotations

import fcntl
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event, exc, make_url
from sqlalchemy.engine import URL

from ailedger._durable import PRIVATE_FILE_MODE
from ailedger.db.migrate import upgrade
from ailedger.errors import AiledgerError

BUSY_TIMEOUT_MS = 30_000

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)
"""Every capability's tables; the migrations must create exactly these (a test checks)."""


class DatabaseError(AiledgerError):
    """The node's database cannot be opened, migrated or used; the message says why."""


def sqlite_url(path: Path) -> str:
    """The URL of an SQLite database file (the default: ``node.sqlite`` in the home)."""
    return URL.create("sqlite", database=str(path)).render_as_string()


def database_url(configured: str | None, default_file: Path) -> str:
    """``AILEDGER_DATABASE_URL`` when set, else the SQLite file in the home."""
    return configured or sqlite_url(default_file)


def is_postgresql(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def open_database(url: str, *, migrate: bool = True) -> Engine:
    """An engine for ``url``, its schema brought to the newest migration (unless asked not
    to). ``postgresql://`` URLs use psycopg 3; ``sqlite:///PATH`` creates PATH's directory."""
    try:
        parsed = make_url(url)
    except exc.ArgumentError as error:
        # Not echoed: a URL may carry a password.
        raise DatabaseError(
            f"the database URL is invalid ({error}); set AILEDGER_DATABASE_URL to "
            "postgresql://USER@HOST:PORT/NAME, or unset it for the SQLite file in the home"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = _sqlite_engine(parsed)
    elif backend in ("postgresql", "postgres"):
        engine = create_engine(parsed.set(drivername="postgresql+psycopg"), pool_pre_ping=True)
    else:
        raise DatabaseError(
            f"ailedger stores its data in SQLite or PostgreSQL, not {backend!r}; "
            "fix AILEDGER_DATABASE_URL"
        )
    if migrate:
        try:
            with _opening(parsed):
                upgrade(engine)
        except exc.SQLAlchemyError as error:
            engine.dispose()
            cause = error.orig if isinstance(error, exc.DBAPIError) else error
            raise DatabaseError(
                f"cannot open the database {parsed.render_as_string()}: {cause}; "
                "check that it is reachable and that this user may create tables"
            ) from error
    return engine


@contextmanager
def _opening(url: URL) -> Iterator[None]:
    """Processes and threads opening one SQLite file take turns while it is set up: turning
    a new file into WAL mode needs it alone, and under load SQLite can answer "database is
    locked" at once instead of waiting its busy timeout. PostgreSQL migrations take an
    advisory lock instead (``migrate._lock``)."""
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        yield
        return
    path = Path(url.database)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _private(path: Path) -> None:
    """The file holds a hospital's identifiable patient records and a person's wearable
    index: only this user may read it. Created 0600 before SQLite opens it (SQLite gives
    its -wal and -shm files the database file's mode), and a file made wider by an older
    version narrowed."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, PRIVATE_FILE_MODE))
        if stat.S_IMODE(path.stat().st_mode) != PRIVATE_FILE_MODE:
            os.chmod(path, PRIVATE_FILE_MODE)
    except OSError as error:
        raise DatabaseError(f"cannot make the database file {path} private: {error}") from None


def _sqlite_engine(url: URL) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        _private(Path(url.database))
    engine = create_engine(url, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # BEGIN is ours (see the module docstring)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
