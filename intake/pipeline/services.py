"""What the pipeline needs, passed explicitly: the settings, the store, a logger, and what to do
after a commit that queued mail.

``build_services`` wires them from settings and a database URL (migrating the database first);
every entry point (command line, service, tests) builds its services here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from intake.config.settings import Settings
from notifier.outbox import export_to_folder
from store.db import default_db_url, make_engine, migrate, session_factory


@dataclass(frozen=True)
class Services:
    """Everything the pipeline needs, passed explicitly."""

    settings: Settings
    sessions: sessionmaker[Session]
    log: logging.Logger
    after_commit: Callable[[], None] | None = None  # e.g. write queued mail to the outbox folder


def resolve_db_url(db: str | None, settings: Settings, environ: Mapping[str, str]) -> str:
    """``--db``, else ``$CONVENTIONS_DB``, else SQLite under the data folder."""
    return db or environ.get("CONVENTIONS_DB") or default_db_url(settings.data_dir)


def build_services(settings: Settings, db_url: str, log: logging.Logger) -> Services:
    """The store migrated and opened; without a relay, queued mail is written to the outbox folder
    after every commit (``after_commit``)."""
    engine = make_engine(db_url)
    migrate(engine)
    sessions = session_factory(engine)
    outbox_dir = settings.outbox_dir

    def write_outbox_folder() -> None:
        with sessions.begin() as session:
            export_to_folder(session, outbox_dir)

    return Services(settings=settings, sessions=sessions, log=log,
                    after_commit=write_outbox_folder if settings.smtp is None else None)
