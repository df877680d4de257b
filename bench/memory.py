"""Peak memory (RSS) of ingesting through ``flow.ingest``, each case in a fresh subprocess.

Cases:

- ``baseline``: the process with everything imported and one small return ingested;
- ``attachment-5MB``, ``-10MB``, ``-25MB``: one message carrying a workbook of that size (a filled
  Annexe 2 plus an incompressible picture stored in the zip, as when a region pastes a scan into the
  sheet); the ``[limits]`` are raised so the file is read in full (the worst case, not a refusal).
  The peak above the baseline, divided by the message's size, shows whether it grows linearly;
- ``burst``: ``--burst`` returns ingested one after the other in the same process.

The floor is the baseline, measured in the same run: the goal is the 25 MB case under 200 MB.

Peak RSS is the child's ``VmHWM`` (/proc/self/status) read at its end; SQLite store in a temporary
directory. Median of ``--runs`` children per case.

    .venv/bin/python -m bench.memory [--runs 3] [--burst 500] [--write]

``--write`` replaces the "Peak memory" section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from bench.report import machine, write_section

SECTION = "## Peak memory"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ROOT = Path(__file__).resolve().parent.parent
# Raised so that the 25 MB attachment is read in full (the worst case, not a refusal).
ATTACHMENT_MB = (5, 10, 25)
LIMITS = {"max_message_bytes": 67_108_864, "max_attachment_bytes": 33_554_432, "max_uncompressed_bytes": 104_857_600}


def big_workbook(size: int) -> bytes:
    from tests.factories.workbooks import good_workbook

    source = zipfile.ZipFile(io.BytesIO(good_workbook()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            target.writestr(item, source.read(item.filename))
        target.writestr(zipfile.ZipInfo("xl/media/image1.png"), os.urandom(size), zipfile.ZIP_STORED)
    return out.getvalue()


def peak_kib() -> int:
    """This process's peak RSS (``VmHWM``: unlike ``ru_maxrss``, not inherited across fork+exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def message(n: int, book: bytes) -> bytes:
    from tests.factories.emails import build_email

    return build_email(sender=f"agent{n}@bretagne.pref.gouv.fr", message_id=f"<memory-{n}@bench>",
                       subject=f"Bilan 2013 envoi {n}", attachments=[("bilan.xlsx", book, XLSX)])


def child(case: str, burst: int) -> dict[str, float]:
    from intake.pipeline import flow
    from intake.pipeline.journey import Delivery
    from tests.factories.workbooks import good_workbook
    from tests.support.settings import make_services

    at = datetime(2014, 5, 2, 9, 30, tzinfo=UTC)
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        log = logging.getLogger("bench.memory")
        log.addHandler(logging.NullHandler())
        log.propagate = False
        services = make_services(Path(tmp), f"sqlite:///{tmp}/bench.sqlite3", log=log, limits=LIMITS)

        def ingest(n: int, book: bytes) -> str:
            return ingest_raw(message(n, book))

        def ingest_raw(raw: bytes) -> str:
            return flow.ingest(services, Delivery(raw=raw, received_at=at, channel="cli")).outcome

        outcomes = [ingest(0, good_workbook())]
        before = peak_kib()
        if case.startswith("attachment-"):  # built by the parent: building it here would count too
            outcomes.append(ingest_raw(Path(os.environ["BENCH_MEMORY_MESSAGE"] + case).read_bytes()))
        elif case == "burst":
            book = good_workbook()
            outcomes += [ingest(n, book) for n in range(1, burst + 1)]
    peak = peak_kib()
    return {"peak_mb": peak / 1024, "before_mb": before / 1024, "outcomes": len(set(outcomes))}


def measure(case: str, runs: int, burst: int, big: Path) -> list[float]:
    peaks = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-m", "bench.memory", "--child", case, "--burst", str(burst)],
                             cwd=ROOT, capture_output=True, text=True, check=True,
                             env={**os.environ, "BENCH_MEMORY_MESSAGE": str(big) + "-"})
        peaks.append(json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"])
    return peaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--burst", type=int, default=500)
    parser.add_argument("--child")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.burst)))
        return
    lines = ["| case | peak RSS (median) | above the baseline | above the baseline / message size | runs |",
             "| --- | --- | --- | --- | --- |"]
    sizes: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-memory-msg-") as tmp:
        big = Path(tmp) / "big.eml"
        for mb in ATTACHMENT_MB:
            path = Path(f"{big}-attachment-{mb}MB")
            path.write_bytes(message(1, big_workbook(mb * 1024 * 1024)))
            sizes[f"attachment-{mb}MB"] = path.stat().st_size / 1024 / 1024
        cases = ("baseline", *sizes, "burst")
        results = {case: measure(case, args.runs, args.burst, big) for case in cases}
    floor = statistics.median(results["baseline"])
    for case, peaks in results.items():
        peak = statistics.median(peaks)
        label = {"burst": f"burst of {args.burst} returns", "baseline": "baseline (the floor)"}.get(case, case)
        ratio = "-"
        if case in sizes:
            label = f"{case.removeprefix('attachment-')} workbook attachment ({sizes[case]:.1f} MB message)"
            ratio = f"{(peak - floor) / sizes[case]:.1f}"
        lines.append(f"| {label} | {peak:.0f} MB | {peak - floor:.0f} MB | {ratio} | "
                     f"{', '.join(f'{p:.0f}' for p in peaks)} |")
    body = (
        f"{SECTION}\n\n"
        f"Peak resident memory of a process ingesting through `flow.ingest` (SQLite), each case in a fresh "
        f"subprocess, median of {args.runs}. `bench/memory.py --burst {args.burst}` on {machine()}.\n\n"
        + "\n".join(lines) + "\n\nGoal (issue 15): under 200 MB with a 25 MB attachment, growing no faster than "
        "linearly with its size (a constant ratio in the fourth column), flat over a burst.\n"
    )
    print(body)
    if args.write:
        write_section(SECTION, body)


if __name__ == "__main__":
    main()
