"""The whole service as it runs in production: ``serve`` in its own process, a real Dovecot
mailbox, a real SMTP relay. Killed with SIGKILL in the middle of a burst and restarted, it must
answer every message exactly once and leave nothing in the inbox."""

from __future__ import annotations

import email
import json
import os
import signal
import time
from collections.abc import Iterator
from email import policy
from pathlib import Path

import pytest

from tests.factories.emails import XLSX, build_email, out_of_office_reply
from tests.factories.workbooks import good_workbook
from tests.support.dovecot import Dovecot
from tests.support.relay import Relay
from tests.support.service import ServiceProcess, gone, replies_by_original, wait_until, write_service_config


@pytest.fixture
def service(tmp_path: Path, dovecot: Dovecot, relay: Relay) -> Iterator[ServiceProcess]:
    config = write_service_config(tmp_path, dovecot, relay)
    proc = ServiceProcess(config, f"sqlite:///{tmp_path / 'service.sqlite3'}", tmp_path)
    yield proc
    proc.close()


def burst(count: int) -> tuple[list[bytes], set[str], set[str]]:
    """Realistic messages: returns (good and bad), strangers, robots. Returns (raw, answered, silent)."""
    messages, answered, silent = [], set(), set()
    for n in range(count):
        message_id = f"<burst-{n}-{time.monotonic_ns()}@test.example>"
        kind = n % 6
        if kind == 5:
            raw = out_of_office_reply()
            silent.add(email.message_from_bytes(raw, policy=policy.default)["Message-ID"] or f"ooo-{n}")
            messages.append(raw)
            continue
        if kind == 4:
            raw = build_email(sender="inconnu@example.com", message_id=message_id, subject=f"Question {n}")
        else:
            region = "bretagne" if kind < 2 else "rhone-alpes"
            values = {"I09": "quatre"} if kind == 3 else {}
            raw = build_email(sender=f"agent{n}@{region}.pref.gouv.fr", message_id=message_id,
                              subject=f"Bilan 2013 envoi {n}",
                              attachments=[(f"bilan-{n}.xlsx", good_workbook(values=values), XLSX)])
        answered.add(message_id)
        messages.append(raw)
    return messages, answered, silent


def refusing_since(service: ServiceProcess) -> str | None:
    """Since when health.json says the relay refuses mail (None: it accepts)."""
    report = json.loads((service.data / "health.json").read_text(encoding="utf-8"))
    return report["channels"]["outbox"].get("relay_refusing_since")  # type: ignore[no-any-return]


def test_killed_mid_burst_and_restarted_every_message_answered_exactly_once(
    service: ServiceProcess, dovecot: Dovecot, relay: Relay
) -> None:
    messages, answered, _ = burst(36)
    service.start()
    for raw in messages:
        dovecot.append(raw)
    wait_until(lambda: len(relay.received()) >= 6, 60, "first replies", service)
    service.kill()  # SIGKILL: no clean-up at all
    service.start()
    assert_each_answered_once_and_moved(service, dovecot, relay, answered, len(messages))
    assert service.terminate() == 0  # SIGTERM: a clean stop
    assert "stopped" in service.logs()


def test_with_two_pipeline_processes_a_runner_then_the_service_killed_every_message_answered_exactly_once(
    tmp_path: Path, dovecot: Dovecot, relay: Relay
) -> None:
    """``[service] processes = 2``: a runner killed in the middle of the burst is replaced, then the
    whole service is killed (its runners leave with it) and restarted."""
    config = write_service_config(tmp_path, dovecot, relay, processes=2)
    service = ServiceProcess(config, f"sqlite:///{tmp_path / 'service.sqlite3'}", tmp_path)
    try:
        messages, answered, _ = burst(48)
        service.start()
        runners = service.runner_pids()
        assert len(runners) == 2 and service.process is not None and service.process.pid not in runners
        for raw in messages[:24]:
            dovecot.append(raw)
        wait_until(lambda: len(relay.received()) >= 6, 60, "first replies", service)
        os.kill(runners[0], signal.SIGKILL)
        for raw in messages[24:]:  # the killed runner's lane gets more: it is found dead and replaced
            dovecot.append(raw)
        wait_until(lambda: len(relay.received()) >= 14, 60, "replies after a runner was killed", service)
        service.kill()
        wait_until(lambda: all(gone(pid) for pid in runners), 10, "the runners leaving with their service")
        service.start()
        assert_each_answered_once_and_moved(service, dovecot, relay, answered, len(messages))
        first_run = (tmp_path / "serve-1.log").read_text(encoding="utf-8")
        assert "s'est arrêté ; un autre le remplace" in first_run
        assert service.terminate() == 0
        assert "stopped" in service.logs()
    finally:
        service.close()


def assert_each_answered_once_and_moved(service: ServiceProcess, dovecot: Dovecot, relay: Relay,
                                        answered: set[str], appended: int) -> None:
    """Every message that deserves a reply got exactly one (robots none), and the inbox was emptied
    into « Traités »."""
    wait_until(lambda: set(replies_by_original(relay)) >= answered, 120, "every reply", service)
    wait_until(lambda: dovecot.uids("INBOX") == [], 30, "empty inbox", service)
    time.sleep(1.5)  # anything still to come would be a second reply
    counts = replies_by_original(relay)
    assert {k: v for k, v in counts.items() if v != 1} == {}, "a message was answered twice"
    assert set(counts) == answered  # and robots got nothing
    assert len(dovecot.uids("Traités")) == appended


def test_relay_down_for_a_while_replies_delivered_later_none_lost_none_doubled(
    service: ServiceProcess, dovecot: Dovecot, relay: Relay
) -> None:
    relay.stop()
    service.start()
    messages, answered, _ = burst(5)
    for raw in messages:
        dovecot.append(raw)
    wait_until(lambda: dovecot.uids("INBOX") == [], 30, "messages processed", service)
    wait_until(lambda: refusing_since(service) is not None, 30, "the outage in health.json", service)
    relay.start()
    wait_until(lambda: set(replies_by_original(relay)) >= answered, 60, "late delivery", service)
    wait_until(lambda: refusing_since(service) is None, 30, "the end of the outage in health.json", service)
    time.sleep(1.0)
    assert set(replies_by_original(relay).values()) == {1}
    assert service.terminate() == 0
