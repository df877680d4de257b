"""The outbox sender against a real aiosmtpd relay on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import os
import smtplib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from intake.config.loader import load_settings
from intake.config.settings import AlertsConfig, Settings, SmtpConfig
from notifier import sender as sender_module
from notifier.alerts import alert_sink, queue_alert
from notifier.outbox import build_mail
from notifier.sender import OutboxSender, process_alive
from notifier.smtp_client import classify, wire_bytes
from store.db import make_engine, migrate, session_factory
from store.models import OutboxItem
from store.queries.outbox import (
    claim_outbox_items,
    claimable_outbox,
    enqueue_outbox,
    finish_outbox,
    release_dead_claims,
)
from tests.support.relay import Relay

ADMIN = "admin@ville.example.org"
SENDER = "conventions@ville.example.org"
LOG = logging.getLogger("test.sender")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def make_settings(relay: Relay, **smtp: Any) -> Settings:
    config = SmtpConfig(host=relay.host, port=relay.port, sender=SENDER, timeout_seconds=5.0,
                        retry_initial_seconds=0.05, retry_max_seconds=1.0, max_attempts=12)
    return replace(load_settings(None), smtp=replace(config, **smtp), alerts=AlertsConfig((ADMIN,)))


def make_sender(sessions: sessionmaker[Session], settings: Settings, *, instance: str = "test:1",
                clock: Any = None, alert: bool = True) -> OutboxSender:
    assert settings.smtp is not None
    return OutboxSender(sessions, settings.smtp, LOG, instance, alert_sink(settings) if alert else None,
                        clock or (lambda: datetime.now(UTC)), lease_seconds=60.0)


@contextmanager
def running(sender: OutboxSender) -> Iterator[threading.Event]:
    """The sender's run loop in a thread of its own; yields its ``wake`` event; stopped and joined
    at the end, and checked gone."""
    stop, wake = threading.Event(), threading.Event()
    thread = threading.Thread(target=sender.run, args=(stop, wake), daemon=True)
    thread.start()
    try:
        yield wake
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


def enqueue(sessions: sessionmaker[Session], settings: Settings, n: int = 1, *, to: tuple[str, ...] = (
        "sgar@bretagne.example.org",), cc: tuple[str, ...] = (), kind: str = "reply") -> list[int]:
    ids = []
    with sessions.begin() as session:
        for index in range(n):
            subject = f"Votre bilan 2013 – accusé de réception n° {index}"
            msg = build_mail(settings, to=to, cc=cc, subject=subject,
                             text=f"Bonjour,\n.ligne commençant par un point\nÉté {index}\n")
            item_id = enqueue_outbox(session, key=f"{kind}:{index}:{'-'.join(to)}", kind=kind,
                                     message_pk=None, recipients=to, cc=cc, subject=subject,
                                     raw=msg.raw, mail_message_id=msg.message_id)
            assert item_id is not None
            ids.append(item_id)
    return ids


def items(sessions: sessionmaker[Session], kind: str | None = None) -> list[OutboxItem]:
    with sessions() as session:
        query = select(OutboxItem).order_by(OutboxItem.id)
        if kind:
            query = query.where(OutboxItem.kind == kind)
        return list(session.scalars(query))


def item(sessions: sessionmaker[Session], item_id: int) -> OutboxItem:
    with sessions() as session:
        found = session.get(OutboxItem, item_id)
        assert found is not None
        return found


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


@pytest.fixture
def sqlite_sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """For tests about SMTP behaviour only, where the backend does not matter."""
    engine = make_engine(f"sqlite:///{tmp_path / 'sender.sqlite3'}")
    migrate(engine)
    yield session_factory(engine)
    engine.dispose()


# ---------------------------------------------------------------------- delivery


def test_delivers_the_stored_bytes_with_the_right_envelope(sessions: sessionmaker[Session], relay: Relay) -> None:
    settings = make_settings(relay)
    (item_id,) = enqueue(sessions, settings, to=("sgar@bretagne.example.org",), cc=("Chef@Region.example.org",
                                                                                      "sgar@bretagne.example.org"))
    sender = make_sender(sessions, settings)
    assert sender.send_due() == 1
    (got,) = relay.wait_for(1)
    stored = item(sessions, item_id)
    assert got.data == wire_bytes(stored.raw)  # same bytes, CRLF line endings, dot-stuffing undone
    assert got.data.replace(b"\r\n", b"\n") == stored.raw
    assert got.mail_from == SENDER
    assert got.rcpt_tos == ("sgar@bretagne.example.org", "Chef@Region.example.org")  # each address once
    assert "BODY=8BITMIME" in got.mail_options  # the French text is 8-bit
    assert (stored.status, stored.attempts, stored.claimed_by, stored.lease_until) == ("sent", 1, "test:1", None)
    assert stored.sent_at is not None and stored.last_error is None
    assert sender.send_due() == 0
    assert len(relay.received()) == 1


def test_wire_bytes_only_normalises_line_endings() -> None:
    assert wire_bytes(b"a\nb\r\nc\rd\r\n") == b"a\r\nb\r\nc\r\nd\r\n"
    assert wire_bytes(b"\xff\x00.x\r\n") == b"\xff\x00.x\r\n"


def test_relay_down_retries_with_growing_delays_then_delivers_once(
    sessions: sessionmaker[Session], relay: Relay
) -> None:
    settings = make_settings(relay)
    first, *others = enqueue(sessions, settings, 3)
    clock = Clock()
    sender = make_sender(sessions, settings, clock=clock)
    relay.stop()
    delays = []
    for _ in range(4):
        assert sender.send_due() == 1  # one attempt: the batch stops when the relay is unreachable
        stored = item(sessions, first)
        assert stored.status == "queued" and stored.next_attempt_at is not None
        assert "connexion au relais" in (stored.last_error or "")
        delays.append((stored.next_attempt_at - clock.now).total_seconds())
        assert sender.send_due() == 0  # nothing is due yet and the relay is in backoff
        wakeup = sender.next_wakeup()
        assert wakeup is not None and wakeup == pytest.approx(delays[-1], abs=0.01)
        clock.advance(delays[-1] + 0.001)
    assert delays == pytest.approx([0.05, 0.1, 0.2, 0.4], abs=0.005)
    assert item(sessions, first).attempts == 4
    assert [item(sessions, i).attempts for i in others] == [0, 0]  # never tried while the relay was down
    relay.start()
    clock.advance(10)
    assert sender.send_due() == 3
    relay.wait_for(3)
    clock.advance(3600)
    assert sender.send_due() == 0
    assert all(count == 1 for count in relay.message_id_counts().values())
    assert len(relay.received()) == 3
    assert [i.status for i in items(sessions)] == ["sent"] * 3
    assert sender.next_wakeup() is None


def test_relay_that_accepts_the_connection_but_never_answers_is_a_temporary_failure(
    sqlite_sessions: sessionmaker[Session], relay: Relay
) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)
        settings = make_settings(relay, port=silent.getsockname()[1], timeout_seconds=0.3)
        (item_id,) = enqueue(sqlite_sessions, settings)
        assert make_sender(sqlite_sessions, settings).send_due() == 1
    stored = item(sqlite_sessions, item_id)
    assert stored.status == "queued" and stored.attempts == 1 and stored.last_error


def test_451_then_success(sessions: sessionmaker[Session], relay: Relay) -> None:
    settings = make_settings(relay)
    (item_id,) = enqueue(sessions, settings)
    clock = Clock()
    sender = make_sender(sessions, settings, clock=clock)
    relay.fail_next(1, "451 4.3.0 Surcharge, réessayez")
    assert sender.send_due() == 1
    stored = item(sessions, item_id)
    assert stored.status == "queued" and stored.attempts == 1
    assert "451" in (stored.last_error or "")
    assert relay.received() == []
    clock.advance(1)
    assert sender.send_due() == 1
    assert len(relay.wait_for(1)) == 1
    assert item(sessions, item_id).status == "sent"
    assert items(sessions, "alert") == []


def test_550_fails_and_alerts_the_admins_once_never_about_an_alert(
    sessions: sessionmaker[Session], relay: Relay
) -> None:
    settings = make_settings(relay)
    (item_id,) = enqueue(sessions, settings)
    clock = Clock()
    sender = make_sender(sessions, settings, clock=clock)
    relay.fail_next(2, "550 5.7.1 Message refusé")
    assert sender.send_due() == 1
    stored = item(sessions, item_id)
    assert stored.status == "failed" and "550" in (stored.last_error or "")
    (alert,) = items(sessions, "alert")
    assert alert.recipients == [ADMIN] and alert.status == "queued"
    assert stored.subject in alert.subject
    parsed = message_from_bytes(alert.raw, policy=policy.default)
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert isinstance(parsed, EmailMessage)
    body = parsed.get_content()
    assert "n'a pas pu être remis" in body and "sgar@bretagne.example.org" in body and "550" in body
    # the alert itself is refused: it fails, and no alert about the alert is queued
    assert sender.send_due() == 1
    assert item(sessions, alert.id).status == "failed"
    assert len(items(sessions, "alert")) == 1
    assert relay.received() == []


def test_our_sender_refused_by_the_relay_is_an_outage_not_a_failure_of_every_item(
    sessions: sessionmaker[Session], relay: Relay
) -> None:
    """A relay answering 5xx to MAIL FROM refuses our configuration, not one message: nothing fails,
    the sender backs off as for a relay down, and everything goes out once when it accepts again."""
    settings = make_settings(relay)
    ids = enqueue(sessions, settings, 3)
    clock = Clock()
    sender = make_sender(sessions, settings, clock=clock)
    relay.refuse_sender("553 5.7.1 Sender address rejected: not owned by user")
    assert sender.send_due() == 1  # the batch stops at the first refusal, as for a relay down
    first = item(sessions, ids[0])
    error = first.last_error or ""
    assert first.status == "queued" and "553" in error and "[smtp] sender" in error
    assert sender.send_due() == 0  # in backoff
    assert items(sessions, "alert") == []  # no alert per item
    relay.refuse_sender("")
    clock.advance(3600)
    assert sender.send_due() == 3
    relay.wait_for(3)
    assert [i.status for i in items(sessions)] == ["sent"] * 3
    assert all(count == 1 for count in relay.message_id_counts().values())


def test_every_recipient_refused_is_permanent_and_partial_refusal_is_sent(
    sessions: sessionmaker[Session], relay: Relay
) -> None:
    settings = make_settings(relay)
    relay.refuse("inconnu@region.example.org")
    relay.refuse("autre@region.example.org", "550 5.1.1 Boîte inexistante")
    (all_refused,) = enqueue(sessions, settings, to=("inconnu@region.example.org",), cc=("autre@region.example.org",))
    sender = make_sender(sessions, settings, alert=True)
    assert sender.send_due() == 1
    stored = item(sessions, all_refused)
    assert stored.status == "failed" and "inconnu@region.example.org" in (stored.last_error or "")
    (partial,) = enqueue(sessions, settings, to=("sgar@bretagne.example.org",), cc=("inconnu@region.example.org",))
    assert sender.send_due() == 2  # the partial one and the first alert
    assert relay.wait_for(2)
    stored = item(sessions, partial)
    assert stored.status == "sent"
    assert "inconnu@region.example.org" in (stored.last_error or "")
    delivered = [m for m in relay.received() if m.rcpt_tos != (ADMIN,)]
    assert [m.rcpt_tos for m in delivered] == [("sgar@bretagne.example.org",)]
    alerts = items(sessions, "alert")
    assert len(alerts) == 2
    assert "remis en partie" in alerts[1].subject


def test_max_attempts_then_failed(sessions: sessionmaker[Session], relay: Relay) -> None:
    settings = make_settings(relay, max_attempts=3)
    (item_id,) = enqueue(sessions, settings)
    clock = Clock()
    sender = make_sender(sessions, settings, clock=clock)
    relay.fail_next(100, "421 4.7.0 Trop de connexions")
    for expected in ("queued", "queued", "failed"):
        assert sender.send_due() == 1
        assert item(sessions, item_id).status == expected
        clock.advance(5)
    stored = item(sessions, item_id)
    assert stored.attempts == 3 and "abandon après 3 tentatives" in (stored.last_error or "")
    assert len(items(sessions, "alert")) == 1
    assert sender.send_due() == 1  # the alert, refused too, ends failed without another alert
    assert len(items(sessions, "alert")) == 1


def test_two_senders_drain_100_items_each_delivered_exactly_once(db_url: str, relay: Relay) -> None:
    engines = [make_engine(db_url), make_engine(db_url)]
    try:
        factories = [session_factory(e) for e in engines]
        settings = make_settings(relay)
        enqueue(factories[0], settings, 100)
        senders = [make_sender(f, settings, instance=f"host:{n}") for n, f in enumerate(factories)]
        start = threading.Barrier(2)
        errors: list[BaseException] = []

        def drain(sender: OutboxSender) -> None:
            try:
                start.wait()
                while sender.send_due(limit=7) > 0 or sender.next_wakeup() == 0.0:
                    pass
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=drain, args=(s,)) for s in senders]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == [] and not any(t.is_alive() for t in threads)
        received = relay.wait_for(100)
        assert len(received) == 100
        counts = relay.message_id_counts()
        assert len(counts) == 100 and set(counts.values()) == {1}
        stored = items(factories[0])
        assert {i.status for i in stored} == {"sent"} and {i.attempts for i in stored} == {1}
        assert {i.claimed_by for i in stored} <= {"host:0", "host:1"}
    finally:
        for engine in engines:
            engine.dispose()


def test_a_claim_is_won_once(sessions: sessionmaker[Session], relay: Relay) -> None:
    (item_id,) = enqueue(sessions, make_settings(relay))
    now = datetime.now(UTC)
    lease = now + timedelta(seconds=60)
    with sessions.begin() as session:
        assert [i.id for i in claim_outbox_items(session, [item_id], now=now, lease_until=lease, instance="a")] \
            == [item_id]
    with sessions.begin() as session:
        assert claim_outbox_items(session, [item_id], now=now, lease_until=lease, instance="b") == []
        assert claimable_outbox(session, now) == []
    with sessions.begin() as session:  # once the lease has expired, another sender may take it
        later = lease + timedelta(seconds=1)
        assert claimable_outbox(session, later) == [item_id]
        [taken] = claim_outbox_items(session, [item_id], now=later, lease_until=later, instance="b")
        assert (taken.id, taken.claimed_by, taken.attempts) == (item_id, "b", 2)
    with sessions.begin() as session:  # "a" lost its claim: its late outcome is not recorded
        assert not finish_outbox(session, item_id, instance="a", values={"status": "sent"})
    assert (item(sessions, item_id).claimed_by, item(sessions, item_id).attempts) == ("b", 2)


def test_expired_lease_is_taken_again_unexpired_left_alone(sessions: sessionmaker[Session], relay: Relay) -> None:
    settings = make_settings(relay)
    expired, held = enqueue(sessions, settings, 2)
    clock = Clock()
    with sessions.begin() as session:
        for item_id, lease in ((expired, clock.now - timedelta(seconds=1)), (held, clock.now + timedelta(seconds=60))):
            session.execute(update(OutboxItem).where(OutboxItem.id == item_id).values(
                status="sending", lease_until=lease, claimed_by="dead-host:42", attempts=1))
    sender = make_sender(sessions, settings, clock=clock)
    assert sender.send_due() == 1
    (got,) = relay.wait_for(1)
    assert got.data == wire_bytes(item(sessions, expired).raw)
    assert (item(sessions, expired).status, item(sessions, expired).attempts) == ("sent", 2)
    assert (item(sessions, held).status, item(sessions, held).claimed_by) == ("sending", "dead-host:42")
    assert sender.next_wakeup() == pytest.approx(60, abs=1)
    clock.advance(61)
    assert sender.send_due() == 1
    assert len(relay.wait_for(2)) == 2 and item(sessions, held).status == "sent"


def test_an_item_handed_to_the_relay_by_a_sender_that_died_is_resent_with_the_same_message_id(
    sessions: sessionmaker[Session], relay: Relay
) -> None:
    """Never lost (docs/reliability.md): whether the relay took an item its sender handed over just
    before dying is unknown, so it is resent byte for byte under the same Message-ID, and the admins
    are told; an item still held by a living sender is left alone until its lease runs out."""
    settings = make_settings(relay)
    handed, not_handed, alive = enqueue(sessions, settings, 3)
    clock = Clock()
    with sessions.begin() as session:
        for item_id, owner, handed_over, lease in (
            (handed, "test:999999", clock.now, clock.now + timedelta(seconds=600)),  # dead pid, same host
            (not_handed, "test:999999", None, clock.now + timedelta(seconds=600)),
            (alive, f"test:{os.getpid()}", clock.now, clock.now + timedelta(seconds=600)),  # still running
        ):
            session.execute(update(OutboxItem).where(OutboxItem.id == item_id).values(
                status="sending", lease_until=lease, claimed_by=owner, attempts=1, handed_over_at=handed_over))
    with sessions.begin() as session:  # what serve does at start for its own dead incarnations
        assert release_dead_claims(session, "test", process_alive) == [not_handed]
    sender = make_sender(sessions, settings, clock=clock, instance="test:1")
    assert sender.send_due() == 3  # the released item, the one in doubt and the alert about it
    assert item(sessions, handed).status == "sent" and item(sessions, not_handed).status == "sent"
    assert item(sessions, alive).status == "sending"  # its sender may still be talking to the relay
    [alert] = items(sessions, "alert")
    assert "Remise incertaine" in alert.subject and item(sessions, handed).subject in alert.subject
    received = {r.message_id: r.data for r in relay.wait_for(3)}
    assert set(received) == {item(sessions, i).mail_message_id for i in (handed, not_handed)} | {
        alert.mail_message_id}
    stored = item(sessions, handed)
    assert received[stored.mail_message_id].replace(b"\r\n", b"\n") == stored.raw  # the very same bytes
    clock.advance(601)  # the living sender's lease runs out without news: in doubt as well, resent
    sender.send_due()
    assert item(sessions, alive).status == "sent"
    counts = relay.message_id_counts()
    assert counts[item(sessions, alive).mail_message_id] == 1 and counts[stored.mail_message_id] == 1
    assert len(items(sessions, "alert")) == 2


def test_a_sender_that_lost_its_claim_never_completes_the_message(
    sessions: sessionmaker[Session], relay: Relay
) -> None:
    settings = make_settings(relay)
    (item_id,) = enqueue(sessions, settings)

    def steal(_address: str) -> None:  # our lease "expired" mid-transaction and another sender took it
        with sessions.begin() as session:
            session.execute(update(OutboxItem).where(OutboxItem.id == item_id).values(claimed_by="thief:1"))

    relay.on_rcpt = steal
    assert make_sender(sessions, settings).send_due() == 1
    relay.on_rcpt = None
    stored = item(sessions, item_id)
    assert (stored.status, stored.claimed_by) == ("sending", "thief:1")  # the thief's claim is untouched
    with smtplib.SMTP(relay.host, relay.port, timeout=5) as probe:  # the relay is still serving
        probe.noop()
    assert relay.received() == []  # DATA was never ended by a dot: nothing was accepted


def test_run_wakes_on_wake_and_stops_on_stop(sessions: sessionmaker[Session], relay: Relay,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings(relay)
    sender = make_sender(sessions, settings)
    idle = threading.Event()
    original = sender.next_wakeup

    def spy() -> float | None:
        result = original()
        if result is None:
            idle.set()  # nothing waits: the loop now sleeps for MAX_IDLE_SECONDS unless woken
        return result

    monkeypatch.setattr(sender, "next_wakeup", spy)
    with running(sender) as wake:
        assert idle.wait(10)
        assert sender_module.MAX_IDLE_SECONDS >= 30
        enqueue(sessions, settings)
        wake.set()
        relay.wait_for(1, timeout=10)  # far sooner than the idle timeout: the wake did it
    assert [i.status for i in items(sessions)] == ["sent"]


def test_run_survives_an_unexpected_error(
    sqlite_sessions: sessionmaker[Session], relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sender_module, "ERROR_BACKOFF_SECONDS", 0.05)
    settings = make_settings(relay)
    sender = make_sender(sqlite_sessions, settings)
    original = sender.send_due
    calls: list[int] = []

    def flaky(limit: int = 50, *, stop: threading.Event | None = None, keep_relay: bool = False,
              care: bool = True) -> int:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("base de données indisponible")
        return original(limit, stop=stop, keep_relay=keep_relay, care=care)

    monkeypatch.setattr(sender, "send_due", flaky)
    enqueue(sqlite_sessions, settings)
    with running(sender):
        relay.wait_for(1, timeout=10)
    assert len(calls) >= 2


def test_run_sends_a_burst_over_one_smtp_session(
    sqlite_sessions: sessionmaker[Session], relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replies queued one after the other while the sender runs go out over the session it keeps
    open (as Postfix's connection cache), instead of one SMTP session per reply."""
    monkeypatch.setattr(sender_module, "RELAY_KEEP_SECONDS", 60.0)
    settings = make_settings(relay)
    sender = make_sender(sqlite_sessions, settings)
    with running(sender) as wake:
        for n in range(1, 4):
            enqueue(sqlite_sessions, settings, to=(f"sgar{n}@bretagne.example.org",))
            wake.set()
            relay.wait_for(n)
    assert relay.greetings == 1
    assert sender._relay.idle_seconds() is None  # ended (QUIT) when the sender stopped


def test_run_ends_its_smtp_session_once_the_outbox_is_quiet(
    sqlite_sessions: sessionmaker[Session], relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sender_module, "RELAY_KEEP_SECONDS", 0.1)
    settings = make_settings(relay)
    sender = make_sender(sqlite_sessions, settings)
    enqueue(sqlite_sessions, settings)
    with running(sender) as wake:
        relay.wait_for(1)
        deadline = time.monotonic() + 10
        while sender._relay.idle_seconds() is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sender._relay.idle_seconds() is None  # closed while the thread still runs
        enqueue(sqlite_sessions, settings, to=("autre@bretagne.example.org",))
        wake.set()
        relay.wait_for(2)
    assert relay.greetings == 2  # a new session for the mail queued after the quiet spell


def test_send_due_does_nothing_once_stop_is_set(sqlite_sessions: sessionmaker[Session], relay: Relay) -> None:
    settings = make_settings(relay)
    enqueue(sqlite_sessions, settings, 2)
    stop = threading.Event()
    stop.set()
    assert make_sender(sqlite_sessions, settings).send_due(stop=stop) == 0
    assert [i.status for i in items(sqlite_sessions)] == ["queued", "queued"]



def test_items_claimed_together_but_not_tried_before_a_stop_go_back_to_the_queue_at_once(
    sessions: sessionmaker[Session], relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sender claims several items in one transaction; those it did not try when told to stop
    are queued again (not left claimed until their lease expires), their claim not counted."""
    settings = make_settings(relay)
    enqueue(sessions, settings, 5)
    stop = threading.Event()
    sender = make_sender(sessions, settings)
    attempt = sender._attempt

    def attempt_then_stop(claimed: Any, connection: Any) -> Any:
        stop.set()
        return attempt(claimed, connection)

    monkeypatch.setattr(sender, "_attempt", attempt_then_stop)
    assert sender.send_due(stop=stop) == 1
    stored = items(sessions)
    assert [i.status for i in stored] == ["sent"] + ["queued"] * 4
    assert [i.attempts for i in stored] == [1, 0, 0, 0, 0]
    assert all(i.claimed_by is None and i.lease_until is None for i in stored[1:])
    monkeypatch.undo()
    assert sender.send_due() == 4
    relay.wait_for(5)
    assert all(count == 1 for count in relay.message_id_counts().values())

# ---------------------------------------------------------------------- hostile input, relay settings


def test_newline_in_a_recipient_never_reaches_the_relay(sqlite_sessions: sessionmaker[Session], relay: Relay) -> None:
    settings = make_settings(relay)
    with sqlite_sessions.begin() as session:
        raw = build_mail(settings, to=["sgar@bretagne.example.org"], subject="x", text="x").raw
        session.add(OutboxItem(key="evil", kind="reply", recipients=["a@b.fr>\r\nRCPT TO:<victim@example.org"],
                               cc=[], subject="x", raw=raw, mail_message_id="<x@y>", status="queued", attempts=0))
    assert make_sender(sqlite_sessions, settings).send_due() == 1
    (stored,) = items(sqlite_sessions, "reply")
    assert stored.status == "failed" and "adresse invalide" in (stored.last_error or "")
    assert "\n" not in (stored.last_error or "")
    assert relay.received() == []
    # with one valid address beside it, the valid one is served and the other reported
    with sqlite_sessions.begin() as session:
        good = OutboxItem(key="half", kind="reply", recipients=["sgar@bretagne.example.org"], cc=["x@y.fr\r\nDATA"],
                          subject="x", raw=raw, mail_message_id="<z@y>", status="queued", attempts=0)
        session.add(good)
        session.flush()
        item_id = good.id
    assert make_sender(sqlite_sessions, settings).send_due() == 2  # the item and the first alert
    assert item(sqlite_sessions, item_id).status == "sent"
    assert "adresse invalide" in (item(sqlite_sessions, item_id).last_error or "")
    assert [m.rcpt_tos for m in relay.wait_for(2)] == [(ADMIN,), ("sgar@bretagne.example.org",)]


def test_item_without_recipient_fails(sqlite_sessions: sessionmaker[Session], relay: Relay) -> None:
    settings = make_settings(relay)
    with sqlite_sessions.begin() as session:
        session.add(OutboxItem(key="empty", kind="reminder", recipients=[" "], cc=[], subject="x", raw=b"x\n",
                               mail_message_id="<x@y>", status="queued", attempts=0))
    assert make_sender(sqlite_sessions, settings).send_due() == 1
    stored = items(sqlite_sessions, "reminder")[0]
    assert (stored.status, stored.last_error) == ("failed", "aucun destinataire")
    assert len(items(sqlite_sessions, "alert")) == 1


def test_non_ascii_recipient_uses_smtputf8(sqlite_sessions: sessionmaker[Session], relay: Relay) -> None:
    settings = make_settings(relay)
    enqueue(sqlite_sessions, settings, to=("élodie@région.example.org",))
    assert make_sender(sqlite_sessions, settings).send_due() == 1
    (got,) = relay.wait_for(1)
    assert got.rcpt_tos == ("élodie@région.example.org",) and "SMTPUTF8" in got.mail_options


def test_login_with_username_and_password(sqlite_sessions: sessionmaker[Session], tmp_path: Path) -> None:
    server = Relay(credentials=("conventions", "s3cret"))
    server.start()
    try:
        good = make_settings(server, username="conventions", password="s3cret")
        enqueue(sqlite_sessions, good)
        assert make_sender(sqlite_sessions, good).send_due() == 1
        server.wait_for(1)
        assert server.logins == ["conventions"]
        bad = make_settings(server, username="conventions", password="wrong", timeout_seconds=1.0)
        (item_id,) = enqueue(sqlite_sessions, bad, to=("autre@bretagne.example.org",))
        assert make_sender(sqlite_sessions, bad).send_due() == 1
        stored = item(sqlite_sessions, item_id)
        assert stored.status == "queued" and "session refusée" in (stored.last_error or "")
        assert server.logins == ["conventions"] and len(server.received()) == 1
    finally:
        server.stop()


@pytest.mark.parametrize(("error", "status"), [
    (smtplib.SMTPDataError(451, b"later"), "temporary"),
    (smtplib.SMTPDataError(554, b"no"), "permanent"),
    (smtplib.SMTPSenderRefused(421, b"bye", SENDER), "temporary"),
    (smtplib.SMTPSenderRefused(553, b"not yours", SENDER), "temporary"),
    (smtplib.SMTPSenderRefused(552, b"too big", SENDER), "permanent"),
    (smtplib.SMTPRecipientsRefused({"a@b.fr": (550, b"no"), "c@d.fr": (553, b"no")}), "permanent"),
    (smtplib.SMTPRecipientsRefused({"a@b.fr": (550, b"no"), "c@d.fr": (450, b"busy")}), "temporary"),
    (smtplib.SMTPServerDisconnected("gone"), "temporary"),
    (ConnectionRefusedError(111, "refused"), "temporary"),
    (TimeoutError("timed out"), "temporary"),
    (smtplib.SMTPNotSupportedError("SMTPUTF8"), "permanent"),
    (ValueError("prohibited newline"), "permanent"),
])
def test_classify(error: BaseException, status: str) -> None:
    assert classify(error).status == status


# ---------------------------------------------------------------------- alerts


def test_queue_alert_is_idempotent_per_key_and_needs_recipients(
    sqlite_sessions: sessionmaker[Session], relay: Relay
) -> None:
    settings = make_settings(relay)
    with sqlite_sessions.begin() as session:
        first = queue_alert(session, settings, key="relay", subject="Relais injoignable", text="En panne.")
        again = queue_alert(session, settings, key="relay", subject="Relais injoignable", text="Autre texte")
        nobody_listed = replace(settings, alerts=AlertsConfig(), coordinators=())
        nobody = queue_alert(session, nobody_listed, key="x", subject="s", text="t")
        assert first is not None and again is None and nobody is None
        item = session.get_one(OutboxItem, first)
        assert (item.key, item.kind, item.recipients) == ("alert:relay", "alert", [ADMIN])
        assert b"Auto-Submitted: auto-generated" in item.raw
    sink = alert_sink(settings)
    for _ in range(2):
        with sqlite_sessions.begin() as session:
            sink(session, "Courriel non remis", "Motif : 550")
    assert len(items(sqlite_sessions, "alert")) == 2


def test_long_message_ids_are_threaded_as_they_are(tmp_path: Path) -> None:
    """A region's long Message-ID comes back in In-Reply-To and References exactly, on one line:
    the classic generator would have put it on a line of its own, read back with a leading space."""
    from tests.support.settings import make_settings as tests_settings

    theirs = "<bench-burst-123-1234567890123456@provence-alpes-cote-d-azur.pref.gouv.fr>"
    older = [f"<older-{n}-{'x' * 80}@example.org>" for n in range(12)]
    msg = build_mail(tests_settings(tmp_path), to=["sgar@paca.pref.gouv.fr"], subject="Accusé de réception",
                     text="Bonjour", in_reply_to=theirs, references=older)
    raw = msg.raw
    parsed = message_from_bytes(raw, policy=policy.default)
    assert str(parsed["In-Reply-To"]) == theirs
    references = str(parsed["References"]).split()
    assert references[-1] == theirs and references[:-1] == older[-len(references) + 1:]
    assert max(len(line) for line in raw.split(b"\n")) <= 998
    assert str(parsed["Subject"]) == "Accusé de réception"
