"""The pipeline in processes of its own (``[service] processes``, intake/service/runners.py): real
processes on SQLite and PostgreSQL, one killed with SIGKILL, and a service killed under its runners."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from intake.pipeline import flow
from intake.pipeline.journey import Delivery, Result
from intake.pipeline.services import Services
from intake.pipeline.worker import Worker, lane_key
from intake.service.runners import Runner, start_runners
from store.db import engine_of
from store.models import InboundMessage, OutboxItem
from tests.factories.emails import XLSX, build_email
from tests.factories.workbooks import good_workbook
from tests.support.paths import ROOT
from tests.support.service import gone
from tests.support.settings import MAILBOX, make_services

RELAY = {"host": "127.0.0.1", "port": 2525, "from": MAILBOX}  # never contacted: replies stay queued


@pytest.fixture
def services(tmp_path: Path, db_url: str) -> Iterator[Services]:
    built = make_services(tmp_path, db_url, smtp=RELAY)
    yield built
    engine_of(built.sessions).dispose()


@pytest.fixture
def runners(services: Services) -> Iterator[list[Runner]]:
    started = start_runners(services, 2)
    yield started
    for runner in started:
        runner.close()


def stored_return(services: Services, n: int, region: str = "bretagne", *, bad: bool = False) -> tuple[int, str | None]:
    sender = f"agent{n}@bretagne.pref.gouv.fr" if region == "bretagne" else "sgar@rhone-alpes.pref.gouv.fr"
    raw = build_email(sender=sender, message_id=f"<runner-{n}@test>",
                      subject=f"Bilan 2013 envoi {n}",
                      attachments=[(f"bilan-{n}.xlsx", good_workbook(values={"I09": "quatre"} if bad else {}), XLSX)])
    inbound_id = flow.receive(services, Delivery(raw=raw, received_at=datetime.now(UTC), channel="smtp"))
    return inbound_id, lane_key(services.settings, raw)


def wait_for(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_two_runners_process_the_regions_returns_each_answered_once(
    services: Services, runners: list[Runner]
) -> None:
    assert all(r.pid is not None and r.pid != os.getpid() for r in runners)
    assert len({r.pid for r in runners}) == 2
    seen: list[Result] = []
    worker = Worker(services, on_result=lambda result, _: seen.append(result), processors=runners)
    worker.start()
    try:
        stored = [stored_return(services, n, region, bad=n % 3 == 0)
                  for n, region in enumerate(["bretagne", "rhone-alpes"] * 4)]
        futures = [worker.submit(inbound_id, key) for inbound_id, key in stored]
        results = [f.result(60) for f in futures]
    finally:
        worker.stop(timeout=60)
    assert [r.outcome for r in results] == ["rejected" if n % 3 == 0 else "accepted" for n in range(8)]
    assert [r.region for r in results] == ["53", "82"] * 4
    assert {r.inbound_id for r in seen} == {inbound_id for inbound_id, _ in stored}
    with services.sessions() as session:
        keys = session.scalars(select(OutboxItem.key)).all()
        outcomes = session.scalars(select(InboundMessage.outcome)).all()
    assert sorted(keys) == sorted(f"reply:{inbound_id}" for inbound_id, _ in stored)
    assert "received" not in outcomes


def test_a_runner_killed_is_replaced_and_its_message_processed(services: Services, runners: list[Runner]) -> None:
    worker = Worker(services, processors=runners)
    worker.start()
    try:
        inbound_id, key = stored_return(services, 1)
        victim = runners[worker.lane_of(key)]
        old_pid = victim.pid
        assert old_pid is not None
        os.kill(old_pid, signal.SIGKILL)
        assert wait_for(lambda: gone(old_pid), 10)
        result = worker.submit(inbound_id, key).result(60)
    finally:
        worker.stop(timeout=60)
    assert result.outcome == "accepted"
    assert victim.restarts == 1
    with services.sessions() as session:
        assert session.scalars(select(OutboxItem.key)).all() == [f"reply:{inbound_id}"]


def test_runners_leave_when_the_service_is_killed(tmp_path: Path) -> None:
    """A service killed with SIGKILL cannot stop its runners: they notice and leave by themselves,
    instead of living on, orphaned, with their connections to the store."""
    script = (
        "import sys, time\n"
        "from tests.support.settings import make_services\n"
        "from intake.service.runners import start_runners\n"
        f"services = make_services(__import__('pathlib').Path({str(tmp_path)!r}), "
        f"'sqlite:///{tmp_path / 'db.sqlite3'}')\n"
        "runners = start_runners(services, 2)\n"
        "print(' '.join(str(r.pid) for r in runners), flush=True)\n"
        "time.sleep(60)\n"
    )
    service = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert service.stdout is not None
        pids = [int(pid) for pid in service.stdout.readline().split()]
        assert len(pids) == 2 and not any(gone(pid) for pid in pids)
        service.send_signal(signal.SIGKILL)
        service.wait(10)
        assert wait_for(lambda: all(gone(pid) for pid in pids), 10), "runners outlived their service"
    finally:
        service.kill()
        service.wait(10)
