"""Scale out: a burst processed by one ``serve`` instance, then by two on one PostgreSQL database.

Each case gets a fresh PostgreSQL database, a fresh Dovecot mailbox and a fresh relay; the
instances (``conventions-intake serve`` in processes of their own, as tests/support/service.py
runs them, IDLE on the same INBOX) are started and ready before the burst: ``--burst`` returns
(filled Annexe 2 workbooks naming their region, from Bretagne and Rhône-Alpes in turn, or with
``--regions 27`` from the 27 regions of 2014, every third one of each region with a refused
figure, answered with the annotated workbook) appended back to back over one IMAP connection.
With two regions the instances often file versions of one dossier at the same moment and wait for
each other on its row's lock; with 27 they seldom do. The rate is the burst's size over the time from the first append
to the last reply at the relay. The floor is the one-instance case, measured in the same run: the
goal is two instances at 1.7 times its rate or more; the cores the machine kept busy during each
burst (every process, from ``/proc/stat``) give its ceiling. Every message must be answered exactly once
(counted by In-Reply-To, a reply resent with the same Message-ID counting once) and stored once.

    .venv/bin/python -m bench.scale [--burst 200] [--runs 1] [--regions 2,27] [--pg URL] [--write]

``--write`` replaces the "Scale out" section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections import Counter
from email import policy
from email.parser import BytesHeaderParser
from pathlib import Path

from sqlalchemy import func, select

from bench.report import MachineCpu, ProcessCpu, campaign_senders, machine, write_section
from store.db import make_engine, session_factory
from store.models import InboundMessage
from tests.factories.emails import XLSX, build_email
from tests.factories.workbooks import Layout, good_workbook
from tests.support.dovecot import Dovecot, dovecot_binary
from tests.support.postgres import DEFAULT_PG_ADMIN_URL, throwaway_database
from tests.support.relay import Relay
from tests.support.service import ServiceProcess, wait_until, write_service_config

SECTION = "## Scale out"
HEADERS = BytesHeaderParser(policy=policy.compat32)
GROUPS = ("serve instances", "PostgreSQL", "Dovecot", "this script (appends, relay)", "kernel threads, others")


def group_of(pid: int, cmdline: str) -> str:
    """Which part of the burst a process is (for the CPU per message of each)."""
    if pid == os.getpid():
        return GROUPS[3]
    if ("intake" in cmdline and " serve" in cmdline) or "multiprocessing" in cmdline:
        return GROUPS[0]
    if cmdline.startswith("postgres"):
        return GROUPS[1]
    if "dovecot" in cmdline or cmdline.startswith(("imap", "anvil", "log", "config", "auth")):
        return GROUPS[2]
    return GROUPS[4]


TWO_REGIONS = (("53", "bretagne", "Bretagne"), ("82", "rhone-alpes", "Rhône-Alpes"))


def campaign_regions(count: int) -> tuple[tuple[str, str, str], ...]:
    """(code, sender domain, name) of the burst's regions: Bretagne and Rhône-Alpes (the two of the
    tests' configuration), or every region of the 2014 campaign."""
    if count == 2:
        return TWO_REGIONS
    return campaign_senders()


def burst(count: int, regions: tuple[tuple[str, str, str], ...]) -> tuple[list[bytes], set[str]]:
    """Returns of the regions in turn (a deadline day mixes regions: the versions of one dossier
    are numbered one after the other, under a lock on its row: with two regions, the instances
    wait for each other there)."""
    named = Layout(region_line="Région : {region}")  # as our template names the region
    books = {domain: [good_workbook(region=name, layout=named), good_workbook(region=name, layout=named),
                      good_workbook(region=name, layout=named, values={"I09": "quatre"})]
             for _, domain, name in regions}
    stamp = time.monotonic_ns()
    raws, ids = [], set()
    for n in range(count):
        domain = regions[n % len(regions)][1]
        message_id = f"<scale-{n}-{stamp}@{domain}.pref.gouv.fr>"
        raws.append(build_email(sender=f"agent{n}@{domain}.pref.gouv.fr", message_id=message_id,
                                subject=f"Bilan 2013 envoi {n}",
                                attachments=[(f"bilan-{n}.xlsx", books[domain][n // len(regions) % 3], XLSX)]))
        ids.add(message_id)
    return raws, ids


class Replies:
    """Replies per answered Message-ID, read from the relay as they arrive (each parsed once)."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.counts: Counter[str] = Counter()
        self.seen: set[str] = set()  # a reply resent with the same Message-ID counts once
        self.read = 0

    def update(self) -> Counter[str]:
        received = self.relay.received()
        for item in received[self.read:]:
            msg = HEADERS.parsebytes(item.data)  # the header block only: this script shares the cores
            if msg["Auto-Submitted"] == "auto-replied" and str(msg["Message-ID"]) not in self.seen:
                self.seen.add(str(msg["Message-ID"]))
                self.counts[str(msg["In-Reply-To"])] += 1
        self.read = len(received)
        return self.counts


def one_case(instances: int, count: int, admin: str, regions: tuple[tuple[str, str, str], ...] = TWO_REGIONS
             ) -> dict[str, float]:
    binary = dovecot_binary()
    if binary is None:
        raise SystemExit("Dovecot is not installed (bash .ci/services.sh installs it)")
    mailbox, relay = Dovecot(binary), Relay()
    mailbox.start()
    relay.start()
    procs: list[ServiceProcess] = []
    try:
        with throwaway_database(admin, prefix="bench") as url, \
                tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
            for n in range(instances):
                data = Path(tmp) / f"instance-{n}"
                table = None if regions == TWO_REGIONS else [
                    {"code": code, "senders": [f"@{domain}.pref.gouv.fr"]} for code, domain, _ in regions]
                procs.append(ServiceProcess(write_service_config(data, mailbox, relay, regions=table), url, data))
            for proc in procs:
                proc.start()
            raws, ids = burst(count, regions)
            cpu, parts = MachineCpu(), ProcessCpu(group_of)
            with mailbox.client() as client:
                cpu.start()
                parts.start()
                first = time.perf_counter()
                for raw in raws:
                    client.append("INBOX", raw)
                appended = time.perf_counter() - first
            last = 0.0
            replies = Replies(relay)

            def all_answered() -> bool:
                nonlocal last
                if ids <= set(replies.update()):
                    last = time.perf_counter()
                    return True
                return False

            wait_until(all_answered, 600, f"{count} replies", *procs, every=0.05)
            cpu.stop()
            parts.stop()
            elapsed = last - first
            time.sleep(1)  # anything answered twice would show now
            counts = replies.update()
            engine = make_engine(url)
            with session_factory(engine)() as session:
                stored = session.scalar(select(func.count()).select_from(InboundMessage)) or 0
                done = session.scalar(select(func.count()).select_from(InboundMessage)
                                      .where(InboundMessage.outcome.in_(("accepted", "rejected")))) or 0
            engine.dispose()
            for proc in procs:
                proc.terminate()
            twice = sum(1 for m in ids if counts[m] != 1)
            if twice or stored != count or done != count:
                raise AssertionError(f"not exactly once: {twice} answered other than once, {stored} stored, "
                                     f"{done} processed, for {count} messages")
    finally:
        for proc in procs:
            proc.close()
        relay.stop()
        mailbox.close()
    return {"elapsed": elapsed, "appended": appended, "rate": count / elapsed, "busy": cpu.busy_cores,
            **{name: parts.seconds.get(name, 0.0) * 1000 / count for name in GROUPS}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--regions", default="2,27",
                        help="the bursts' regions, comma-separated: 2 (Bretagne and Rhône-Alpes), 27 (those of 2014)")
    parser.add_argument("--pg", default=DEFAULT_PG_ADMIN_URL)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    mixes = [int(x) for x in args.regions.split(",") if x.strip()]
    if not mixes or any(count not in (2, 27) for count in mixes):
        parser.error("--regions: 2, 27 or 2,27")
    loads = [os.getloadavg()[0]]
    cases: dict[tuple[int, int], list[dict[str, float]]] = {(m, n): [] for m in mixes for n in (1, 2)}
    for _ in range(args.runs):
        for mix, instances in cases:
            cases[mix, instances].append(one_case(instances, args.burst, args.pg, campaign_regions(mix)))
            loads.append(os.getloadavg()[0])
    cores = os.cpu_count() or 1
    lines = ["| regions | instances | messages per second (median) | last reply after the first append | appends "
             f"took | × one instance (the floor) | exactly once | cores busy during the burst (of {cores}) | "
             "ceiling: the most any number of instances could reach | runs (messages per second) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    ceilings: dict[int, float] = {}
    for (mix, instances), runs in cases.items():
        rate = statistics.median(r["rate"] for r in runs)
        floor = statistics.median(r["rate"] for r in cases[mix, 1])
        busy = statistics.median(r["busy"] for r in runs)
        if instances == 1:
            ceilings[mix] = cores / busy if busy else 0.0
        lines.append(f"| {mix} | {instances} | {rate:.1f} | {statistics.median(r['elapsed'] for r in runs):.1f} s | "
                     f"{statistics.median(r['appended'] for r in runs):.1f} s | {rate / floor:.2f} | yes | "
                     f"{busy:.2f} | {ceilings[mix]:.2f} × | " + ", ".join(f"{r['rate']:.1f}" for r in runs) + " |")
    lines += ["", "CPU per message during the burst, by process (median of the runs, ms; every instance counted):",
              "", "| regions | instances | " + " | ".join(GROUPS) + " | all |",
              "| --- | --- |" + " --- |" * (len(GROUPS) + 1)]
    for (mix, instances), runs in cases.items():
        cells = [statistics.median(r[name] for r in runs) for name in GROUPS]
        lines.append(f"| {mix} | {instances} | " + " | ".join(f"{c:.1f}" for c in cells) + f" | {sum(cells):.1f} |")
    body = (
        f"{SECTION}\n\n"
        f"A burst of {args.burst} returns appended to one Dovecot mailbox, from 2 regions in turn (Bretagne and "
        "Rhône-Alpes: the instances often file versions of one dossier at the same moment and wait for each other "
        "on its row's lock) or from the 27 regions of 2014 (a deadline day), processed by one `serve` instance, "
        "then by two on one PostgreSQL database (fresh database, mailbox and relay per case; IDLE). "
        f"`bench/scale.py --burst {args.burst} --runs {args.runs} --regions {args.regions}` on {machine()}; "
        f"load average {' → '.join(f'{x:.1f}' for x in loads)} during the run.\n\n" + "\n".join(lines) + "\n\n"
        "Goal (issue 15): two instances at 1.7 times the rate of one or more, every message stored, processed "
        "and answered exactly once (checked by the script). The ceiling is the machine's own, measured in the "
        "same run: the cores one instance's burst kept busy (the instance, PostgreSQL, Dovecot, the relay, this "
        f"script and the kernel's threads) against the {cores} there are; with the same work per message, no "
        "number of instances could go faster than that many times one.\n"
    )
    print(body)
    if args.write:
        write_section(SECTION, body)


if __name__ == "__main__":
    main()
