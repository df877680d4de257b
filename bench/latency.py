"""End-to-end latency: from a message appended to the IMAP mailbox to its reply at the relay.

Runs a real Dovecot, a real aiosmtpd relay and ``conventions-intake serve`` in its own process,
exactly as the service tests do (tests/support/service.py), then measures for each message the time between the
end of the IMAP APPEND and the arrival of its reply (matched by In-Reply-To) at the relay:

- single: messages appended one at a time (the next one after the previous reply);
- burst: N messages appended back to back, each measured from its own append.

Both with IDLE and with polling (a Dovecot that does not advertise IDLE, ``poll_seconds``).

    .venv/bin/python -m bench.latency [--single 20] [--burst 500] [--write]

``--write`` replaces the "End-to-end latency" section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import email
import statistics
import tempfile
import threading
import time
from email import policy
from pathlib import Path

from bench.report import machine, write_section
from tests.factories.emails import XLSX, build_email
from tests.factories.workbooks import good_workbook
from tests.support.dovecot import NO_IDLE_CAPABILITY, Dovecot, dovecot_binary
from tests.support.relay import Relay
from tests.support.service import ServiceProcess, write_service_config

SECTION = "## End-to-end latency"


class Arrivals:
    """Records when each reply reaches the relay, keyed by the Message-ID it answers."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.times: dict[str, float] = {}
        self.seen = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        while not self.stop.is_set():
            received = self.relay.received()
            now = time.perf_counter()
            for item in received[self.seen:]:
                msg = email.message_from_bytes(item.data, policy=policy.default)
                with self.lock:
                    self.times.setdefault(str(msg["In-Reply-To"]), now)
            self.seen = len(received)
            time.sleep(0.002)

    def wait(self, message_ids: set[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if message_ids <= set(self.times):
                    return
            time.sleep(0.01)
        raise TimeoutError(f"{len(message_ids - set(self.times))} replies missing")


def message(n: int, tag: str, workbook: bytes) -> tuple[str, bytes]:
    message_id = f"<bench-{tag}-{n}-{time.monotonic_ns()}@bretagne.pref.gouv.fr>"
    raw = build_email(sender=f"agent{n}@bretagne.pref.gouv.fr", message_id=message_id,
                      subject=f"Bilan 2013 ({tag} {n})", attachments=[("bilan.xlsx", workbook, XLSX)])
    return message_id, raw


def run_mode(idle: bool, single: int, burst: int) -> dict[str, list[float]]:
    binary = dovecot_binary()
    if binary is None:
        raise SystemExit("Dovecot is not installed (bash .ci/services.sh installs it)")
    mailbox = Dovecot(binary, capability=None if idle else NO_IDLE_CAPABILITY)
    relay = Relay()
    mailbox.start()
    relay.start()
    tmp = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    config = write_service_config(tmp, mailbox, relay, idle_seconds=60, poll_seconds=1, name="bench.toml")
    service = ServiceProcess(config, f"sqlite:///{tmp / 'bench.sqlite3'}", tmp)
    arrivals = Arrivals(relay)
    workbook = good_workbook()
    results: dict[str, list[float]] = {"single": [], "burst": []}
    try:
        service.start()
        for n in range(single):
            message_id, raw = message(n, "single", workbook)
            mailbox.append(raw)
            appended = time.perf_counter()
            arrivals.wait({message_id}, 60)
            results["single"].append(arrivals.times[message_id] - appended)
        sent: dict[str, float] = {}
        batch = [message(n, "burst", workbook) for n in range(burst)]
        for message_id, raw in batch:
            mailbox.append(raw)
            sent[message_id] = time.perf_counter()
        arrivals.wait(set(sent), 600)
        results["burst"] = [arrivals.times[m] - t for m, t in sent.items()]
    finally:
        arrivals.stop.set()
        if service.process is not None:
            service.terminate()
        relay.stop()
        mailbox.close()
    return results


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def table(all_results: dict[str, dict[str, list[float]]]) -> str:
    lines = ["| mode | case | messages | median | 95th percentile | max |", "| --- | --- | --- | --- | --- | --- |"]
    for mode, results in all_results.items():
        for case, values in results.items():
            if values:
                lines.append(f"| {mode} | {case} | {len(values)} | {statistics.median(values):.3f} s | "
                             f"{percentile(values, 0.95):.3f} s | {max(values):.3f} s |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--single", type=int, default=20)
    parser.add_argument("--burst", type=int, default=500)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    results = {"IDLE": run_mode(True, args.single, args.burst),
               "polling (1 s)": run_mode(False, args.single, args.burst)}
    body = (
        f"{SECTION}\n\n"
        "From the end of the IMAP APPEND to the reply's arrival at the relay, with a real Dovecot, a real "
        "aiosmtpd relay and `serve` in its own process, SQLite store; each message carries a filled Annexe 2 "
        f"workbook. Measured by `bench/latency.py --single {args.single} --burst {args.burst}` on "
        f"{machine()}.\n\n" + table(results) + "\n\n"
        "Goals: median under 1 s, 95th percentile under 3 s for a single message (issue 3); the whole burst "
        "of 500 answered within 60 s (issue 7): see the burst row's max.\n"
    )
    print(body)
    if args.write:
        write_section(SECTION, body)


if __name__ == "__main__":
    main()
