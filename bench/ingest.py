"""Ingest throughput: messages per second through ``flow.ingest`` (store, classify, extract,
claim, converse, validate, record, reply queued), on SQLite and on PostgreSQL, one process, one
message at a time, next to its floor measured in the same run.

Messages: e-mails from the regions each carrying a filled Annexe 2 workbook naming its region
("Région : Bretagne" above the table, as our template does), every third one with a refused
figure, so that a third of the replies are rejections carrying the annotated workbook
(``corrections-<region>.xlsx``: the costliest reply); distinct Message-IDs
and senders, so every one is processed in full and answered. The services are configured with a
relay, as ``serve`` runs: the reply is queued in the outbox and the outbox sender (another
thread, not measured here) delivers it. Each run uses a fresh, migrated database; the median of
``--runs`` runs is reported.

The floor is ``flow.receive`` alone on the same messages and the same store: one durable insert of
the raw bytes, what every message costs before its SMTP ``250`` and before any parsing. The ratio
``ms per message / floor ms`` is what to compare between runs on a shared machine.

The per-step table is wall-clock time (``time.perf_counter``) around each step of ``flow.STEPS``
in the timed runs: ``classify`` and ``extract`` run before the write lock (``flow.prepare``),
the others under it; "lock held" is from the claim of the message row to the end of the commit.

    .venv/bin/python -m bench.ingest [--messages 100] [--runs 3] [--pg URL] [--write]

``--pg`` is the administrative URL of the PostgreSQL server (default
postgresql://postgres@127.0.0.1:5432/test): a throw-away database is created and dropped per run.
``--write`` replaces the "Ingest throughput" section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import email
import io
import logging
import os
import statistics
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from email import policy
from pathlib import Path

from bench.parse import raw_floor
from bench.report import machine, write_section
from intake.pipeline import flow
from intake.pipeline.journey import Delivery, Journey
from intake.pipeline.services import Services
from intake.service.runners import freeze_heap
from notifier.corrections import build_corrections
from parsers.mail.mime import parse_message
from parsers.workbook.check import check_workbook
from store.db import engine_of
from store.models import InboundMessage
from store.queries import messages as message_queries
from tests.factories.emails import XLSX, build_email
from tests.factories.workbooks import Layout, good_workbook
from tests.support.postgres import DEFAULT_PG_ADMIN_URL, throwaway_database
from tests.support.settings import MAILBOX, make_services

SECTION = "## Ingest throughput"
AT = datetime(2014, 5, 2, 9, 30, tzinfo=UTC)
RELAY = {"host": "127.0.0.1", "port": 2525, "from": MAILBOX}  # never contacted: ingest only queues
Timings = dict[str, list[float]]


def messages(count: int, tag: str) -> list[bytes]:
    layout = Layout(region_line="Région : {region}")
    books = [good_workbook(layout=layout), good_workbook(layout=layout),
             good_workbook(layout=layout, values={"I09": "quatre"})]
    return [build_email(sender=f"agent{n}@bretagne.pref.gouv.fr", message_id=f"<ingest-{tag}-{n}@bench>",
                        subject=f"Bilan 2013 envoi {n}", attachments=[(f"bilan-{n}.xlsx", books[n % 3], XLSX)])
            for n in range(count)]


@contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        yield f"sqlite:///{tmp}/bench.sqlite3"


def postgres_url(admin: str) -> Callable[[], AbstractContextManager[str]]:
    def opened() -> AbstractContextManager[str]:
        return throwaway_database(admin, prefix="bench")
    return opened


def services_for(url: str, data: Path) -> Services:
    log = logging.getLogger("bench.ingest")
    log.addHandler(logging.NullHandler())
    log.propagate = False
    return make_services(data, url, log=log, smtp=RELAY)


@contextmanager
def timed_steps(timings: Timings) -> Iterator[list[float]]:
    """Wall-clock time of ``flow.receive`` and of every step of ``flow.STEPS`` into ``timings``;
    yields the list of the times the message rows were claimed (the lock's start)."""
    def timed(name: str, run: Callable[[Journey, Services], None]) -> Callable[[Journey, Services], None]:
        def wrapper(journey: Journey, services: Services) -> None:
            started = time.perf_counter()
            try:
                run(journey, services)
            finally:
                timings.setdefault(name, []).append(time.perf_counter() - started)
        return wrapper

    claimed: list[float] = []
    claim_message = message_queries.claim_message

    def claim(*args: object, **kwargs: object) -> object:
        claimed.append(time.perf_counter())
        return claim_message(*args, **kwargs)  # type: ignore[arg-type]

    receive = flow.receive

    def timed_receive(services: Services, delivery: Delivery) -> int:
        started = time.perf_counter()
        try:
            return receive(services, delivery)
        finally:
            timings.setdefault("receive", []).append(time.perf_counter() - started)

    steps = flow.STEPS
    flow.STEPS = tuple(replace(step, run=timed(step.name, step.run)) for step in steps)
    setattr(flow, "claim_message", claim)  # noqa: B010 - the name flow.process calls
    setattr(flow, "receive", timed_receive)  # noqa: B010
    try:
        yield claimed
    finally:
        flow.STEPS = steps
        setattr(flow, "claim_message", claim_message)  # noqa: B010
        setattr(flow, "receive", receive)  # noqa: B010


def one_run(database: Callable[[], AbstractContextManager[str]], raws: list[bytes],
            timings: Timings | None = None) -> tuple[float, float, float]:
    """(messages per second through ingest, messages per second through receive alone, CPU seconds
    of this process per message through ingest) on a fresh database; with ``timings``, the steps'
    times of the ingest are recorded."""
    with database() as url, tempfile.TemporaryDirectory(prefix="bench-ingest-data-") as data:
        services = services_for(url, Path(data))
        flow.ingest(services, Delivery(raw=raws[0], received_at=AT, channel="cli"))  # warm-up
        freeze_heap()  # as serve does once started
        floor_raws = [r.replace(b"<ingest-", b"<floor-", 1) for r in raws[1:]]
        started = time.perf_counter()
        for raw in floor_raws:
            flow.receive(services, Delivery(raw=raw, received_at=AT, channel="cli"))
        floor = len(floor_raws) / (time.perf_counter() - started)
        with services.sessions.begin() as session:  # the floor's messages are not processed
            for inbound_id in message_queries.unfinished_messages(session, limit=len(raws)):
                session.get_one(InboundMessage, inbound_id).outcome = "ignored"
        elapsed = 0.0
        cpu = time.process_time()
        with timed_steps(timings if timings is not None else {}) as claimed:
            for raw in raws[1:]:
                started = time.perf_counter()
                result = flow.ingest(services, Delivery(raw=raw, received_at=AT, channel="cli"))
                done = time.perf_counter()
                elapsed += done - started
                assert result.outcome in ("accepted", "rejected"), result
                if timings is not None:
                    timings.setdefault("ingest", []).append(done - started)
                    timings.setdefault("lock held", []).append(done - claimed[-1])
        cpu = time.process_time() - cpu
        engine_of(services.sessions).dispose()
    return (len(raws) - 1) / elapsed, floor, cpu / (len(raws) - 1)


def library_floors(raws: list[bytes], repeat: int = 3) -> list[tuple[str, float, float]]:
    """(work, ms of the library alone, ms of our code doing that work) per message, the best of
    ``repeat`` passes over ``raws``: the part of each step that no code of ours could remove
    without changing library."""
    mails = [parse_message(raw) for raw in raws]
    books = [m.attachments[0].data for m in mails]
    checked = [check_workbook(data, "bilan.xlsx", year=2013) for data in books]
    rejected = [wb for wb in checked if wb.issues]

    def best(run: Callable[[], object], count: int) -> float:
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            run()
            times.append((time.perf_counter() - started) / count)
        return 1000 * min(times)

    def each(function: Callable[[bytes], object], items: list[bytes]) -> Callable[[], object]:
        return lambda: [function(item) for item in items]

    def corrections() -> object:
        return [build_corrections(wb, region_code="53", region_name="Bretagne", campaign_id="2014", year=2013)
                for wb in rejected]

    annotated = [build_corrections(wb, region_code="53", region_name="Bretagne", campaign_id="2014", year=2013)
                 for wb in rejected]

    def rezipped(data: bytes) -> bytes:  # the same parts, deflated again by zipfile
        with zipfile.ZipFile(io.BytesIO(data)) as source:
            parts = [(info.filename, source.read(info)) for info in source.infolist()]
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
            for name, part in parts:
                target.writestr(name, part)
        return out.getvalue()

    def compat32(raw: bytes) -> object:
        message = email.message_from_bytes(raw, policy=policy.compat32)
        return [part.get_payload(decode=True) for part in message.walk() if not part.is_multipart()]

    return [
        ("e-mail structure and attachment (`email`, compat32)", best(each(compat32, raws), len(raws)),
         best(each(parse_message, raws), len(raws))),
        ("workbook: unzip and sheet XML, no parsing (`zipfile`)", best(each(raw_floor, books), len(books)),
         best(lambda: [check_workbook(data, "bilan.xlsx", year=2013) for data in books], len(books))),
        ("annotated workbook of a rejected return: its parts zipped again (`zipfile`)",
         best(each(rezipped, annotated), len(rejected)), best(corrections, len(rejected))),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pg", default=DEFAULT_PG_ADMIN_URL)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    backends = {"SQLite": sqlite_url, "PostgreSQL": postgres_url(args.pg)}
    lines = ["| store | messages per second (median) | ms per message | floor: receive alone, ms per message "
             "| × floor | CPU ms per message (this process) | runs (messages per second) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    splits: dict[str, Timings] = {}
    loads = [os.getloadavg()[0]]
    for name, database in backends.items():
        runs = [one_run(database, messages(args.messages + 1, f"{name}-{run}-{time.monotonic_ns()}"))
                for run in range(args.runs)]
        rates = [rate for rate, _, _ in runs]
        median = statistics.median(rates)
        floor = statistics.median(f for _, f, _ in runs)
        cpu = statistics.median(c for _, _, c in runs)
        lines.append(f"| {name} | {median:.1f} | {1000 / median:.1f} | {1000 / floor:.1f} | "
                     f"{floor / median:.1f} | {1000 * cpu:.1f} | {', '.join(f'{r:.1f}' for r in rates)} |")
        timings: Timings = {}
        one_run(database, messages(args.messages + 1, f"{name}-timed-{time.monotonic_ns()}"), timings)
        splits[name] = timings
        loads.append(os.getloadavg()[0])
    for timings in splits.values():
        counted = ["receive", *(s.name for s in flow.STEPS)]
        timings["other"] = [sum(timings["ingest"]) - sum(sum(timings.get(k, [])) for k in counted)]
    rows = {"ingest": "whole message (ingest)", "receive": "receive (stored, committed)",
            **{s.name: s.name + (" (before the lock)" if s.before_lock else "") for s in flow.STEPS},
            "other": "other: sessions, reads, claim, commit", "lock held": "lock held: claim to commit"}
    split_lines = ["| step | " + " | ".join(splits) + " |", "| --- |" + " --- |" * len(splits)]
    for key, label in rows.items():
        cells = [f"{1000 * sum(t.get(key, [])) / len(t['ingest']):.2f} ms" for t in splits.values()]
        split_lines.append(f"| {label} | " + " | ".join(cells) + " |")
    floors = library_floors(messages(30, f"floors-{time.monotonic_ns()}"))
    floor_lines = ["| work, per message | the library alone | our code doing it | × |", "| --- | --- | --- | --- |"]
    floor_lines += [f"| {work} | {alone:.2f} ms | {ours:.2f} ms | {ours / alone:.1f} |" for work, alone, ours in floors]
    body = (
        f"{SECTION}\n\n"
        f"`flow.ingest` (store + process, committed) of {args.messages} messages per run, each with a filled "
        f"Annexe 2 workbook, one at a time in one process, a relay configured (the reply is queued, the outbox "
        f"sender delivers it); median of {args.runs} runs on a fresh database each. The floor is `flow.receive` "
        f"alone (one committed insert of the raw bytes) on as many messages, same store, same run. "
        f"`bench/ingest.py` on {machine()}; PostgreSQL on 127.0.0.1; load average "
        f"{' → '.join(f'{x:.1f}' for x in loads)} during the run.\n\n" + "\n".join(lines) + "\n\n"
        "Where the time goes (one more run, mean wall-clock time per message around each step):\n\n"
        + "\n".join(split_lines) + "\n\n"
        "What the libraries alone cost for the same work (best of 3 passes over 30 of the messages, same run; "
        "\"our code\": `parse_message`, `check_workbook` (read, locate, validate), `build_corrections`, of which "
        "a third of the returns need one):\n\n" + "\n".join(floor_lines) + "\n"
    )
    print(body)
    if args.write:
        write_section(SECTION, body)


if __name__ == "__main__":
    main()
