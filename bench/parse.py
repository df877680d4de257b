"""Parse + validate throughput on realistic returns, every reader side by side in one run.

Returns: the Annexe 2 workbooks the tests build (tests/factories/workbooks.py: a filled return,
the same with a refused figure, a hand-made layout), i.e. what a region sends. For each reader:

- ``check_workbook`` — the production path (parsers/check.py): our zip + XML reader
  (parsers/xlsx.py), table location by labels, normalisation and every validation rule;
- ``read_workbook`` — our reader alone (bytes to a ``Workbook`` of cells);
- ``openpyxl`` normal and ``read_only`` modes, ``python-calamine``: a minimal equivalent
  extraction (every sheet, every cell value);
- the raw floor: unzipping the workbook and reading the sheet XML and shared strings, without
  interpreting them — no reader can go below this.

Each reader runs over every return in turn, ``--runs`` times (median reported).

    .venv/bin/python -m bench.parse [--runs 7] [--repeat 30] [--write]

``--write`` replaces the "Parse and validate" section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
import zipfile
from collections.abc import Callable

import openpyxl
import python_calamine

from bench.report import machine, write_section
from parsers.workbook.check import check_workbook
from parsers.workbook.reader import read_workbook
from tests.factories.workbooks import good_workbook, hand_made_layout

SECTION = "## Parse and validate"


def returns() -> list[bytes]:
    return [good_workbook(), good_workbook(values={"I09": "quatre", "I13": ""}),
            good_workbook(layout=hand_made_layout())]


def production(data: bytes) -> object:
    return check_workbook(data, "bilan.xlsx", year=2013, expected_region="53")


def ours(data: bytes) -> object:
    return read_workbook(data, "bilan.xlsx")


def openpyxl_normal(data: bytes) -> object:
    book = openpyxl.load_workbook(io.BytesIO(data), data_only=True)
    return [[cell.value for row in sheet.iter_rows() for cell in row] for sheet in book.worksheets]


def openpyxl_read_only(data: bytes) -> object:
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        return [list(sheet.iter_rows(values_only=True)) for sheet in book.worksheets]
    finally:
        book.close()


def calamine(data: bytes) -> object:
    book = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
    return [book.get_sheet_by_name(name).to_python() for name in book.sheet_names]


def raw_floor(data: bytes) -> object:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [archive.read(name) for name in archive.namelist()
                if name.startswith("xl/worksheets/") or name == "xl/sharedStrings.xml"]


READERS: dict[str, tuple[Callable[[bytes], object], str]] = {
    "check_workbook (production: read + locate + validate)": (production, "our reader, parsers/xlsx.py"),
    "read_workbook (our reader alone)": (ours, "parsers/xlsx.py"),
    "openpyxl (normal)": (openpyxl_normal, f"openpyxl {openpyxl.__version__}"),
    "openpyxl (read_only)": (openpyxl_read_only, f"openpyxl {openpyxl.__version__}"),
    "python-calamine": (calamine, "Rust calamine"),
    "raw floor (unzip + sheet XML, no parsing)": (raw_floor, "zipfile"),
}


def measure(runs: int, repeat: int) -> dict[str, list[float]]:
    """Seconds per return of each reader, one value per run."""
    data = returns()
    results: dict[str, list[float]] = {name: [] for name in READERS}
    for function, _ in READERS.values():  # warm-up: imports, caches, catalogue
        for item in data:
            function(item)
    for _ in range(runs):
        for name, (function, _) in READERS.items():
            started = time.perf_counter()
            for _ in range(repeat):
                for item in data:
                    function(item)
            results[name].append((time.perf_counter() - started) / (repeat * len(data)))
    return results


def table(results: dict[str, list[float]]) -> str:
    floor = statistics.median(results["raw floor (unzip + sheet XML, no parsing)"])
    lines = ["| reader | ms per return (median) | returns per second | × raw floor |",
             "| --- | --- | --- | --- |"]
    for name, values in results.items():
        median = statistics.median(values)
        lines.append(f"| {name} | {median * 1000:.2f} | {1 / median:,.0f} | {median / floor:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    results = measure(args.runs, args.repeat)
    sizes = ", ".join(f"{len(d) / 1024:.1f} KB" for d in returns())
    body = (
        f"{SECTION}\n\n"
        f"Three realistic returns (a filled Annexe 2, one with a refused figure, a hand-made layout; {sizes}), "
        f"each reader over all three, {args.repeat} times per run, median of {args.runs} runs, one process. "
        f"`bench/parse.py` on {machine()}.\n\n" + table(results) + "\n\n"
        "Goal (issue 7): a typical return parsed and validated in under 10 ms.\n"
    )
    print(body)
    if args.write:
        write_section(SECTION, body)


if __name__ == "__main__":
    main()
