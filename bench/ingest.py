"""Ingest throughput: messages per second through ``flow.ingest`` (store, classify, extract,
validate, record, reply queued), on SQLite and on PostgreSQL, one process, one message at a time.

Messages: e-mails from the regions each carrying a filled Annexe 2 workbook (every third one
with a refused figure), distinct Message-IDs and senders, so every one is processed in full and
answered. Each run uses a fresh, migrated database; the median of ``--runs`` runs is reported.
The per-step split comes from one extra profiled run (cProfile, cumulative time).

    .venv/bin/python -m bench.ingest [--messages 40] [--runs 3] [--pg URL] [--write]

``--pg`` is the administrative URL of the PostgreSQL server (default
postgresql://postgres@127.0.0.1:5432/test): a throw-away database is created and dropped per run.
``--write`` replaces the "Ingest throughput" section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path

from bench.report import machine, write_section
from intake.pipeline import flow
from intake.pipeline.journey import Delivery
from intake.pipeline.services import Services
from store.db import engine_of
from tests.factories.emails import XLSX, build_email
from tests.factories.workbooks import good_workbook
from tests.support.postgres import DEFAULT_PG_ADMIN_URL, throwaway_database
from tests.support.settings import make_services

SECTION = "## Ingest throughput"
AT = datetime(2014, 5, 2, 9, 30, tzinfo=UTC)
STEPS = ("receive", "classify", "extract", "validate", "record", "reply")
# Where the pipeline's steps are defined: flow.py and the steps/ package next to it (intake/pipeline/).
FLOW_FILE = Path(flow.__file__).resolve()
STEPS_DIR = FLOW_FILE.parent / "steps"


def messages(count: int, tag: str) -> list[bytes]:
    books = [good_workbook(), good_workbook(), good_workbook(values={"I09": "quatre"})]
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
    return make_services(data, url, log=log)


def one_run(database: Callable[[], AbstractContextManager[str]], raws: list[bytes],
            profile: cProfile.Profile | None = None) -> float:
    """Messages per second for one run on a fresh database."""
    with database() as url, tempfile.TemporaryDirectory(prefix="bench-ingest-data-") as data:
        services = services_for(url, Path(data))
        flow.ingest(services, Delivery(raw=raws[0], received_at=AT, channel="cli"))  # warm-up
        if profile is not None:
            profile.enable()
        started = time.perf_counter()
        for raw in raws[1:]:
            result = flow.ingest(services, Delivery(raw=raw, received_at=AT, channel="cli"))
            assert result.outcome in ("accepted", "rejected"), result
        elapsed = time.perf_counter() - started
        if profile is not None:
            profile.disable()
        engine_of(services.sessions).dispose()
    return (len(raws) - 1) / elapsed


def in_pipeline(filename: str) -> bool:
    """Whether a profiled function's file is the flow or one of the steps."""
    path = Path(filename).resolve()
    return path == FLOW_FILE or STEPS_DIR in path.parents


def step_split(profile: cProfile.Profile) -> dict[str, float]:
    """Cumulative seconds per pipeline step (by function name) in a profiled run."""
    split: dict[str, float] = {}
    for entry in profile.getstats():  # what pstats reads: totaltime is the cumulative time, in seconds
        code = entry.code
        if isinstance(code, str):  # a built-in function
            continue
        if code.co_name in STEPS and in_pipeline(code.co_filename):
            split[code.co_name] = split.get(code.co_name, 0.0) + entry.totaltime
    return split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=40)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pg", default=DEFAULT_PG_ADMIN_URL)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    backends = {"SQLite": sqlite_url, "PostgreSQL": postgres_url(args.pg)}
    lines = ["| store | messages per second (median) | ms per message | runs |", "| --- | --- | --- | --- |"]
    splits: dict[str, dict[str, float]] = {}
    for name, database in backends.items():
        rates = [one_run(database, messages(args.messages + 1, f"{name}-{run}-{time.monotonic_ns()}"))
                 for run in range(args.runs)]
        median = statistics.median(rates)
        lines.append(f"| {name} | {median:.1f} | {1000 / median:.0f} | "
                     f"{', '.join(f'{r:.1f}' for r in rates)} |")
        profile = cProfile.Profile()
        one_run(database, messages(args.messages + 1, f"{name}-profiled-{time.monotonic_ns()}"), profile)
        splits[name] = step_split(profile)
    split_lines = ["| step | " + " | ".join(splits) + " |", "| --- |" + " --- |" * len(splits)]
    for step in STEPS:
        split_lines.append(f"| {step} | " + " | ".join(
            f"{1000 * s.get(step, 0.0) / args.messages:.1f} ms" for s in splits.values()) + " |")
    body = (
        f"{SECTION}\n\n"
        f"`flow.ingest` (store + process, committed) of {args.messages} messages per run, each with a filled "
        f"Annexe 2 workbook, one at a time in one process; median of {args.runs} runs on a fresh database each. "
        f"`bench/ingest.py` on {machine()}; PostgreSQL on 127.0.0.1.\n\n" + "\n".join(lines) + "\n\n"
        "Where the time goes (one profiled run, cumulative time per message under cProfile, which inflates "
        "Python-heavy steps):\n\n" + "\n".join(split_lines) + "\n"
    )
    print(body)
    if args.write:
        write_section(SECTION, body)


if __name__ == "__main__":
    main()
