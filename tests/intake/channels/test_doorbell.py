"""The doorbell (intake/channels/doorbell.py): a connection that stays in IDLE and rings on new mail.

Against a real Dovecot, and against a scripted server for the one race a real server cannot be
made to show on demand: the new-mail announcement in the same packet as IDLE's continuation.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from imapclient import IMAPClient

from intake.channels.doorbell import Doorbell
from intake.channels.imap import ImapWatcher
from tests.support.dovecot import Dovecot
from tests.support.pipeline import outbox
from tests.support.watcher import Running, imap_config, mail, moved, sqlite_services, wait_for

LOG = logging.getLogger("test-doorbell")


def test_rings_when_it_enters_idle_and_at_each_new_message(dovecot: Dovecot) -> None:
    doorbell = Doorbell(dovecot.client, "INBOX", idle_seconds=600.0, log=LOG)
    with Running(doorbell):
        wait_for(doorbell.bell.is_set)  # entering IDLE: whatever came before is looked for
        assert doorbell.rings == 1
        for n in range(1, 4):
            doorbell.bell.clear()
            dovecot.append(mail(subject=f"Envoi {n}"))
            wait_for(doorbell.bell.is_set, timeout=5.0)
            wait_for(lambda n=n: doorbell.rings == 1 + n, timeout=5.0)  # type: ignore[misc]
        assert doorbell.last_error is None


def test_a_server_restart_is_survived_and_the_bell_rings_again(dovecot: Dovecot) -> None:
    doorbell = Doorbell(dovecot.client, "INBOX", idle_seconds=600.0, log=LOG, backoff_initial=0.05,
                        backoff_max=0.2)
    with Running(doorbell):
        wait_for(lambda: doorbell.rings == 1)
        dovecot.restart()
        wait_for(lambda: doorbell.rings >= 2, timeout=10.0)  # reconnected: rang on entering IDLE
        doorbell.bell.clear()
        dovecot.append(mail())
        wait_for(doorbell.bell.is_set, timeout=5.0)


class OnePacketServer:
    """A scripted IMAP server that answers IDLE with its continuation and an ``EXISTS`` in one
    packet, then says nothing more: imaplib reads both lines into its buffer with the
    continuation, so a poll of the socket never reports the announcement."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.idles = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with conn, conn.makefile("rb") as lines:
            conn.sendall(b"* OK ready\r\n")
            for line in lines:
                tag, _, rest = line.strip().partition(b" ")
                command = rest.split(b" ")[0].upper()
                if tag.upper() == b"DONE":
                    conn.sendall(self.idle_tag + b" OK Idle completed\r\n")
                elif command == b"CAPABILITY":
                    conn.sendall(b"* CAPABILITY IMAP4rev1 IDLE\r\n" + tag + b" OK done\r\n")
                elif command == b"LOGIN":
                    conn.sendall(tag + b" OK logged in\r\n")
                elif command == b"EXAMINE":
                    conn.sendall(b"* 1 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n" + tag + b" OK [READ-ONLY] done\r\n")
                elif command == b"IDLE":
                    self.idle_tag = tag
                    self.idles += 1
                    conn.sendall(b"+ idling\r\n* 2 EXISTS\r\n")  # one packet
                elif command == b"LOGOUT":
                    conn.sendall(b"* BYE bye\r\n" + tag + b" OK done\r\n")
                    return
                else:
                    conn.sendall(tag + b" BAD unexpected\r\n")

    idle_tag = b""

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def one_packet_server() -> Iterator[OnePacketServer]:
    server = OnePacketServer()
    yield server
    server.close()


def test_mail_announced_in_the_same_packet_as_the_idle_continuation_is_looked_for(
    one_packet_server: OnePacketServer,
) -> None:
    def connect() -> IMAPClient:
        client = IMAPClient("127.0.0.1", one_packet_server.port, ssl=False, timeout=5)
        client.login("u", "p")
        return client

    doorbell = Doorbell(connect, "INBOX", idle_seconds=600.0, log=LOG)
    with Running(doorbell):
        wait_for(lambda: one_packet_server.idles == 1)
        wait_for(doorbell.bell.is_set, timeout=2.0)  # the watcher will SEARCH after this moment


def test_message_appended_while_idling_is_answered_without_waiting_for_the_idle_reissue(
    dovecot: Dovecot, tmp_path: Path
) -> None:
    services = sqlite_services(tmp_path)
    watcher = ImapWatcher(services, imap_config(dovecot, idle_seconds=600.0))
    with Running(watcher):
        wait_for(lambda: watcher.doorbell.rings >= 1)  # the doorbell is in IDLE
        for n in range(3):
            dovecot.append(mail(subject=f"Envoi {n}", workbook=True))
            wait_for(lambda n=n: len(outbox(services)) == n + 1, timeout=5.0)  # type: ignore[misc]
        wait_for(moved(dovecot, 3))


def test_a_doorbell_that_cannot_connect_costs_latency_never_a_message(
    dovecot: Dovecot, tmp_path: Path
) -> None:
    services = sqlite_services(tmp_path)
    watcher = ImapWatcher(services, replace(imap_config(dovecot, idle_seconds=1.0)), backoff_initial=0.05,
                          backoff_max=0.1)

    def refused() -> IMAPClient:
        raise ConnectionRefusedError("no doorbell today")

    watcher.doorbell.connect = refused
    with Running(watcher):
        dovecot.append(mail(workbook=True))
        wait_for(lambda: len(outbox(services)) == 1 and moved(dovecot, 1)(), timeout=10.0)
        assert watcher.health()["doorbell_error"] == "ConnectionRefusedError: no doorbell today"
