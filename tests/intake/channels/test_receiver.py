"""The embedded SMTP receiver, as a real aiosmtpd server on loopback with smtplib as the client."""

from __future__ import annotations

import smtplib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from intake.pipeline.services import Services
from intake.service.supervisor import run
from store.models import InboundMessage, OutboxItem
from tests.support.net import free_port
from tests.support.pipeline import full_reply_services
from tests.support.settings import make_services, write_config


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


class Running:
    def __init__(self, services: Services, port: int, outbox: Path) -> None:
        self.services, self.port, self.outbox = services, port, outbox

    def send(self, msg: EmailMessage, to: str | None = None) -> dict[str, tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as client:
            return client.send_message(msg, to_addrs=[to or self.services.settings.mailbox_address])

    def count(self, model: type) -> int:
        with self.services.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    port = free_port()
    services = make_services(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}", base="built-in",
                             service={"data_dir": tmp_path}, receiver={"host": "127.0.0.1", "port": port},
                             limits={"max_message_bytes": 200_000}, web={"enabled": False})
    stop = threading.Event()
    thread = threading.Thread(target=run, args=(services,), kwargs={"stop": stop}, daemon=True)
    thread.start()

    def listening() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    wait_for(listening)
    yield Running(services, port, services.settings.outbox_dir)
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive()


def simple_mail(sender: str = "sgar@bretagne.example.org", body: str = "Bonjour", size: int = 0) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "conventions@ville.example.org"
    msg["Subject"] = "Bilan 2013"
    msg["Message-ID"] = f"<{time.monotonic_ns()}@bretagne.example.org>"
    msg.set_content(body + ("x" * size))
    return msg


def test_accepts_mail_for_the_mailbox_stores_it_and_writes_the_reply(running: Running) -> None:
    refused = running.send(simple_mail())
    assert refused == {}
    assert running.count(InboundMessage) == 1
    wait_for(lambda: len(list(running.outbox.glob("*-reply.eml"))) == 1)  # the scheduler may add a digest
    reply = next(running.outbox.glob("*-reply.eml")).read_bytes()
    assert b"Auto-Submitted: auto-replied" in reply
    assert b"sgar@bretagne.example.org" in reply


def test_refuses_other_recipients_never_an_open_relay(running: Running) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as err:
        running.send(simple_mail(), to="someone@elsewhere.example.com")
    code, _ = err.value.recipients["someone@elsewhere.example.com"]
    assert code == 550
    assert running.count(InboundMessage) == 0


def test_enforces_and_announces_size(running: Running) -> None:
    with smtplib.SMTP("127.0.0.1", running.port, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("size")
        assert int(client.esmtp_features["size"]) == 200_000
    with pytest.raises((smtplib.SMTPDataError, smtplib.SMTPSenderRefused)) as err:
        running.send(simple_mail(size=300_000))
    assert err.value.smtp_code == 552
    assert running.count(InboundMessage) == 0


def test_answers_451_when_the_message_cannot_be_stored(running: Running) -> None:
    with running.services.sessions.begin() as session:
        session.execute(text("DROP TABLE message_identities"))
        session.execute(text("ALTER TABLE inbound_messages RENAME TO inbound_messages_away"))
    with pytest.raises(smtplib.SMTPDataError) as err:
        running.send(simple_mail())
    assert err.value.smtp_code == 451


def test_health_reports_channels_and_backlog(running: Running, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from intake.cli.main import main

    health_file = running.services.settings.data_dir / "health.json"
    wait_for(health_file.exists)
    config = write_config(tmp_path, name="health.toml", base="built-in",
                          service={"data_dir": running.services.settings.data_dir})
    assert main(["--config", str(config), "health", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["healthy"] is True
    assert report["channels"]["smtp"] == {"up": True, "listen": f"127.0.0.1:{running.port}"}
    assert set(report["backlog"]) >= {"unprocessed", "failed", "outbox_queued", "in_queue"}


def test_health_without_a_running_service_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from intake.cli.main import main

    config = write_config(tmp_path, name="c.toml", base="built-in", service={"data_dir": tmp_path})
    assert main(["--config", str(config), "health"]) == 1
    assert "service arrêté" in capsys.readouterr().out


def test_outbox_folder_export_is_safe_from_several_threads(tmp_path: Path) -> None:
    from notifier.outbox import export_to_folder

    services = full_reply_services(tmp_path, export=False)  # three replies left queued
    folder = tmp_path / "parallel"
    errors: list[BaseException] = []

    def export() -> None:
        try:
            with services.sessions.begin() as session:
                export_to_folder(session, folder)
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=export) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(list(folder.glob("*.eml"))) == 3 and not list(folder.glob("*.tmp"))
    with services.sessions() as session:
        assert {item.status for item in session.scalars(select(OutboxItem))} == {"written"}
