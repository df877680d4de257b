"""The single entry point for a workbook: bytes in, a WorkbookReturn (values + issues) out.

``check_workbook`` never raises: a file that cannot be opened becomes one ``unreadable_file``
error, a workbook without the Annexe 2 table one ``template_not_recognised`` error.
``read_return`` is the same without the last-resort catch-all, for tests.

Limits (:class:`parsers.xlsx.ReadLimits`): a file refused by a limit gets its own issue code
(``file_too_large``, ``suspicious_compression``, ``file_too_slow``); a sheet cut at the row or
column limit gets a ``sheet_truncated`` warning. ``limits.seconds`` becomes a deadline when the
check starts: readers look at the clock as they go and give up cleanly once it has passed.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import replace

from parsers.issues import make_issue, reason_words
from parsers.model import Indicator, IndicatorEntry, Issue, Region, UnreadableFile, WorkbookReturn, cell_ref
from parsers.reference.catalogue import geography_for_year, indicators
from parsers.reference.regions import by_code, match_region
from parsers.safezip import DEFAULT_LIMITS, ReadLimits, ReadReport, check_deadline
from parsers.workbook.reader import read_workbook
from parsers.workbook.rules import Context, run_rules
from parsers.workbook.table import Table, locate_table, text_at, value_at
from parsers.workbook.values import Normalised, normalise


def check_workbook(
    data: bytes,
    filename: str,
    *,
    year: int | None = None,
    strict: bool = False,
    expected_region: str | None = None,
    geography: int | None = None,
    limits: ReadLimits = DEFAULT_LIMITS,
) -> WorkbookReturn:
    """Read, locate, normalise and validate one workbook. Never raises."""
    try:
        return read_return(data, filename, year=year, strict=strict, expected_region=expected_region,
                           geography=geography, limits=limits)
    except RecursionError:
        return unreadable(data, filename, "corrupt", "nesting too deep", limits)
    except Exception as exc:  # last resort: a reply must still go out
        return unreadable(data, filename, "corrupt", repr(exc), limits)


def read_return(
    data: bytes,
    filename: str,
    *,
    year: int | None = None,
    strict: bool = False,
    expected_region: str | None = None,
    geography: int | None = None,
    limits: ReadLimits = DEFAULT_LIMITS,
) -> WorkbookReturn:
    """Like :func:`check_workbook` but lets programming errors through (tests fuzz this)."""
    if limits.seconds is not None and limits.deadline is None:
        limits = replace(limits, deadline=time.monotonic() + limits.seconds)
    report = ReadReport()
    try:
        workbook = read_workbook(data, filename, limits=limits, report=report)
        if geography is None and year is not None:
            geography = geography_for_year(year)
        catalogue = indicators()
        table = locate_table(workbook, filename, geography, catalogue)
        check_deadline(limits)
    except UnreadableFile as exc:
        return unreadable(data, filename, exc.reason, exc.detail, limits)
    digest = hashlib.sha256(data).hexdigest()
    cut = [name for name in report.truncated if table is None or name == table.sheet.name]
    notes = tuple(make_issue("sheet_truncated", file=filename, sheet=name, rows=limits.max_rows,
                             cols=limits.max_cols) for name in cut)
    if table is None:
        issue = make_issue("template_not_recognised", file=filename)
        return WorkbookReturn(filename, None, None, None, None, None, None, {}, (issue, *notes), digest)
    entries, normalised = read_entries(table, catalogue)
    ctx = Context(
        table=table, entries=entries, normalised=normalised, catalogue=catalogue, file=filename,
        year=year, strict=strict, expected_region=resolve_region(expected_region, geography),
    )
    issues = tuple(sorted((*run_rules(ctx), *notes), key=issue_order))
    return WorkbookReturn(
        file=filename,
        sheet=table.sheet.name,
        region_code=table.region.code if table.region else None,
        region_text=table.region_text,
        region_cell=table.region_cell,
        year=table.year,
        template_version=table.template_version,
        entries=entries,
        issues=issues,
        sha256=digest,
    )


def read_entries(
    table: Table, catalogue: tuple[Indicator, ...]
) -> tuple[dict[str, IndicatorEntry], dict[str, Normalised]]:
    """One entry per indicator found (its first row), with its normalised value."""
    units = {ind.id: ind.unit for ind in catalogue}
    entries: dict[str, IndicatorEntry] = {}
    normalised: dict[str, Normalised] = {}
    sheet, columns = table.sheet, table.columns
    for ident, rows in table.matches.items():
        match = rows[0]
        result_col = match.result_col or columns.result
        obs_col = match.observation_col or columns.observation
        cell = value_at(sheet, match.row, result_col)
        result = normalise(cell, units[ident])
        raw = None
        if cell is not None:
            raw = cell.error or (cell.formula if cell.formula_without_value else cell.value)
        observation = " ".join(text_at(sheet, match.row, obs_col).split()) if obs_col else ""
        entries[ident] = IndicatorEntry(
            indicator=ident,
            label_cell=match.label_cell,
            value_cell=cell_ref(match.row, result_col),
            raw=raw,
            value=result.value,
            observation=observation or None,
            observation_cell=cell_ref(match.row, obs_col) if obs_col else None,
        )
        normalised[ident] = result
    return entries, normalised


def resolve_region(text: str | None, geography: int | None) -> Region | None:
    """The expected region given as an INSEE code ("53") or a name ("Bretagne")."""
    if not text:
        return None
    if text.strip().isdigit():
        return by_code(text.strip(), geography)
    return match_region(text, geography)


def unreadable(
    data: bytes, filename: str, reason: str, detail: str = "", limits: ReadLimits = DEFAULT_LIMITS
) -> WorkbookReturn:
    issue = limit_issue(filename, reason, detail, limits) or make_issue(
        "unreadable_file", file=filename, reason=reason_words(reason))
    digest = hashlib.sha256(data).hexdigest()
    return WorkbookReturn(filename, None, None, None, None, None, None, {}, (issue,), digest)


def issue_order(issue: Issue) -> tuple[int, str, int, int, str, str]:
    """By sheet, then row and column of the cell; issues without a cell come last."""
    row, col = 10**9, 0
    match = re.fullmatch(r"(?:.*!)?([A-Z]{1,3})(\d+)", issue.cell or "")
    if match:
        letters, digits = match.groups()
        row = int(digits)
        col = 0
        for ch in letters:
            col = col * 26 + ord(ch) - 64
    return (0 if issue.sheet else 1, issue.sheet or "", row, col, issue.code, issue.indicator or "")


def limit_issue(filename: str, reason: str, detail: str, limits: ReadLimits) -> Issue | None:
    """The issue of a file refused by one of the limits, None for other reasons."""
    if reason == "too_slow":
        return make_issue("file_too_slow", file=filename, seconds=_number(limits.seconds or 0))
    if reason == "too_large" and "ratio" in detail:
        return make_issue("suspicious_compression", file=filename, ratio=_number(limits.max_compression_ratio))
    if reason == "too_large":
        return make_issue("file_too_large", file=filename, limit=human_size(limits.max_total_uncompressed))
    return None


def human_size(size: float) -> str:
    """A byte count in French words: « 25 Mo », « 800 ko »."""
    for unit, scale in (("Go", 1024**3), ("Mo", 1024**2), ("ko", 1024)):
        if size >= scale:
            return f"{_number(size / scale)} {unit}"
    return f"{int(size)} octets"


def _number(value: float) -> str:
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return text.replace(".", ",")
