"""Wiring: from settings and a database URL to the services the pipeline and commands use."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from intake.config import Settings, load_settings
from intake.journey import Services
from notifier.outbox import export_to_folder
from parsers.text import one_line
from store.db import default_db_url, make_engine, migrate, session_factory


class OneLineFormatter(logging.Formatter):
    """Structured-ish log lines; newlines in values can never forge another line."""

    def format(self, record: logging.LogRecord) -> str:
        record.msg = one_line(str(record.msg), 2000)
        text = super().format(record)
        head, _, tail = text.partition("\n")
        return head if not tail else head + " | " + one_line(tail, 4000)


def make_logger(verbose: bool = False) -> logging.Logger:
    log = logging.getLogger("conventions_intake")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False
    return log


def resolve_settings(config: str | None, environ: Mapping[str, str]) -> Settings:
    path = config or environ.get("CONVENTIONS_CONFIG")
    return load_settings(Path(path) if path else None, environ=environ)


def resolve_db_url(db: str | None, settings: Settings, environ: Mapping[str, str]) -> str:
    return db or environ.get("CONVENTIONS_DB") or default_db_url(settings.data_dir)


def build_services(settings: Settings, db_url: str, log: logging.Logger | None = None) -> Services:
    engine = make_engine(db_url)
    migrate(engine)
    sessions = session_factory(engine)
    outbox_dir = settings.outbox_dir

    def write_outbox_folder() -> None:
        with sessions() as session:
            export_to_folder(session, outbox_dir)

    return Services(
        settings=settings,
        sessions=sessions,
        log=log or make_logger(bool(os.environ.get("CONVENTIONS_VERBOSE"))),
        after_commit=write_outbox_folder if settings.smtp is None else None,
    )
