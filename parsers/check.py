"""The single entry point for a workbook: bytes in, a WorkbookReturn (values + issues) out.

``check_workbook`` never raises: a file that cannot be opened becomes one ``unreadable_file``
error, a workbook without the Annexe 2 table one ``template_not_recognised`` error.
``read_return`` is the same without the last-resort catch-all, for tests.
"""

from __future__ import annotations

import hashlib
import re

from parsers.catalogue import geography_for_year, indicators
from parsers.messages import make_issue
from parsers.model import Indicator, IndicatorEntry, Issue, Region, UnreadableFile, WorkbookReturn, cell_ref
from parsers.regions import by_code, match_region
from parsers.rules import Context, run_rules
from parsers.table import Table, locate_table, text_at, value_at
from parsers.values import Normalised, normalise
from parsers.workbook import read_workbook

REASONS = {
    "encrypted": "il est protégé par un mot de passe : retirez le mot de passe avant de l'envoyer",
    "corrupt": "il est endommagé ou incomplet",
    "not_a_spreadsheet": "ce n'est pas un classeur Excel ou LibreOffice",
    "too_large": "il est trop volumineux",
    "unsupported": "ce format de fichier n'est pas pris en charge",
}


def check_workbook(
    data: bytes,
    filename: str,
    *,
    year: int | None = None,
    strict: bool = False,
    expected_region: str | None = None,
    geography: int | None = None,
) -> WorkbookReturn:
    """Read, locate, normalise and validate one workbook. Never raises."""
    try:
        return read_return(data, filename, year=year, strict=strict, expected_region=expected_region,
                           geography=geography)
    except Exception as exc:  # last resort: a reply must still go out
        return unreadable(data, filename, "corrupt", repr(exc))


def read_return(
    data: bytes,
    filename: str,
    *,
    year: int | None = None,
    strict: bool = False,
    expected_region: str | None = None,
    geography: int | None = None,
) -> WorkbookReturn:
    """Like :func:`check_workbook` but lets programming errors through (tests fuzz this)."""
    try:
        workbook = read_workbook(data, filename)
    except UnreadableFile as exc:
        return unreadable(data, filename, exc.reason, exc.detail)
    if geography is None and year is not None:
        geography = geography_for_year(year)
    catalogue = indicators()
    table = locate_table(workbook, filename, geography, catalogue)
    digest = hashlib.sha256(data).hexdigest()
    if table is None:
        issue = make_issue("template_not_recognised", file=filename)
        return WorkbookReturn(filename, None, None, None, None, None, None, {}, (issue,), digest)
    entries, normalised = read_entries(table, catalogue)
    ctx = Context(
        table=table, entries=entries, normalised=normalised, catalogue=catalogue, file=filename,
        year=year, strict=strict, expected_region=resolve_region(expected_region, geography),
    )
    issues = tuple(sorted(run_rules(ctx), key=issue_order))
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


def unreadable(data: bytes, filename: str, reason: str, detail: str = "") -> WorkbookReturn:
    issue = make_issue("unreadable_file", file=filename, reason=REASONS.get(reason, reason))
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
