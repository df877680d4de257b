"""Running ``serve`` as a separate process against a real mailbox and relay (tests and bench)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

from tests.support.dovecot import Dovecot
from tests.support.net import free_port
from tests.support.paths import ROOT
from tests.support.relay import Relay
from tests.support.settings import campaign, write_config


def write_service_config(folder: Path, mailbox: Dovecot, relay: Relay, *, idle_seconds: float = 5,
                         poll_seconds: float = 1, name: str = "service.toml") -> Path:
    """The configuration of a service reading ``mailbox`` over IMAP (and listening for SMTP and for the
    web on free ports) and sending through ``relay``, quick to retry; a campaign open until 2030, so
    every return is in time; Bretagne (a whole domain, one contact) and Rhône-Alpes (a whole domain, no
    contact)."""
    web_port = free_port()
    return write_config(
        folder, name=name,
        receiver={"host": "127.0.0.1", "port": free_port()},
        web={"host": "127.0.0.1", "port": web_port, "base_url": f"http://127.0.0.1:{web_port}"},
        imap={"host": mailbox.host, "port": mailbox.port, "username": mailbox.user, "password": mailbox.password,
              "folder": "INBOX", "processed_folder": "Traités", "idle_seconds": idle_seconds,
              "poll_seconds": poll_seconds, "timeout_seconds": 5},
        smtp={"host": relay.host, "port": relay.port, "from": "conventions@ville.gouv.fr",
              "retry_initial_seconds": 0.2, "retry_max_seconds": 1},
        campaigns=[campaign(deadline=date(2030, 5, 15))],
        regions=[{"code": "53", "senders": ["@bretagne.pref.gouv.fr"], "contacts": ["sgar@bretagne.pref.gouv.fr"]},
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

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-4000:] for p in sorted(self.data.glob("serve-*.log")))


