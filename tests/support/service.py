"""Running ``serve`` as a separate process against a real mailbox and relay (tests and bench)."""

from __future__ import annotations

import email
import json
import os
import re
import signal
import smtplib
import subprocess
import sys
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date
from email import policy
from pathlib import Path

from tests.support.dovecot import Dovecot
from tests.support.net import free_port
from tests.support.paths import ROOT
from tests.support.relay import Relay
from tests.support.settings import Table, campaign, write_config


def write_service_config(folder: Path, mailbox: Dovecot, relay: Relay, *, idle_seconds: float = 5,
                         poll_seconds: float = 1, name: str = "service.toml", processes: int = 1,
                         regions: Sequence[Table] | None = None) -> Path:
    """The configuration of a service reading ``mailbox`` over IMAP (and listening for SMTP and for the
    web on free ports) and sending through ``relay``, quick to retry; a campaign open until 2030, so
    every return is in time; Bretagne (a whole domain, one contact) and Rhône-Alpes (a whole domain, no
    contact), or ``regions``. ``processes``: ``[service] processes``, the pipeline's processes."""
    web_port = free_port()
    return write_config(
        folder, name=name,
        service={"data_dir": folder, "outbox_dir": folder / "outbox", "processes": processes},
        receiver={"host": "127.0.0.1", "port": free_port()},
        web={"host": "127.0.0.1", "port": web_port, "base_url": f"http://127.0.0.1:{web_port}"},
        imap={"host": mailbox.host, "port": mailbox.port, "username": mailbox.user, "password": mailbox.password,
              "folder": "INBOX", "processed_folder": "Traités", "idle_seconds": idle_seconds,
              "poll_seconds": poll_seconds, "timeout_seconds": 5},
        smtp={"host": relay.host, "port": relay.port, "from": "conventions@ville.gouv.fr",
              "retry_initial_seconds": 0.2, "retry_max_seconds": 1},
        campaigns=[campaign(deadline=date(2030, 5, 15))],
        regions=regions or [
            {"code": "53", "senders": ["@bretagne.pref.gouv.fr"], "contacts": ["sgar@bretagne.pref.gouv.fr"]},
            {"code": "82", "senders": ["@rhone-alpes.pref.gouv.fr"]}],
    )


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, *procs: ServiceProcess,
               every: float = 0.1) -> None:
    """Poll ``predicate`` every ``every`` seconds until it holds; after ``timeout`` seconds an
    AssertionError naming ``what``, with the end of the logs of ``procs``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise AssertionError(f"{what} not reached in {timeout} s\n" + "\n".join(p.logs() for p in procs))


class ServiceProcess:
    """``python -m intake serve`` in a child process (its output in ``data/serve-<n>.log``), started,
    killed and restarted by the test."""

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

    def close(self) -> None:
        """Kill the child if it still runs (the end of a test that did not stop it)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def runner_pids(self) -> list[int]:
        """The pids of the pipeline's processes (``[service] processes`` > 1), from the start's log line."""
        found = re.findall(r"pipeline in \d+ processes \(pids ([\d,]+)\)", self.logs())
        return [int(pid) for pid in found[-1].split(",")] if found else []

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-4000:] for p in sorted(self.data.glob("serve-*.log")))




def gone(pid: int) -> bool:
    """The process has ended (a zombie nobody reaped yet counts as ended)."""
    try:
        return "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True


def replies_by_original(relay: Relay) -> Counter[str]:
    """Replies (Auto-Submitted: auto-replied) counted by the message they answer, each distinct
    Message-ID once (mail stores de-duplicate a resend); the scheduler's digests and the admins'
    alerts to the coordinators (auto-generated) are not replies."""
    counts: Counter[str] = Counter()
    seen: set[str] = set()  # a reply resent with the same Message-ID (delivery in doubt) is one reply
    for received in relay.received():
        msg = email.message_from_bytes(received.data, policy=policy.default)
        if msg["Auto-Submitted"] == "auto-replied" and str(msg["Message-ID"]) not in seen:
            seen.add(str(msg["Message-ID"]))
            counts[str(msg["In-Reply-To"])] += 1
        elif msg["Auto-Submitted"] != "auto-replied":
            assert msg["Auto-Submitted"] == "auto-generated" and msg["To"] == "coordination@ville.gouv.fr"
    return counts


def alerts(relay: Relay) -> list[str]:
    """The subjects of the admins' alerts the relay accepted (each once per Message-ID)."""
    subjects: dict[str, str] = {}
    for received in relay.received():
        msg = email.message_from_bytes(received.data, policy=policy.default)
        if msg["Auto-Submitted"] == "auto-generated" and "alerte" in str(msg["Subject"]):
            subjects[str(msg["Message-ID"])] = str(msg["Subject"])
    return list(subjects.values())


def receiver_address(config: Path) -> tuple[str, int]:
    """The ``[receiver] host`` and ``port`` of a service's configuration."""
    receiver = tomllib.loads(config.read_text(encoding="utf-8"))["receiver"]
    return str(receiver["host"]), int(receiver["port"])


def submit(address: tuple[str, int], raw: bytes, *, sender: str = "agent@bretagne.pref.gouv.fr",
           to: str = "conventions@ville.gouv.fr") -> tuple[int, str]:
    """One SMTP delivery of ``raw`` to ``address``: the receiver's answer to DATA (code, text); a
    refused connection is (0, reason), as a sending server sees it before trying again."""
    try:
        with smtplib.SMTP(*address, timeout=30) as client:
            client.sendmail(sender, [to], raw)
    except smtplib.SMTPResponseException as exc:
        error = exc.smtp_error
        return exc.smtp_code, error.decode(errors="replace") if isinstance(error, bytes) else str(error)
    except (OSError, smtplib.SMTPServerDisconnected) as exc:
        return 0, str(exc)
    return 250, "OK"
