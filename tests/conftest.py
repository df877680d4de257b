"""Shared fixtures: a migrated, empty database on every backend.

``db_url`` is parametrized over "sqlite" (a fresh file per test) and "postgresql" (one
throw-away database per test session on 127.0.0.1:5432, migrated once, every table truncated
before each test). ``CONVENTIONS_TEST_DB_BACKENDS`` (default "sqlite,postgresql") restricts
the backends; ``CONVENTIONS_TEST_PG_ADMIN_URL`` (default
"postgresql://postgres@127.0.0.1:5432/test") names the server and the database used to
create and drop the throw-away one. When PostgreSQL cannot be reached the tests using it
fail under CI (CI=true) and are skipped, with the reason, elsewhere.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

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


def _selected_backends() -> list[str]:
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
    for name in _selected_backends()
]


def _pg_admin_conninfo() -> str:
    url = make_url(os.environ.get("CONVENTIONS_TEST_PG_ADMIN_URL", DEFAULT_PG_ADMIN_URL))
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A fresh PostgreSQL database (``ci_<random>``) for this test session, dropped at the end."""
    admin = _pg_admin_conninfo()
    try:
        connection = psycopg.connect(admin, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        reason = f"PostgreSQL unreachable at {make_url(admin).render_as_string()}: {exc}".strip()
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: the PostgreSQL tests must run)", pytrace=False)
        pytest.skip(f"{reason}; set CONVENTIONS_TEST_DB_BACKENDS=sqlite to deselect these tests")
    name = f"ci_{secrets.token_hex(6)}"
    with connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield make_url(admin).set(drivername="postgresql+psycopg", database=name).render_as_string(
                hide_password=False
            )
        finally:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def pg_engine(pg_server_url: str) -> Iterator[Engine]:
    """The session's PostgreSQL engine, migrated to head once."""
    engine = make_engine(pg_server_url)
    migrate(engine)
    yield engine
    engine.dispose()


def truncate_all(engine: Engine) -> None:
    """Empty every table of the models and restart their id sequences (PostgreSQL)."""
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        # A session a test left open would otherwise make this wait for ever.
        connection.execute(text("SET LOCAL lock_timeout = '10s'"))
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


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
