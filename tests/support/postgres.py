"""The database every store test runs on, on each backend (a pytest plugin, loaded by tests/conftest.py).

``db_url`` is parametrized over "sqlite" (a fresh file per test) and "postgresql" (one throw-away
database per test session on 127.0.0.1:5432, migrated once, every table truncated before each
test); ``engine`` and ``session`` are opened on it. ``pg_database`` is a throw-away PostgreSQL
database of its own for one test, left empty (for processes that migrate it themselves).

``CONVENTIONS_TEST_DB_BACKENDS`` (default "sqlite,postgresql") restricts the backends;
``CONVENTIONS_TEST_PG_ADMIN_URL`` (default "postgresql://postgres@127.0.0.1:5432/test") names the
server and the database used to create and drop the throw-away ones. When PostgreSQL cannot be
reached the tests using it fail under CI (CI=true) and are skipped, with the reason, elsewhere.

:func:`throwaway_database` is the one way to get such a database, for the fixtures and the
benchmarks alike.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from store.db import make_engine, migrate, session_factory
from store.models import Base

ALL_BACKENDS = ("sqlite", "postgresql")
DEFAULT_PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


class PostgresUnreachable(Exception):
    """The PostgreSQL server named by the administrative URL did not answer."""


def admin_url() -> str:
    """The administrative URL: ``CONVENTIONS_TEST_PG_ADMIN_URL``, else the local server."""
    return os.environ.get("CONVENTIONS_TEST_PG_ADMIN_URL", DEFAULT_PG_ADMIN_URL)


@contextlib.contextmanager
def throwaway_database(admin: str | None = None, *, prefix: str = "ci") -> Iterator[str]:
    """A new, empty database (``<prefix>_<random>``) on the server of ``admin`` (default
    :func:`admin_url`), as a SQLAlchemy URL; dropped, connections and all, on exit.
    :class:`PostgresUnreachable` when the server does not answer."""
    url = make_url(admin or admin_url())
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        connection = psycopg.connect(conninfo, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        shown = url.set(drivername="postgresql").render_as_string()
        raise PostgresUnreachable(f"PostgreSQL unreachable at {shown}: {exc}".strip()) from exc
    name = f"{prefix}_{secrets.token_hex(6)}"
    with connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield url.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)
        finally:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            try:
                connection.execute(drop)
            except psycopg.OperationalError:  # the server was restarted meanwhile (tests of faults)
                with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as again:
                    again.execute(drop)


def unreachable(reason: str) -> NoReturn:
    """Fail the test under CI (CI=true: the PostgreSQL tests must run), skip it elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the PostgreSQL tests must run)", pytrace=False)
    pytest.skip(f"{reason}; set CONVENTIONS_TEST_DB_BACKENDS=sqlite to deselect these tests")


@contextlib.contextmanager
def _database_or_skip(prefix: str) -> Iterator[str]:
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(throwaway_database(prefix=prefix))
        except PostgresUnreachable as exc:
            unreachable(str(exc))
        yield url


def selected_backends() -> list[str]:
    raw = os.environ.get("CONVENTIONS_TEST_DB_BACKENDS", ",".join(ALL_BACKENDS))
    names = [name.strip() for name in raw.split(",") if name.strip()]
    unknown = sorted(set(names) - set(ALL_BACKENDS))
    if unknown or not names:
        raise pytest.UsageError(
            f"CONVENTIONS_TEST_DB_BACKENDS={raw!r}: expected a comma-separated subset of {ALL_BACKENDS}"
        )
    return [name for name in ALL_BACKENDS if name in names]


BACKEND_PARAMS = [
    pytest.param(name, marks=pytest.mark.postgres) if name == "postgresql" else pytest.param(name)
    for name in selected_backends()
]


def truncate_all(engine: Engine) -> None:
    """Empty every table of the models and restart their id sequences (PostgreSQL)."""
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        # A session a test left open would otherwise make this wait for ever.
        connection.execute(text("SET LOCAL lock_timeout = '10s'"))
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A fresh PostgreSQL database (``ci_<random>``) for this test session, dropped at the end."""
    with _database_or_skip("ci") as url:
        yield url


@pytest.fixture(scope="session")
def pg_engine(pg_server_url: str) -> Iterator[Engine]:
    """The session's PostgreSQL engine, migrated to head once."""
    engine = make_engine(pg_server_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A PostgreSQL database of this test's own (``ci_multi_<random>``), empty: not migrated."""
    with _database_or_skip("ci_multi") as url:
        yield url


@pytest.fixture(params=BACKEND_PARAMS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a migrated database whose tables are empty, on each selected backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'db' / 'test.sqlite3'}"
        engine = make_engine(url)
        try:
            migrate(engine)
        finally:
            engine.dispose()
        return url
    pg_engine: Engine = request.getfixturevalue("pg_engine")
    truncate_all(pg_engine)
    return str(request.getfixturevalue("pg_server_url"))


@pytest.fixture
def engine(db_url: str, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """An engine on ``db_url`` (shared for the session on PostgreSQL, so not disposed here)."""
    if db_url.startswith("postgresql"):
        yield request.getfixturevalue("pg_engine")
        return
    created = make_engine(db_url)
    yield created
    created.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on the migrated, empty database; rolled back and closed after the test."""
    with session_factory(engine)() as opened:
        yield opened
        opened.rollback()
