"""The whole service as it runs in production: ``serve`` in its own process, a real Dovecot
mailbox, a real SMTP relay. Killed with SIGKILL in the middle of a burst and restarted, it must
answer every message exactly once and leave nothing in the inbox."""

from __future__ import annotations

import email
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from email import policy
from pathlib import Path

import pytest

from tests.dovecot import Dovecot, dovecot  # noqa: F401  (fixture)
from tests.factories.emails import build_email, out_of_office_reply
from tests.pipeline_support import good_workbook
from tests.relay import Relay, free_port, relay  # noqa: F401  (fixture)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ROOT = Path(__file__).resolve().parent.parent

CONFIG = """
[service]
data_dir = "{data}"
outbox_dir = "{data}/outbox"

[mailbox]
address = "conventions@ville.gouv.fr"

[receiver]
host = "127.0.0.1"
port = {smtp_port}

[imap]
host = "127.0.0.1"
port = {imap_port}
username = "{user}"
password = "{password}"
folder = "INBOX"
processed_folder = "Traités"
idle_seconds = 5
timeout_seconds = 5

[smtp]
host = "127.0.0.1"
port = {relay_port}
from = "conventions@ville.gouv.fr"
retry_initial_seconds = 0.2
retry_max_seconds = 1

[[campaigns]]
id = "bilan-2013"
year = 2013
opens = 2014-03-26
deadline = 2030-05-15

[[regions]]
code = "53"
senders = ["@bretagne.pref.gouv.fr"]
contacts = ["sgar@bretagne.pref.gouv.fr"]

[[regions]]
code = "82"
senders = ["@rhone-alpes.pref.gouv.fr"]

[[coordinators]]
name = "Coordination nationale"
email = "coordination@ville.gouv.fr"
"""


class ServiceProcess:
    def __init__(self, config: Path, db: str, data: Path) -> None:
        self.config, self.db, self.data = config, db, data
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = open(self.data / f"serve-{self.starts}.log", "wb")  # noqa: SIM115 (kept open for the child)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "intake", "--config", str(self.config), "--db", self.db, "serve"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 30
        health = self.data / "health.json"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited early:\n{self.logs()}")
            if health.exists() and json.loads(health.read_text())["pid"] == self.process.pid:
                return
            time.sleep(0.05)
        raise AssertionError(f"serve did not report health in time:\n{self.logs()}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-4000:] for p in sorted(self.data.glob("serve-*.log")))


@pytest.fixture
def service(tmp_path: Path, dovecot: Dovecot, relay: Relay) -> Iterator[ServiceProcess]:  # noqa: F811
    config = tmp_path / "service.toml"
    config.write_text(CONFIG.format(data=tmp_path.as_posix(), smtp_port=free_port(), imap_port=dovecot.port,
                                    user=dovecot.user, password=dovecot.password, relay_port=relay.port),
                      encoding="utf-8")
    proc = ServiceProcess(config, f"sqlite:///{tmp_path / 'service.sqlite3'}", tmp_path)
    yield proc
    if proc.process is not None and proc.process.poll() is None:
        proc.process.kill()
        proc.process.wait(timeout=10)


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


def replies_by_original(relay: Relay) -> Counter[str]:  # noqa: F811
    counts: Counter[str] = Counter()
    for received in relay.received():
        msg = email.message_from_bytes(received.data, policy=policy.default)
        counts[str(msg["In-Reply-To"])] += 1
    return counts


def wait_until(predicate: object, timeout: float, what: str, proc: ServiceProcess) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached in {timeout} s\n{proc.logs()}")


def test_killed_mid_burst_and_restarted_every_message_answered_exactly_once(
    service: ServiceProcess, dovecot: Dovecot, relay: Relay  # noqa: F811
) -> None:
    messages, answered, _ = burst(36)
    service.start()
    for raw in messages:
        dovecot.append(raw)
    wait_until(lambda: len(relay.received()) >= 6, 60, "first replies", service)
    service.kill()  # SIGKILL: no clean-up at all
    service.start()
    wait_until(lambda: set(replies_by_original(relay)) >= answered, 120, "every reply", service)
    wait_until(lambda: dovecot.uids("INBOX") == [], 30, "empty inbox", service)
    time.sleep(1.5)  # anything still to come would be a second reply
    counts = replies_by_original(relay)
    assert {k: v for k, v in counts.items() if v != 1} == {}, "a message was answered twice"
    assert set(counts) == answered  # and robots got nothing
    assert len(dovecot.uids("Traités")) == len(messages)
    assert service.terminate() == 0  # SIGTERM: a clean stop
    assert "stopped" in service.logs()


def test_relay_down_for_a_while_replies_delivered_later_none_lost_none_doubled(
    service: ServiceProcess, dovecot: Dovecot, relay: Relay  # noqa: F811
) -> None:
    relay.stop()
    service.start()
    messages, answered, _ = burst(5)
    for raw in messages:
        dovecot.append(raw)
    wait_until(lambda: dovecot.uids("INBOX") == [], 30, "messages processed", service)
    time.sleep(1.0)
    relay.start()
    wait_until(lambda: set(replies_by_original(relay)) >= answered, 60, "late delivery", service)
    time.sleep(1.0)
    assert set(replies_by_original(relay).values()) == {1}
    assert service.terminate() == 0
