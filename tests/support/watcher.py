"""What the IMAP watcher's tests share: a configuration for the test Dovecot, a watcher running in a
thread, waiting for a condition."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import select

from intake.channels.doorbell import Doorbell
from intake.channels.imap import ImapWatcher
from intake.config.settings import ImapConfig
from intake.pipeline.services import Services
from store.models import InboundMessage
from tests.factories.emails import XLSX, build_email
from tests.factories.workbooks import good_workbook
from tests.support.dovecot import Dovecot
from tests.support.settings import make_services

PROCESSED = "Traités"


def imap_config(server: Dovecot, **changes: Any) -> ImapConfig:
    config = ImapConfig(host=server.host, port=server.port, username=server.user, password=server.password,
                        folder="INBOX", processed_folder=PROCESSED, idle_seconds=5.0, poll_seconds=0.3,
                        timeout_seconds=5.0)
    return replace(config, **changes)


def sqlite_services(tmp_path: Path) -> Services:
    return make_services(tmp_path, f"sqlite:///{tmp_path / 'imap.sqlite3'}")


def mail(subject: str = "Bilan 2013 – région Bretagne", workbook: bool = False) -> bytes:
    attachments = [("Bilan 2013 - Bretagne.xlsx", good_workbook(), XLSX)] if workbook else []
    return build_email(subject=subject, attachments=attachments)


def rows(services: Services) -> list[InboundMessage]:
    with services.sessions() as session:
        return list(session.scalars(select(InboundMessage).order_by(InboundMessage.id)))


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> float:
    """Seconds it took for ``predicate`` to hold (AssertionError after ``timeout``)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"condition not reached within {timeout} s")


class Running:
    """``runner.run(stop)`` in a thread (the watcher, or its doorbell), stopped and checked stopped
    at exit; entered once ``ready`` holds (for a watcher, by default, once its first sync is done)."""

    def __init__(self, runner: ImapWatcher | Doorbell, ready: Callable[[], bool] | None = None) -> None:
        self.runner = runner
        self.ready = ready
        if ready is None and isinstance(runner, ImapWatcher):
            self.ready = lambda: runner.health()["last_sync_at"] is not None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=runner.run, args=(self.stop,), daemon=True)

    def __enter__(self) -> Running:
        self.thread.start()
        if self.ready is not None:
            wait_for(self.ready)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        started = time.monotonic()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), f"{type(self.runner).__name__} did not stop"
        assert time.monotonic() - started < 3.0, f"{type(self.runner).__name__} took too long to stop"


def moved(server: Dovecot, count: int) -> Callable[[], bool]:
    return lambda: not server.uids("INBOX") and len(server.uids(PROCESSED)) == count
