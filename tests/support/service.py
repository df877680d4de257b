"""Running ``serve`` as a separate process against a real mailbox and relay (tests and bench)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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
idle_seconds = {idle_seconds}
poll_seconds = {poll_seconds}
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


