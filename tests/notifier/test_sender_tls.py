"""The relay over TLS: STARTTLS and implicit TLS, with certificates made by trustme.

The certificate is always verified: a relay signed by the authority named in ``[smtp] ca_file`` gets
the mail; a relay whose certificate does not verify (unknown authority, or another name) gets
nothing, and the item records a clear error instead of being delivered in the clear or blindly.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker

from intake.config.loader import load_settings
from intake.config.settings import SmtpConfig
from intake.service.logs import make_logger
from notifier.outbox import build_mail
from notifier.sender import OutboxSender
from store.db import make_engine, migrate, session_factory
from store.models import OutboxItem
from store.queries.outbox import enqueue_outbox
from tests.support.net import free_port


@dataclass
class TlsRelay:
    port: int
    received: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            self.received.append(bytes(envelope.original_content or b""))
        return "250 2.0.0 OK"


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


def server_context(authority: trustme.CA, name: str = "127.0.0.1") -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert(name).configure_cert(context)
    return context


@pytest.fixture
def starttls_relay(authority: trustme.CA) -> Iterator[TlsRelay]:
    relay = TlsRelay(free_port())
    controller = Controller(relay, hostname="127.0.0.1", port=relay.port,
                            tls_context=server_context(authority), require_starttls=True)
    controller.start()
    yield relay
    controller.stop()


@pytest.fixture
def implicit_tls_relay(authority: trustme.CA) -> Iterator[TlsRelay]:
    relay = TlsRelay(free_port())
    context = server_context(authority)
    client = ssl.create_default_context()
    authority.configure_trust(client)  # aiosmtpd's own start-up check connects as a client
    controller = Controller(relay, hostname="127.0.0.1", port=relay.port, ssl_context=context)
    controller.start()
    yield relay
    controller.stop()


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[DbSession]:
    engine = make_engine(f"sqlite:///{tmp_path / 'tls.sqlite3'}")
    migrate(engine)
    return session_factory(engine)


def deliver(sessions: sessionmaker[DbSession], smtp: SmtpConfig) -> OutboxItem:
    settings = replace(load_settings(None), smtp=smtp)
    with sessions.begin() as session:
        msg = build_mail(settings, to=["sgar@bretagne.example.org"], subject="Accusé de réception", text="Bonjour")
        enqueue_outbox(session, key="reply:tls", kind="reply", message_pk=None,
                       recipients=["sgar@bretagne.example.org"], cc=[], subject="Accusé de réception",
                       raw=msg.raw, mail_message_id=msg.message_id)
    OutboxSender(sessions, smtp, make_logger(), "tls:1").send_due()
    with sessions() as session:
        item = session.scalars(select(OutboxItem)).one()
        session.expunge(item)
        return item


def pem(authority: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "autorite.pem"
    authority.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_a_relay_signed_by_the_configured_authority_gets_the_mail(
        security: str, request: pytest.FixtureRequest, authority: trustme.CA, sessions: sessionmaker[DbSession],
        tmp_path: Path) -> None:
    relay: TlsRelay = request.getfixturevalue("starttls_relay" if security == "starttls" else "implicit_tls_relay")
    smtp = SmtpConfig(host="127.0.0.1", port=relay.port, security=security, sender="conventions@ville.gouv.fr",
                      ca_file=pem(authority, tmp_path), timeout_seconds=5.0)
    item = deliver(sessions, smtp)
    assert item.status == "sent" and len(relay.received) == 1
    assert b"Accus" in relay.received[0]


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_a_relay_whose_certificate_does_not_verify_gets_nothing(
        security: str, request: pytest.FixtureRequest, sessions: sessionmaker[DbSession]) -> None:
    relay: TlsRelay = request.getfixturevalue("starttls_relay" if security == "starttls" else "implicit_tls_relay")
    smtp = SmtpConfig(host="127.0.0.1", port=relay.port, security=security, sender="conventions@ville.gouv.fr",
                      timeout_seconds=5.0)  # no ca_file: the system's authorities do not know trustme's
    item = deliver(sessions, smtp)
    assert relay.received == []
    assert item.status == "queued" and item.attempts == 1  # a temporary failure: retried, never sent blind
    assert "certificat du relais non reconnu" in (item.last_error or "") and "[smtp] ca_file" in (item.last_error or "")
