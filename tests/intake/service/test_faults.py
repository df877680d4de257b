"""Faults the service must survive for real (docs/reliability.md, « Faults »): PostgreSQL restarted
in the middle of a burst, the disk full while a message is stored, the relay refusing every message
for an hour. Real servers each time: ``serve`` in its own process, PostgreSQL restarted with
``pg_ctlcluster``, a tmpfs that is really full, the aiosmtpd relay with its fault switches; only the
hour is simulated (the outbox sender's clock).

The PostgreSQL test restarts the whole server (every database on it): other processes using it at
that moment see their connections dropped, as they would in production."""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import logging
import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import NoReturn

import pytest
from sqlalchemy import create_engine, func, select

from intake.pipeline import flow
from intake.pipeline.journey import Delivery
from intake.pipeline.worker import Worker
from notifier.alerts import alert_sink
from notifier.outbox import build_mail
from notifier.sender import OUTAGE_ALERT_SECONDS, OutboxSender
from store.db import engine_of
from store.models import InboundMessage, InboundRaw, OutboxItem
from store.queries.outbox import enqueue_outbox
from tests.factories.emails import XLSX, build_email
from tests.factories.workbooks import good_workbook
from tests.support.dovecot import Dovecot
from tests.support.net import free_port
from tests.support.relay import Relay
from tests.support.service import (
    ServiceProcess,
    alerts,
    receiver_address,
    replies_by_original,
    submit,
    wait_until,
    write_service_config,
)
from tests.support.settings import campaign, make_services, write_config

ADMIN = "coordination@ville.gouv.fr"  # the tests' coordinator: who gets the alerts
HOUR = 3600.0


def a_return(n: int, *, region: str = "bretagne", padding: bytes = b"") -> tuple[str, bytes]:
    """A region's return (a good workbook; ``padding`` as an image attachment): (Message-ID, raw)."""
    message_id = f"<faults-{n}-{time.monotonic_ns()}@{region}.pref.gouv.fr>"
    attachments = [(f"bilan-{n}.xlsx", good_workbook(), XLSX)]
    if padding:
        attachments.append((f"photo-{n}.png", padding, "image/png"))
    return message_id, build_email(sender=f"agent{n}@{region}.pref.gouv.fr", message_id=message_id,
                                   subject=f"Bilan 2013 envoi {n}", attachments=attachments)


def unavailable(reason: str) -> NoReturn:
    """Skip when the fault cannot be made here, except under CI (CI=true), where it must run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the fault tests must run)", pytrace=False)
    pytest.skip(reason)


# ---------------------------------------------------------------------------- PostgreSQL restarted


def postgres_cluster() -> tuple[str, str] | None:
    """(version, name) of the local cluster ``pg_ctlcluster`` manages, or None."""
    clusters = sorted(Path("/etc/postgresql").glob("*/main"))
    if not clusters or os.geteuid() != 0 or not Path("/usr/bin/pg_ctlcluster").exists():
        return None
    return clusters[-1].parent.name, "main"


def restart_postgres(cluster: tuple[str, str]) -> None:
    command = ["pg_ctlcluster", *cluster, "restart"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode != 0 and "systemctl" in done.stderr + done.stdout:
        done = subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, "restart"],
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr + done.stdout


class Sender(threading.Thread):
    """A sending mail server: delivers each message to the receiver, and keeps a message that got a
    temporary answer (451, connection refused) to deliver it again, as RFC 5321 asks."""

    def __init__(self, address: tuple[str, int], messages: list[bytes]) -> None:
        super().__init__(name="sending-server", daemon=True)
        self.address, self.messages = address, messages
        self.answers: list[int] = []
        self.error: str | None = None

    def run(self) -> None:
        for raw in self.messages:
            for _ in range(600):
                code, text = submit(self.address, raw)
                self.answers.append(code)
                if code == 250:
                    break
                if code >= 500:
                    self.error = f"{code} {text}"
                    return
                time.sleep(0.1)  # a sending server's retry interval, shortened
            else:
                self.error = "never accepted"
                return


@pytest.mark.postgres
def test_postgresql_restarted_mid_burst_every_message_answered_once_and_the_service_resumes(
    tmp_path: Path, dovecot: Dovecot, relay: Relay, pg_database: str
) -> None:
    cluster = postgres_cluster()
    if cluster is None:
        unavailable("pg_ctlcluster, /etc/postgresql/*/main and root are needed to restart PostgreSQL")
    config = write_service_config(tmp_path, dovecot, relay)
    service = ServiceProcess(config, pg_database, tmp_path)
    try:
        service.start()
        by_smtp = [a_return(n, region="bretagne" if n % 2 else "rhone-alpes") for n in range(12)]
        by_imap = [a_return(100 + n) for n in range(12)]
        answered = {message_id for message_id, _ in by_smtp + by_imap}
        before = Sender(receiver_address(config), [raw for _, raw in by_smtp[:6]])
        before.start()
        for _, raw in by_imap:
            dovecot.append(raw)
        wait_until(lambda: len(relay.received()) >= 4, 60, "first replies", service)
        # The rest of the SMTP burst arrives while PostgreSQL restarts, and the first message is
        # delivered again (same Message-ID): the resend is stored as a duplicate, answered once.
        during = Sender(receiver_address(config), [raw for _, raw in by_smtp[6:]] + [by_smtp[0][1]])
        during.start()
        restart_postgres(cluster)  # in the middle of the burst: some stored, some processed, some not
        for sending in (before, during):
            sending.join(120)
            assert not sending.is_alive(), "SMTP deliveries not accepted in 120 s\n" + service.logs()
            assert sending.error is None, sending.error
        wait_until(lambda: set(replies_by_original(relay)) >= answered, 120, "every reply", service)
        wait_until(lambda: dovecot.uids("INBOX") == [], 60, "empty inbox", service)

        # The service resumed by itself: healthy, and a message sent now is answered.
        late_id, late = a_return(999)
        assert submit(receiver_address(config), late)[0] == 250
        wait_until(lambda: late_id in replies_by_original(relay), 60, "the reply to a later message", service)
        wait_until(lambda: json.loads((tmp_path / "health.json").read_text())["channels"]
                   .get("database", {}).get("up") is True, 30, "database up in health.json", service)
        time.sleep(1.5)  # anything still to come would be a second reply
        counts = replies_by_original(relay)
        assert {k: v for k, v in counts.items() if v != 1} == {}, "a message was answered twice"
        assert set(counts) == answered | {late_id}
        assert len(dovecot.uids("Traités")) == len(by_imap)
        assert service.terminate() == 0
    finally:
        service.close()
    engine = create_engine(pg_database)
    try:
        with engine.connect() as connection:
            outcomes = dict(connection.execute(select(InboundMessage.outcome, func.count())
                                               .group_by(InboundMessage.outcome)).all())
    finally:
        engine.dispose()
    assert outcomes.get("failed", 0) == 0, outcomes  # a database hiccup never fails a message
    assert outcomes.get("duplicate", 0) >= 1, outcomes  # the resend


# ---------------------------------------------------------------------------- disk full


@contextlib.contextmanager
def tiny_filesystem(folder: Path, size_mb: int) -> Iterator[Path]:
    """A tmpfs of ``size_mb`` MB mounted on ``folder`` (root only), unmounted at the end."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        unavailable(f"cannot mount a tmpfs (root needed): {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Write a file in ``folder`` until the file system says ENOSPC; returns it."""
    filler = folder / "filler"
    chunk = os.urandom(1 << 16)
    with open(filler, "wb") as fh:
        try:
            while True:
                fh.write(chunk)
                fh.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return filler


def test_disk_full_while_storing_answers_451_writes_nothing_alerts_once_then_processes_the_retry(
    tmp_path: Path, relay: Relay
) -> None:
    with tiny_filesystem(tmp_path / "disk", 32) as disk:
        db = f"sqlite:///{disk / 'service.sqlite3'}"
        port = free_port()
        config = write_config(
            tmp_path, name="service.toml", receiver={"host": "127.0.0.1", "port": port},
            smtp={"host": relay.host, "port": relay.port, "from": "conventions@ville.gouv.fr",
                  "retry_initial_seconds": 0.2, "retry_max_seconds": 1},
            campaigns=[campaign(deadline=date(2030, 5, 15))],
            regions=[{"code": "53", "senders": ["@bretagne.pref.gouv.fr"],
                      "contacts": ["sgar@bretagne.pref.gouv.fr"]}])
        service = ServiceProcess(config, db, tmp_path)
        try:
            service.start()
            filler = fill(disk)
            # Larger than anything SQLite could still write in place (its WAL file's slack).
            wal = disk / "service.sqlite3-wal"
            padding = os.urandom((wal.stat().st_size if wal.exists() else 0) + (512 << 10))
            message_id, raw = a_return(1, padding=padding)
            address = ("127.0.0.1", port)
            assert submit(address, raw)[0] == 451  # the sending server keeps it and retries
            assert submit(address, raw)[0] == 451
            filler.unlink()  # space is back
            assert submit(address, raw)[0] == 250
            wait_until(lambda: message_id in replies_by_original(relay), 60, "the reply", service)
            wait_until(lambda: len(alerts(relay)) >= 1, 30, "the admins' alert", service)
            time.sleep(1.0)  # a second alert or reply would come now
            assert replies_by_original(relay)[message_id] == 1
            [alert] = alerts(relay)
            assert "2 message(s) reçu(s) refusé(s) temporairement (le disque est plein)" in alert
            assert service.terminate() == 0
        finally:
            service.close()
        logs = service.logs()
        assert "could not store an incoming message" in logs and "disk full" in logs and "answering 451" in logs
        engine = create_engine(db)
        try:
            with engine.connect() as connection:
                stored = connection.execute(select(InboundMessage.outcome, func.length(InboundRaw.raw))
                                            .outerjoin(InboundRaw, InboundRaw.message_pk == InboundMessage.id)).all()
                replies = connection.scalar(select(func.count()).select_from(OutboxItem)
                                            .where(OutboxItem.kind == "reply", OutboxItem.status == "sent"))
        finally:
            engine.dispose()
        # The refused deliveries left nothing behind; the one stored is whole, judged and answered.
        assert stored == [("accepted", len(raw))]
        assert replies == 1


def test_disk_full_while_processing_leaves_the_message_received_until_space_is_back(tmp_path: Path) -> None:
    """The message is stored; the disk fills before its verdict is written: no verdict without its
    reply, no ``failed`` for a full disk; the worker tries again and processes it once space is back."""
    with tiny_filesystem(tmp_path / "disk", 16) as disk:
        db = disk / "service.sqlite3"
        services = make_services(tmp_path, f"sqlite:///{db}", regions=[
            {"code": "53", "senders": ["@bretagne.pref.gouv.fr"], "contacts": ["sgar@bretagne.pref.gouv.fr"]}],
            campaigns=[campaign(deadline=date(2030, 5, 15))])
        _, raw = a_return(1)
        inbound_id = flow.receive(services, Delivery(raw=raw, received_at=datetime.now(UTC), channel="smtp"))
        engine = engine_of(services.sessions)
        engine.dispose()  # no connection of the pool keeps the write-ahead log in use
        with sqlite3.connect(db) as connection:  # no slack left in the log: the next write needs space
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        filler = fill(disk)
        worker = Worker(services)
        worker.start()
        try:
            future = worker.submit(inbound_id)
            wait_until(lambda: worker.waiting_since is not None, 30, "the store refusing the verdict")
            with services.sessions() as session:
                inbound = session.get(InboundMessage, inbound_id)
                assert inbound is not None and inbound.outcome == "received" and inbound.verdict is None
                assert session.scalar(select(func.count()).select_from(OutboxItem)) == 0
            assert not future.done()
            filler.unlink()  # space is back
            result = future.result(timeout=60)
        finally:
            worker.stop(timeout=30)
        assert result.outcome == "accepted" and worker.waiting_since is None
        with services.sessions() as session:
            inbound = session.get(InboundMessage, inbound_id)
            assert inbound is not None and inbound.outcome == "accepted" and inbound.attempts == 1
            assert session.scalars(select(OutboxItem.key)).all() == [f"reply:{inbound_id}"]
        engine.dispose()


# ---------------------------------------------------------------------------- relay refusing


class Clock:
    """The outbox sender's clock, moved by the test: an hour passes in a second."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.mark.parametrize("how", ["451 to every message", "connection refused"])
def test_relay_refusing_everything_for_an_hour_backs_off_alerts_once_then_sends_each_item_once(
    tmp_path: Path, relay: Relay, how: str
) -> None:
    services = make_services(tmp_path, f"sqlite:///{tmp_path / 'outbox.sqlite3'}",
                             smtp={"host": relay.host, "port": relay.port, "from": "conventions@ville.gouv.fr",
                                   "timeout_seconds": 5})
    settings = services.settings
    assert settings.smtp is not None
    smtp = settings.smtp
    message_ids = []
    with services.sessions.begin() as session:
        for n in range(5):
            mail = build_mail(settings, to=[f"sgar{n}@bretagne.pref.gouv.fr"], subject=f"Accusé de réception {n}",
                              text="Bonjour,\nVotre bilan est bien arrivé.\n")
            enqueue_outbox(session, key=f"reply:faults-{n}", kind="reply", message_pk=None,
                           recipients=[f"sgar{n}@bretagne.pref.gouv.fr"], cc=[], subject=f"Accusé {n}",
                           raw=mail.raw, mail_message_id=mail.message_id)
            message_ids.append(mail.message_id)
    clock = Clock()
    start = clock.now
    sender = OutboxSender(services.sessions, smtp, logging.getLogger("test.faults"), "faults:1",
                          alert_sink(settings), clock, lease_seconds=600.0)
    if how == "connection refused":
        relay.stop()
    else:
        relay.refuse_all("451 4.3.0 Relais en maintenance")
    tried_at: dict[str, list[float]] = {}
    passes = 0
    while clock.now < start + timedelta(seconds=HOUR):
        before = len(relay.refusals)
        sender.send_due()
        for refused in relay.refused_messages()[before:]:
            tried_at.setdefault(refused.message_id, []).append((clock.now - start).total_seconds())
        wait = sender.next_wakeup()
        assert wait is not None  # something always waits: nothing was given up
        clock.now += timedelta(seconds=max(wait, 1.0))
        passes += 1
    assert relay.received() == []
    with services.sessions() as session:
        items = session.scalars(select(OutboxItem).order_by(OutboxItem.id)).all()
        assert {item.status for item in items} == {"queued"}  # nothing failed, nothing lost
        assert [item.kind for item in items].count("alert") == 1  # one alert, not a storm
        [alert] = [item for item in items if item.kind == "alert"]
        assert "refuse les courriels" in alert.subject and alert.recipients == [ADMIN]
        attempts = sum(item.attempts for item in items)
    # Backoff: retry_initial_seconds doubling up to retry_max_seconds, never hammering the relay.
    assert passes < 20 and attempts <= 5 * 7 + 2
    expected_gaps = [min(smtp.retry_initial_seconds * 2**k, smtp.retry_max_seconds) for k in range(10)]
    for message_id in message_ids if how != "connection refused" else ():
        times = tried_at[message_id]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert gaps == pytest.approx(expected_gaps[:len(gaps)], abs=1.0), (message_id, times)
        assert 5 <= len(times) <= 7
    assert OUTAGE_ALERT_SECONDS < HOUR

    # The relay accepts again: at its next retry everything queued goes out, each item once.
    if how == "connection refused":
        relay.start()
    else:
        relay.accept_all()
    for _ in range(5):
        wait = sender.next_wakeup()
        if wait is None:
            break
        clock.now += timedelta(seconds=wait)
        sender.send_due()
    assert sender.next_wakeup() is None
    assert clock.now - start <= timedelta(seconds=HOUR + smtp.retry_max_seconds)
    counts = relay.message_id_counts()
    assert all(counts[message_id] == 1 for message_id in message_ids), counts
    assert len(counts) == 6 and sum(counts.values()) == 6  # the five replies and the one alert
    alert_mail = message_from_bytes(next(r.data for r in relay.received() if r.rcpt_tos == (ADMIN,)),
                                    policy=policy.default)
    assert "Rien n'est perdu" in alert_mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    with services.sessions() as session:
        assert set(session.scalars(select(OutboxItem.status))) == {"sent"}
