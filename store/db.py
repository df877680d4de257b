"""Engine, sessions and schema migrations.

SQLite (the default, one file under the data directory) and PostgreSQL (psycopg 3) run the
same code. On SQLite every transaction starts with ``BEGIN IMMEDIATE``: writers queue on the
30-second busy timeout instead of failing with "database is locked" when two processes write,
and SAVEPOINTs (used by the race-safe inserts in :mod:`store.queries`) behave as documented.
A session opened by :func:`reading` only reads: its SQLite transaction is deferred (``BEGIN``), so
it takes no write lock and never waits for a writer (WAL).

Writers to one SQLite file, in every thread and process, first queue on a lock file beside it
(:mod:`store.writers`): SQLite's own busy handler sleeps between tries, long after the lock was free.
"""

from __future__ import annotations

import errno
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from store.writers import QueuedConnection, WriteQueue, queue_path

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_ONLY = "intake_read_only"  # execution option of the connections of :func:`reading`
DB_FILENAME = "conventions.sqlite3"


def default_db_url(data_dir: Path) -> str:
    """The embedded default: a SQLite file in the data directory."""
    return f"sqlite:///{Path(data_dir).resolve() / DB_FILENAME}"


def _normalise_url(url: str) -> URL:
    parsed = make_url(url)
    # A bare "postgresql://" URL would pick psycopg2, which is not a dependency.
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str) -> Engine:
    """An engine configured for this service (see the module docstring for SQLite)."""
    parsed = _normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _make_sqlite_engine(parsed)
    return create_engine(parsed, pool_pre_ping=True)


def _make_sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    if not in_memory:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    connect_args: dict[str, Any] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    if not in_memory:
        queue = WriteQueue(queue_path(Path(database).expanduser()), SQLITE_BUSY_TIMEOUT_MS / 1000)
        connect_args["factory"] = queue.connection_class()
    engine = create_engine(url, connect_args=connect_args)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module (it would not BEGIN before
        # a SAVEPOINT and would COMMIT on RELEASE); the "begin" hook below starts them.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")
            return
        dbapi_connection = connection.connection.dbapi_connection
        if isinstance(dbapi_connection, QueuedConnection):
            dbapi_connection.queue_for_write()
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def store_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the store cannot be used right now rather than that the work is wrong:
    the server unreachable or restarting, a connection dropped, a lock not obtained, the disk full.
    Such work is tried again later, never recorded as failed."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError | InterfaceError) or storage_full(exc)


def storage_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or its cause) is a full disk: SQLite's SQLITE_FULL, PostgreSQL's
    ``disk_full`` (53100), ENOSPC from the file system."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno == errno.ENOSPC:
            return True
        if getattr(current, "sqlstate", None) == "53100":
            return True
        text_of = str(current).lower()
        if "database or disk is full" in text_of or "no space left on device" in text_of:
            return True
        current = getattr(current, "orig", None) or current.__cause__
    return False


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to ``engine``; objects stay readable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def exclusive_writes(sessions: sessionmaker[Session]) -> bool:
    """Whether a write transaction locks the whole store (SQLite) rather than rows (PostgreSQL)."""
    return engine_of(sessions).dialect.name == "sqlite"


@contextmanager
def reading(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A session for reads only (see the module docstring). Closed at the end, which rolls its
    transaction back; the objects it loaded stay readable, detached. Never commit it."""
    with sessions() as session:
        session.connection(execution_options={READ_ONLY: True})
        yield session


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration built in code (no alembic.ini, no dependence on the cwd).

    With ``url`` the Alembic command line can be driven from Python too, e.g.
    ``command.revision(alembic_config(url), autogenerate=True, message="...")``.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        rendered = _normalise_url(url).render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the database schema up to ``revision`` (Alembic upgrade, default "head")."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Alembic downgrade to ``revision`` ("base" drops every table); for tests and operators."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def engine_of(sessions: sessionmaker[Session]) -> Engine:
    """The engine a session factory is bound to."""
    bind = sessions.kw.get("bind")
    if not isinstance(bind, Engine):
        raise TypeError("the session factory is not bound to an engine")
    return bind


def lock_key(name: str) -> int:
    """A signed 64-bit PostgreSQL advisory-lock key for ``name`` (stable across processes)."""
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "big", signed=True)


@contextmanager
def advisory_lock(engine: Engine, name: str) -> Iterator[bool]:
    """Try to take the lock ``name`` for the duration of the block; yields whether it was won.

    PostgreSQL: ``pg_try_advisory_lock`` on a connection of its own, held until the block ends
    (a process that dies loses its connection, hence the lock, at once). Never waits: the loser
    skips the work, the winner does it. SQLite: always won (one writer at a time, and the
    callers' own unique keys keep the work idempotent).
    """
    if engine.dialect.name != "postgresql":
        yield True
        return
    key = lock_key(name)
    with engine.connect() as connection:
        won = bool(connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}))
        connection.commit()
        try:
            yield won
        finally:
            if won:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                connection.commit()
