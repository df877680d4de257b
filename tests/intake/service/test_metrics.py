"""/metrics while mail flows: the service's Prometheus metrics on its web server, for the machine's
own scraper only."""

from __future__ import annotations

import asyncio
import smtplib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from intake.pipeline.services import Services
from intake.service.supervisor import Service
from store.db import reading
from store.models import OutboxItem
from tests.factories.emails import XLSX, build_email
from tests.factories.workbooks import good_workbook
from tests.support.net import free_port
from tests.support.settings import make_services
from tests.support.web import web_section


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Services, int, int]]:
    smtp_port, web_port = free_port(), free_port()
    services = make_services(tmp_path, f"sqlite:///{tmp_path / 'metrics.sqlite3'}",
                             receiver={"host": "127.0.0.1", "port": smtp_port}, web=web_section(web_port))
    stop = threading.Event()
    thread = threading.Thread(target=lambda: asyncio.run(Service(services).run(stop)), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{web_port}/connexion", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    yield services, smtp_port, web_port
    stop.set()
    thread.join(30)
    assert not thread.is_alive()


def value(text: str, name: str) -> float:
    return float(next(line for line in text.splitlines() if line.startswith(name + " ")).split()[-1])


def scrape(port: int) -> str:
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return response.text


def test_metrics_count_messages_by_channel_and_outcome_and_read_the_outbox(running: tuple[Services, int, int]
                                                                          ) -> None:
    services, smtp_port, web_port = running
    with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as smtp:
        for n in range(2):
            smtp.sendmail("sgar@bretagne.pref.gouv.fr", ["conventions@ville.gouv.fr"],
                          build_email(subject=f"Bilan {n}", attachments=[("b.xlsx", good_workbook(), XLSX)]))
        smtp.sendmail("robot@example.com", ["conventions@ville.gouv.fr"],
                      build_email(sender="robot@example.com", subject="Question"))

    def written(kind: str | None = None) -> int:
        query = select(func.count()).select_from(OutboxItem).where(OutboxItem.status == "written")
        with reading(services.sessions) as session:
            return int(session.scalar(query if kind is None else query.where(OutboxItem.kind == kind)) or 0)

    # The scheduler's digest may be written at any moment too: the metric is compared with the
    # store once the three replies are written and both agree.
    deadline = time.monotonic() + 30
    text, in_store = "", -1
    while time.monotonic() < deadline:
        text, in_store = scrape(web_port), written()
        if ('conventions_message_processing_seconds_count 3.0' in text and written("reply") == 3
                and value(text, 'conventions_outbox_items{status="written"}') == in_store):
            break
        time.sleep(0.1)
    assert 'conventions_messages_total{channel="smtp",outcome="accepted"} 2.0' in text
    assert 'conventions_messages_total{channel="smtp",outcome="quarantined"} 1.0' in text
    assert 'conventions_message_processing_seconds_count 3.0' in text
    # No relay: the three replies were written to the folder (the quarantined sender is told too).
    assert written("reply") == 3
    assert value(text, 'conventions_outbox_items{status="written"}') == in_store
    assert "conventions_scheduler_runs_total" in text


def test_metrics_exist_only_for_the_machine_itself(running: tuple[Services, int, int]) -> None:
    from starlette.testclient import TestClient

    from intake.web.app import create_app

    services, _, _ = running
    outside = TestClient(create_app(services, metrics=lambda: b"x"), client=("192.0.2.7", 50000))
    assert outside.get("/metrics").status_code == 404
