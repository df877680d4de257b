"""A real SMTP relay for tests: aiosmtpd on a free loopback port that records what it receives.

The ``relay`` fixture (this module is a pytest plugin, loaded by tests/conftest.py) gives a running
one::

    def test_x(relay: Relay) -> None:
        relay.fail_next(2, "451 4.3.0 Essayez plus tard")   # the next two messages get 451 at DATA
        relay.refuse("nobody@example.org", "550 5.1.1 Inconnu")  # this recipient is refused at RCPT
        relay.stop(); ...; relay.start()                     # down for a while, back on the same port
        relay.refuse_all("451 4.3.0 Plus tard"); ...; relay.accept_all()  # every message refused at DATA
        relay.wait_for(1)                                    # blocks until one message was accepted

Every accepted message is kept as a :class:`Received` (envelope and bytes as received, with the
dot-stuffing of the SMTP transport undone). ``Relay(credentials=(user, password))`` offers AUTH
(PLAIN/LOGIN, allowed without TLS on loopback) and records each successful login in ``logins``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import message_from_bytes
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support.net import free_port


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    mail_options: tuple[str, ...]

    @property
    def message_id(self) -> str:
        return str(message_from_bytes(self.data).get("Message-ID", ""))


class _Handler:
    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        with self.relay.lock:
            self.relay.greetings += 1
        return responses

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          mail_options: list[str]) -> str:
        with self.relay.lock:
            answer = self.relay.sender_answer
        if answer:
            return answer
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if self.relay.on_rcpt is not None:
            self.relay.on_rcpt(address)
        with self.relay.lock:
            answer = self.relay.refused.get(address.lower())
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.relay.lock:
            raw = envelope.original_content or b""
            if self.relay.failures or self.relay.refusing:
                answer = self.relay.failures.pop(0) if self.relay.failures else self.relay.refusing
                self.relay.refusals.append(Received(
                    mail_from=str(envelope.mail_from), rcpt_tos=tuple(envelope.rcpt_tos),
                    data=raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogateescape"),
                    mail_options=tuple(envelope.mail_options),
                ))
                return answer
            self.relay.messages.append(Received(
                mail_from=str(envelope.mail_from), rcpt_tos=tuple(envelope.rcpt_tos),
                data=raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogateescape"),
                mail_options=tuple(envelope.mail_options),
            ))
            self.relay.changed.notify_all()
        return "250 2.0.0 OK: queued"


class Relay:
    """An aiosmtpd relay on 127.0.0.1 that can fail on demand and be stopped and restarted."""

    def __init__(self, port: int | None = None, *, credentials: tuple[str, str] | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.credentials = credentials
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.messages: list[Received] = []
        self.failures: list[str] = []  # answers for the next messages at DATA, in order
        self.refused: dict[str, str] = {}  # recipient (lower case) -> answer at RCPT
        self.refusing = ""  # when set, the answer at DATA to every message (refuse_all)
        self.refusals: list[Received] = []  # every message refused at DATA, in order
        self.sender_answer = ""  # when set, the answer to every MAIL FROM (refuse_sender)
        self.logins: list[str] = []
        self.greetings = 0  # EHLO commands received: about one per SMTP session (two with STARTTLS)
        self.on_rcpt: Callable[[str], None] | None = None  # called (in the relay's thread) at each RCPT
        self._controller: Controller | None = None

    # ------------------------------------------------------------------ control

    def start(self) -> None:
        if self._controller is not None:
            return
        kwargs: dict[str, Any] = {"enable_SMTPUTF8": True}
        if self.credentials is not None:
            kwargs |= {"auth_require_tls": False, "authenticator": self._authenticate}
        controller = Controller(_Handler(self), hostname=self.host, port=self.port, **kwargs)
        deadline = time.monotonic() + 10
        while True:  # the port may linger briefly after a stop
            try:
                controller.start()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self._controller = controller

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def fail_next(self, count: int, answer: str = "451 4.3.0 Relais momentanément indisponible") -> None:
        """Answer ``answer`` (e.g. a 451 or 550 line) at DATA to the next ``count`` messages."""
        with self.lock:
            self.failures.extend([answer] * count)

    def refuse_all(self, answer: str = "451 4.3.0 Relais momentanément indisponible") -> None:
        """Answer ``answer`` at DATA to every message until :meth:`accept_all` (each one is kept in
        ``refusals``)."""
        with self.lock:
            self.refusing = answer

    def accept_all(self) -> None:
        with self.lock:
            self.refusing = ""

    def refuse_sender(self, answer: str = "553 5.7.1 Adresse d'expédition refusée") -> None:
        """Answer ``answer`` to every MAIL FROM (e.g. a relay that no longer lets us use our sender
        address); ``refuse_sender("")`` accepts again."""
        with self.lock:
            self.sender_answer = answer

    def refused_messages(self) -> list[Received]:
        with self.lock:
            return list(self.refusals)

    def refuse(self, address: str, answer: str = "550 5.1.1 Destinataire inconnu") -> None:
        """Answer ``answer`` to RCPT TO for this recipient, until :meth:`accept` is called."""
        with self.lock:
            self.refused[address.lower()] = answer

    def accept(self, address: str) -> None:
        with self.lock:
            self.refused.pop(address.lower(), None)

    # ------------------------------------------------------------------ inspection

    def received(self) -> list[Received]:
        with self.lock:
            return list(self.messages)

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        """Block until at least ``count`` messages were accepted; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while len(self.messages) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"relay got {len(self.messages)} message(s), expected {count}")
                self.changed.wait(remaining)
            return list(self.messages)

    def message_id_counts(self) -> Counter[str]:
        return Counter(message.message_id for message in self.received())

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      auth_data: Any) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and self.credentials is not None
            and (auth_data.login.decode(), auth_data.password.decode()) == self.credentials
        )
        if ok:
            with self.lock:
                self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)


@pytest.fixture
def relay() -> Iterator[Relay]:
    """A running relay on a free loopback port, stopped after the test."""
    server = Relay()
    server.start()
    yield server
    server.stop()
