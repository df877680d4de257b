"""Wiring: from settings and a database URL to the services the pipeline and commands use."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from intake.config import Settings, load_settings
from intake.journey import Services
from notifier.outbox import export_to_folder
from parsers.text import one_line
from store.db import default_db_url, make_engine, migrate, session_factory

# Terminal escape sequences and other control characters: a value must not repaint a terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class StructuredFormatter(logging.Formatter):
    """One log record, one line: logfmt (``key=value``) or JSON. No value can forge another line."""

    def __init__(self, as_json: bool = False) -> None:
        super().__init__()
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        fields = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "thread": record.threadName or "-",
            "msg": _CONTROL.sub("?", one_line(record.getMessage(), 2000)),
        }
        if record.exc_info:
            fields["error"] = _CONTROL.sub("?", one_line(self.formatException(record.exc_info), 4000))
        if self.as_json:
            return json.dumps(fields, ensure_ascii=False)
        return " ".join(f"{k}={self._quote(v)}" for k, v in fields.items())

    @staticmethod
    def _quote(value: str) -> str:
        if value and all(c.isalnum() or c in "-_.:/+@#" for c in value):
            return value
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of the record (it may be replaced)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def make_logger(verbose: bool = False) -> logging.Logger:
    log = logging.getLogger("conventions_intake")
    if not log.handlers:
        handler = _StderrHandler()
        handler.setFormatter(StructuredFormatter(os.environ.get("CONVENTIONS_LOG_FORMAT", "text") == "json"))
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
