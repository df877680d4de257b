"""The IMAP watcher against a real Dovecot: IDLE, polling, catch-up, restarts, crashes, bad mail."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from intake.channels.imap import FETCH_FAILED, MAX_FETCH_ATTEMPTS, ImapWatcher
from intake.config.settings import ImapConfig
from intake.pipeline import flow
from intake.pipeline.journey import Delivery, Journey, Result
from intake.pipeline.services import Services
from intake.pipeline.steps.extract import extract
from store.models import InboundMessage
from tests.support.dovecot import Dovecot
from tests.support.pipeline import outbox
from tests.support.settings import make_services
from tests.support.watcher import PROCESSED, Running, imap_config, mail, moved, rows, sqlite_services, wait_for

# ---------------------------------------------------------------------------- IDLE, polling


def test_message_appended_during_idle_is_processed_and_moved_within_seconds(
    dovecot: Dovecot, tmp_path: Path, db_url: str
) -> None:
    services = make_services(tmp_path, db_url)
    seen: list[Result] = []
    watcher = ImapWatcher(services, imap_config(dovecot), on_processed=seen.append)
    raw = mail(workbook=True)
    with Running(watcher):
        assert watcher.health()["idle_supported"] is True
        time.sleep(0.3)  # well into IDLE
        appended_at = datetime.now(UTC)
        dovecot.append(raw)
        elapsed = wait_for(lambda: len(outbox(services)) == 1 and moved(dovecot, 1)())
    assert elapsed < 5.0
    assert [r.outcome for r in seen] == ["accepted"]
    [row] = rows(services)
    assert row.raw == raw and row.channel == "imap" and row.outcome == "accepted"
    assert (row.imap_folder, row.imap_uid) == ("INBOX", 1)
    # The reception time is the server's INTERNALDATE, not the 2014 Date header.
    assert abs(row.received_at - appended_at) < timedelta(seconds=5)
    assert list(dovecot.fetch(PROCESSED).values()) == [raw]
    [item] = outbox(services)
    assert item.message_pk == row.id and item.kind == "reply"
    # The folder name is stored in modified UTF-7 (RFC 3501), as any IMAP client expects.
    assert (dovecot.root / "mail" / dovecot.user / ".Trait&AOk-s").is_dir()
    health = watcher.health()
    assert health["connected"] is False and health["backlog"] == 0 and health["last_error"] is None


def test_burst_during_idle_is_processed_without_waiting_for_the_idle_reissue(
    dovecot: Dovecot, tmp_path: Path
) -> None:
    """Mail arriving while the watcher works is announced in the untagged EXISTS of a command
    response, which the client library swallows; IDLE will not announce it again. The watcher
    must look once more before idling, or these messages wait for the next IDLE re-issue."""
    services = sqlite_services(tmp_path)
    watcher = ImapWatcher(services, imap_config(dovecot, idle_seconds=600.0))
    with Running(watcher):
        time.sleep(0.3)
        for n in range(20):
            dovecot.append(mail(subject=f"Envoi {n}", workbook=True))
        wait_for(moved(dovecot, 20), timeout=60.0)
    assert len(rows(services)) == 20


def test_messages_already_there_are_caught_up_in_order(dovecot: Dovecot, tmp_path: Path) -> None:
    services = sqlite_services(tmp_path)
    raws = [mail(subject=f"Bilan {n}") for n in range(3)]
    for raw in raws:
        dovecot.append(raw)
    watcher = ImapWatcher(services, imap_config(dovecot))
    try:
        results = watcher.sync_once()
    finally:
        watcher.close()
    assert [r.outcome for r in results] == ["rejected"] * 3
    assert [row.raw for row in rows(services)] == raws
    assert [row.imap_uid for row in rows(services)] == [1, 2, 3]
    assert len(outbox(services)) == 3
    assert moved(dovecot, 3)()
    assert watcher.health()["backlog"] == 3


def test_polling_when_the_server_has_no_idle(dovecot_no_idle: Dovecot, tmp_path: Path) -> None:
    services = sqlite_services(tmp_path)
    watcher = ImapWatcher(services, imap_config(dovecot_no_idle, poll_seconds=0.3))
    with Running(watcher):
        assert watcher.health()["idle_supported"] is False
        dovecot_no_idle.append(mail())
        assert wait_for(lambda: len(outbox(services)) == 1 and moved(dovecot_no_idle, 1)()) < 5.0


def test_server_without_move_nor_uidplus_gets_copy_and_expunge(dovecot_minimal: Dovecot, tmp_path: Path) -> None:
    services = sqlite_services(tmp_path)
    raws = [mail(subject="un"), mail(subject="deux")]
    for raw in raws:
        dovecot_minimal.append(raw)
    watcher = ImapWatcher(services, imap_config(dovecot_minimal))
    try:
        assert [r.outcome for r in watcher.sync_once()] == ["rejected", "rejected"]
        assert watcher.health()["idle_supported"] is False
    finally:
        watcher.close()
    with dovecot_minimal.client() as client:  # expunged, not merely flagged \Deleted
        assert client.select_folder("INBOX")[b"EXISTS"] == 0
    assert sorted(dovecot_minimal.fetch(PROCESSED).values()) == sorted(raws)
    assert len(outbox(services)) == 2


# ---------------------------------------------------------------------------- batches (several lanes)


@contextlib.contextmanager
def lanes_of(services: Services, config: ImapConfig, depth: int = 4) -> Iterator[tuple[ImapWatcher, list[int]]]:
    """A watcher handing messages to a pool of two threads (as serve's worker with two lanes), and
    the size of each batch it stored."""
    batches: list[int] = []
    receive_all = flow.receive_all

    def recording(services: Services, deliveries: Sequence[Delivery]) -> list[int | None]:
        batches.append(len(deliveries))
        return receive_all(services, deliveries)

    with ThreadPoolExecutor(2) as pool, pytest.MonkeyPatch.context() as patch:
        patch.setattr(flow, "receive_all", recording)

        def submit(inbound_id: int, key: str | None) -> Future[Result]:
            return pool.submit(flow.process, services, inbound_id)

        yield ImapWatcher(services, config, submit=submit, depth=depth, backoff_initial=0.05, backoff_max=0.1), batches


def test_with_several_lanes_messages_are_fetched_stored_and_moved_in_batches_in_order(
    dovecot: Dovecot, tmp_path: Path
) -> None:
    services = sqlite_services(tmp_path)
    raws = [mail(subject=f"Bilan {n}") for n in range(10)]
    for raw in raws:
        dovecot.append(raw)
    with lanes_of(services, imap_config(dovecot)) as (watcher, batches):
        try:
            results = watcher.sync_once()
        finally:
            watcher.close()
    assert [r.outcome for r in results] == ["rejected"] * 10
    assert [row.raw for row in rows(services)] == raws  # stored in the order of the folder
    assert [row.imap_uid for row in rows(services)] == list(range(1, 11))
    assert sum(batches) == 10 and batches[0] == 4 and max(batches) > 1  # one transaction per batch
    assert len(outbox(services)) == 10 and moved(dovecot, 10)()


# ---------------------------------------------------------------------------- faults


def test_server_restart_during_idle_reconnects_and_catches_up(
    dovecot: Dovecot, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    services = sqlite_services(tmp_path)
    watcher = ImapWatcher(services, imap_config(dovecot), backoff_initial=0.1, backoff_max=0.5)
    with Running(watcher), caplog.at_level(logging.WARNING, logger=services.log.name):
        services.log.propagate = True
        try:
            dovecot.append(mail(subject="avant"))
            wait_for(lambda: len(outbox(services)) == 1)
            time.sleep(0.3)
            dovecot.restart()
            dovecot.append(mail(subject="après"))
            wait_for(lambda: len(outbox(services)) == 2 and moved(dovecot, 2)(), timeout=15)
            assert watcher.health()["connected"] is True
        finally:
            services.log.propagate = False
    assert "reconnecting" in caplog.text
    assert [row.outcome for row in rows(services)] == ["rejected", "rejected"]


def test_message_stored_before_a_crash_is_moved_without_a_second_reply(
    dovecot: Dovecot, tmp_path: Path, db_url: str
) -> None:
    services = make_services(tmp_path, db_url)
    processed, unprocessed = mail(subject="traité"), mail(subject="reçu seulement")
    uid_processed, uid_unprocessed = dovecot.append(processed), dovecot.append(unprocessed)
    uidvalidity = dovecot.uidvalidity()

    def delivery(raw: bytes, uid: int) -> Delivery:
        return Delivery(raw=raw, received_at=datetime.now(UTC), channel="imap", imap_folder="INBOX",
                        imap_uidvalidity=uidvalidity, imap_uid=uid)

    # Killed after process (reply queued) but before the move; and after receive only.
    flow.process(services, flow.receive(services, delivery(processed, uid_processed)))
    flow.receive(services, delivery(unprocessed, uid_unprocessed))
    assert len(outbox(services)) == 1

    watcher = ImapWatcher(services, imap_config(dovecot))
    try:
        results = watcher.sync_once()
    finally:
        watcher.close()
    assert [r.outcome for r in results] == ["rejected", "rejected"]
    assert len(rows(services)) == 2  # nothing stored twice
    assert len(outbox(services)) == 2  # one reply each, never two
    assert moved(dovecot, 2)()


def test_same_message_appended_twice_gets_one_reply(dovecot: Dovecot, tmp_path: Path, db_url: str) -> None:
    services = make_services(tmp_path, db_url)
    raw = mail()
    dovecot.append(raw)
    dovecot.append(raw)
    watcher = ImapWatcher(services, imap_config(dovecot))
    try:
        results = watcher.sync_once()
    finally:
        watcher.close()
    assert [r.outcome for r in results] == ["rejected", "duplicate"]
    assert len(outbox(services)) == 1
    assert moved(dovecot, 2)()


def test_message_that_breaks_the_parser_is_stored_failed_and_the_next_is_processed(
    dovecot: Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = sqlite_services(tmp_path)

    def exploding(journey: Journey, services: Services) -> None:
        if journey.mail is not None and "EXPLOSE" in journey.mail.subject:
            raise ValueError("parser exploded")
        extract(journey, services)

    steps = tuple(replace(s, run=exploding) if s.name == "extract" else s for s in flow.STEPS)
    monkeypatch.setattr(flow, "STEPS", steps)
    bad, good = mail(subject="EXPLOSE"), mail(subject="normal")
    dovecot.append(bad)
    dovecot.append(good)
    watcher = ImapWatcher(services, imap_config(dovecot))
    try:
        results = watcher.sync_once()
    finally:
        watcher.close()
    assert [r.outcome for r in results] == ["failed", "rejected"]
    failed, ok = rows(services)
    assert failed.raw == bad and failed.outcome == "failed" and "parser exploded" in (failed.error or "")
    assert ok.raw == good
    assert [o.kind for o in outbox(services)] == ["alert", "reply"]  # the admins told of the failure
    assert moved(dovecot, 2)()  # the failed one is safe in the store: reprocessed from there


def test_unreadable_message_is_retried_then_stored_failed_and_kept(dovecot: Dovecot, tmp_path: Path) -> None:
    services = sqlite_services(tmp_path)
    dovecot.append(mail(subject="illisible"))
    maildir = dovecot.root / "mail" / dovecot.user
    [path] = [*maildir.glob("new/*"), *maildir.glob("cur/*")]
    path.chmod(0)  # Dovecot (running as nobody) cannot read it: it answers the FETCH with BYE
    dovecot.append(mail(subject="lisible"))
    watcher = ImapWatcher(services, imap_config(dovecot), backoff_initial=0.05, backoff_max=0.1)

    def failed_rows() -> list[InboundMessage]:
        return [row for row in rows(services) if row.outcome == "failed"]

    with Running(watcher):
        wait_for(lambda: len(outbox(services)) == 2 and len(failed_rows()) == 1)
        time.sleep(1.0)  # remembered in the store: neither retried nor stored again
        assert sorted(o.kind for o in outbox(services)) == ["alert", "reply"]  # the admins are told
        [failed] = failed_rows()
        assert len(rows(services)) == 2
        assert watcher.health()["backlog"] == 1 and watcher.health()["connected"] is True
    assert failed.imap_uid == 1 and failed.raw == b"" and failed.channel == "imap"
    assert (failed.outcome_reason or "").startswith(FETCH_FAILED)
    assert f"{MAX_FETCH_ATTEMPTS} tentatives" in (failed.error or "")
    assert dovecot.uids("INBOX") == [1]  # never moved nor deleted: an administrator looks at it
    assert len(dovecot.uids(PROCESSED)) == 1  # the message behind it was not blocked


def test_uidvalidity_change_never_answers_twice(
    dovecot: Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    services = sqlite_services(tmp_path)
    first, second = mail(subject="premier"), mail(subject="second")
    dovecot.append(first)
    old_validity = dovecot.uidvalidity()
    watcher = ImapWatcher(services, imap_config(dovecot))
    # Processed and answered, then the process dies before the move.
    monkeypatch.setattr(watcher, "_move", lambda client, uid: None)
    assert [r.outcome for r in watcher.sync_once()] == ["rejected"]
    monkeypatch.undo()
    watcher.close()
    watcher = ImapWatcher(services, imap_config(dovecot))  # the service restarted, too

    dovecot.append(second)
    dovecot.reset_uidvalidity()  # the server renumbers the folder: UID 1 is no longer "first"
    assert dovecot.uidvalidity() != old_validity
    services.log.propagate = True
    try:
        with caplog.at_level(logging.WARNING, logger=services.log.name):
            results = watcher.sync_once()
    finally:
        services.log.propagate = False
        watcher.close()
    assert "UIDVALIDITY" in caplog.text
    assert sorted(r.outcome for r in results) == ["duplicate", "rejected"]
    assert len(outbox(services)) == 2  # "premier" once, "second" once
    assert {row.raw for row in rows(services) if row.outcome == "rejected"} == {first, second}
    assert moved(dovecot, 2)()


class BlackHoleProxy:
    """A TCP relay to the server whose existing connections can be made to swallow everything,
    like a firewall or NAT that silently forgot them: no FIN, no RST, just silence."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.pairs: list[tuple[socket.socket, socket.socket, threading.Event]] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            dead = threading.Event()
            self.pairs.append((client, server, dead))
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(src, dst, dead), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, dead: threading.Event) -> None:
        try:
            while data := src.recv(65536):
                if not dead.is_set():
                    dst.sendall(data)
        except OSError:
            pass

    def black_hole(self) -> None:
        for _, _, dead in self.pairs:
            dead.set()

    def close(self) -> None:
        self.listener.close()
        for client, server, _ in self.pairs:
            client.close()
            server.close()


def test_silently_dead_connection_is_noticed_by_the_reissued_idle(dovecot: Dovecot, tmp_path: Path) -> None:
    services = sqlite_services(tmp_path)
    proxy = BlackHoleProxy((dovecot.host, dovecot.port))
    config = replace(imap_config(dovecot, idle_seconds=1.0, timeout_seconds=1.0), port=proxy.port)
    watcher = ImapWatcher(services, config, backoff_initial=0.05, backoff_max=0.1)
    try:
        with Running(watcher):
            proxy.black_hole()  # the watcher's IDLE will never hear of the next message
            dovecot.append(mail())
            elapsed = wait_for(lambda: len(outbox(services)) == 1 and moved(dovecot, 1)())
            assert elapsed < 6.0  # idle_seconds + timeout_seconds + backoff, not 29 minutes
            assert len(proxy.pairs) >= 3  # the watcher and its doorbell, then a reconnection
    finally:
        proxy.close()


def test_an_unreadable_message_in_a_batch_is_charged_alone_and_the_others_are_answered(
    dovecot: Dovecot, tmp_path: Path
) -> None:
    """Dovecot answers the batch's FETCH with BYE: which message is at fault is unknown, so each
    of the batch is then read alone, and only the unreadable one is retried, then stored failed."""
    services = sqlite_services(tmp_path)
    maildir = dovecot.root / "mail" / dovecot.user
    for n in range(6):
        before = {*maildir.glob("new/*"), *maildir.glob("cur/*")}
        dovecot.append(mail(subject=f"Bilan {n}"))
        if n == 2:
            [path] = {*maildir.glob("new/*"), *maildir.glob("cur/*")} - before
            path.chmod(0)
    with lanes_of(services, imap_config(dovecot)) as (watcher, _), Running(watcher):
        wait_for(lambda: len(outbox(services)) == 6 and len(dovecot.uids(PROCESSED)) == 5)
    failed = [row for row in rows(services) if row.outcome == "failed"]
    assert [row.imap_uid for row in failed] == [3]
    assert f"{MAX_FETCH_ATTEMPTS} tentatives" in (failed[0].error or "")
    assert dovecot.uids("INBOX") == [3]
    assert sorted(row.imap_uid or 0 for row in rows(services) if row.outcome == "rejected") == [1, 2, 4, 5, 6]
    assert sorted(o.kind for o in outbox(services)) == ["alert"] + ["reply"] * 5


def test_a_batch_the_store_refuses_stays_in_the_folder_and_is_answered_once_it_is_back(
    dovecot: Dovecot, tmp_path: Path
) -> None:
    services = sqlite_services(tmp_path)
    for n in range(5):
        dovecot.append(mail(subject=f"Bilan {n}"))
    with lanes_of(services, imap_config(dovecot)) as (watcher, batches), pytest.MonkeyPatch.context() as patch:
        def store_down(services: Services, deliveries: Sequence[Delivery]) -> list[int | None]:
            batches.append(len(deliveries))
            raise OperationalError("INSERT", {}, Exception("disk I/O error"))

        patch.setattr(flow, "receive_all", store_down)
        try:
            assert watcher.sync_once() == []
            assert rows(services) == [] and dovecot.uids("INBOX") == [1, 2, 3, 4, 5]
            assert "disk I/O error" in (watcher.health()["last_error"] or "")
            patch.undo()
            assert [r.outcome for r in watcher.sync_once()] == ["rejected"] * 5
        finally:
            watcher.close()
    assert moved(dovecot, 5)() and len(outbox(services)) == 5
