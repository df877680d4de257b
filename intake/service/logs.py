"""Logs: one record, one line (logfmt or JSON, ``CONVENTIONS_LOG_FORMAT=json``), on standard error.

No value can forge another line or repaint a terminal: control characters are replaced and every
field is quoted when needed.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from datetime import UTC, datetime

from parsers.text import one_line

LOGGER_NAME = "conventions_intake"
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


def make_logger(verbose: bool | None = None) -> logging.Logger:
    """The service's logger (``CONVENTIONS_VERBOSE`` set: debug records too)."""
    if verbose is None:
        verbose = bool(os.environ.get("CONVENTIONS_VERBOSE"))
    log = logging.getLogger(LOGGER_NAME)
    if not log.handlers:
        handler = _StderrHandler()
        handler.setFormatter(StructuredFormatter(os.environ.get("CONVENTIONS_LOG_FORMAT", "text") == "json"))
        log.addHandler(handler)
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False
    return log
