"""The annotated workbook a reply attaches: ``corrections-<region>.xlsx``, the clerk's file to fix.

Pure: a :class:`~parsers.model.WorkbookReturn` (what we read and the issues found) in, .xlsx bytes
out. The file is our Annexe 2 template (:mod:`notifier.template_workbook`, with its ``_meta`` sheet,
so our reader reads it exactly like the template) holding the values and observations we read:

* each value as we understood it (``30 %`` typed by the region becomes 30 points, ``12 créées,
  5 rénovées`` becomes ``12 / 5``), or, when it could not be understood, as it was typed (a formula
  without a result as its text), so that reading the file back finds the same problems;
* each cell an issue points at filled red (error) or orange (warning), unlocked, with the French
  message as a cell comment. An issue located in the region's own layout is moved by indicator to
  our template's cell (result, observation or label); the region line, the year header and the
  observations column have their own places; an issue with no cell in our layout (a row that is
  no indicator, an unreadable file) is only listed;
* a first sheet, « À corriger », listing every issue: the row on the main sheet, the indicator
  (label, code in brackets), the severity, what is wrong, how to fix it (the message's first
  sentence, then the rest), and a link to the cell.

When the workbook named another region than the sender's, the file keeps the region it named, so
the ``region_mismatch`` error stays visible until the clerk changes it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime

from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Border, Font, PatternFill, Protection, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.hyperlink import Hyperlink
from openpyxl.worksheet.worksheet import Worksheet

from notifier.rendering import SEVERITY_WORDS
from notifier.template_workbook import (
    COLUMN_WIDTHS,
    FIRST_ROW,
    FONT_NAME,
    FONT_SIZE,
    HEADER_ROW,
    LABEL_COL,
    MAIN_SHEET,
    OBSERVATION_COL,
    RESULT_COL,
    Stamps,
    fit_rows,
    prefill_value,
    print_setup,
    template_book,
    workbook_bytes,
)
from parsers.issues import row_of
from parsers.model import IndicatorEntry, Issue, WorkbookReturn, cell_ref
from parsers.reference.catalogue import geography_for_year, indicators_by_id
from parsers.reference.regions import by_code
from parsers.text import strip_accents

ISSUES_SHEET = "À corriger"
ERROR_COLOUR = "FF9999"  # red
WARNING_COLOUR = "FFC266"  # orange
_ERROR_FILL = PatternFill("solid", fgColor=ERROR_COLOUR)
_WARNING_FILL = PatternFill("solid", fgColor=WARNING_COLOUR)
ISSUE_HEADERS = ("N°", "Ligne", "Cellule", "Élément concerné", "Gravité", "Ce qui ne va pas", "Comment corriger")
ISSUE_WIDTHS = (5, 7, 8, 38, 13, 62, 55)
ISSUE_HEADER_ROW = 4
REGION_CELL = (2, 1)  # A2: « Région : <name> »
# Issues about no indicator, and where they go in our layout (row, column).
PLACES = {
    "region_mismatch": REGION_CELL,
    "region_not_found": REGION_CELL,
    "year_mismatch": (HEADER_ROW, RESULT_COL),
    "missing_column": (HEADER_ROW, OBSERVATION_COL),  # the only column a readable table can lack
    "empty_return": (HEADER_ROW, RESULT_COL),
}
# What an issue about no indicator is about, in the list.
SUBJECTS = {
    "region_mismatch": "Région",
    "region_not_found": "Région",
    "year_mismatch": "Année de la colonne « Résultat régional »",
    "missing_column": "Colonne « Observations »",
    "empty_return": "Tableau entier",
    "unknown_indicator": "Ligne de votre tableau non reconnue",
    "ambiguous_indicator": "Ligne de votre tableau non reconnue",
}
OTHER_SUBJECT = "Fichier"
COMMENT_AUTHOR = "conventions-intake"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-ZÀÂÄÇÉÈÊËÎÏÔÖÙÛÜ«(])")
_FORMULA_STARTS = ("=", "+", "-", "@")
_THIN = Side(style="thin", color="808080")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_WRAP = Alignment(wrap_text=True, vertical="top")
_CENTRED = Alignment(wrap_text=True, vertical="top", horizontal="center")
_FONT = Font(name=FONT_NAME, size=FONT_SIZE)
_LINK_FONT = Font(name=FONT_NAME, size=FONT_SIZE, color="0563C1", underline="single")


@dataclass(frozen=True)
class Placed:
    """One issue and the cell of our template it points at (None: nowhere in our layout)."""

    issue: Issue
    cell: tuple[int, int] | None


def corrections_name(region_name: str, number: int = 1) -> str:
    """``corrections-provence-alpes-cote-d-azur.xlsx``: ASCII, lower case; ``-2`` for a second file."""
    slug = re.sub(r"[^a-z0-9]+", "-", strip_accents(region_name).lower()).strip("-") or "region"
    return f"corrections-{slug}{'' if number == 1 else f'-{number}'}.xlsx"


def annotated(workbooks: Iterable[WorkbookReturn], region_name: str) -> list[tuple[WorkbookReturn, str]]:
    """The workbooks of a return that get an annotated copy (those with issues), each with the name
    of its file: what the reply attaches, and what its text can name."""
    chosen = [wb for wb in workbooks if wb.issues]
    return [(wb, corrections_name(region_name, number)) for number, wb in enumerate(chosen, start=1)]


def split_message(message: str) -> tuple[str, str]:
    """(what is wrong, how to fix it): an issue's first sentence, then the rest ("" when none)."""
    parts = _SENTENCE_END.split(message.strip(), maxsplit=1)
    return (parts[0], parts[1]) if len(parts) == 2 else (parts[0], "")


def build_corrections(
    workbook: WorkbookReturn, *, region_code: str | None, region_name: str | None, campaign_id: str, year: int
) -> bytes:
    """The annotated template of ``workbook`` (see the module's doc), as .xlsx bytes."""
    if workbook.region_code and any(i.code == "region_mismatch" for i in workbook.issues):
        named = by_code(workbook.region_code, geography_for_year(year))
        if named is not None:
            region_code, region_name = named.code, named.name
    book = template_book(region_code=region_code, region_name=region_name, campaign_id=campaign_id, year=year)
    main, rows = book.main, book.rows
    for ident, entry in workbook.entries.items():
        if ident in rows:
            _write_entry(main, rows[ident], ident, entry)
    fit_rows(main, range(FIRST_ROW, FIRST_ROW + len(rows)), COLUMN_WIDTHS)
    placed = [_placed(issue, _place(issue, workbook, rows)) for issue in _ordered(workbook.issues)]
    _mark(main, placed)
    issues = book.workbook.create_sheet(ISSUES_SHEET, 0)
    _fill_issues(issues, placed, workbook.file, region_name, year)
    main.sheet_view.tabSelected = False
    book.workbook.active = 0
    return workbook_bytes(book.workbook)


# --------------------------------------------------------------------------- the main sheet


def _write_entry(ws: Worksheet, row: int, ident: str, entry: IndicatorEntry) -> None:
    result = ws.cell(row=row, column=RESULT_COL)
    value = _as_typed(ident, entry)
    if value is not None:
        result.value = value
        if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
            result.data_type = "s"  # a formula without a result is shown as text, never run
    if entry.observation:
        ws.cell(row=row, column=OBSERVATION_COL, value=entry.observation)
        if entry.observation.startswith(_FORMULA_STARTS):
            ws.cell(row=row, column=OBSERVATION_COL).data_type = "s"


def _as_typed(ident: str, entry: IndicatorEntry) -> object:
    """The value as we read it, or the cell as it was typed when it could not be read."""
    if entry.value is not None:
        return prefill_value(entry.value)
    raw = entry.raw
    if isinstance(raw, bool | int | float) and not isinstance(raw, bool):
        unit = indicators_by_id()[ident].unit
        if unit == "percent" and 0 <= raw <= 100:
            return raw * 100  # out of range only once read as a percentage format: 1.5 was 150 %
        return raw
    if isinstance(raw, str | bool | datetime | date):
        return raw
    return None


def _ordered(issues: Iterable[Issue]) -> list[Issue]:
    """Errors first, each group in the order the reader found them (sheet, row, column)."""
    issues = list(issues)
    return [i for i in issues if i.severity == "error"] + [i for i in issues if i.severity != "error"]


def _place(issue: Issue, workbook: WorkbookReturn, rows: dict[str, int]) -> tuple[int, int] | None:
    """The cell of our template an issue of the region's workbook is about."""
    if issue.indicator and issue.indicator in rows:
        row = rows[issue.indicator]
        entry = workbook.entries.get(issue.indicator)
        if entry is not None and issue.cell:
            if issue.cell == entry.observation_cell:
                return row, OBSERVATION_COL
            if issue.cell == entry.label_cell:
                return row, LABEL_COL
        return (row, LABEL_COL) if issue.code == "duplicate_indicator" else (row, RESULT_COL)
    return PLACES.get(issue.code)


def _placed(issue: Issue, cell: tuple[int, int] | None) -> Placed:
    """The issue with its message naming our cell rather than the region's (« cellule C15 » -> G12)."""
    ref = cell_ref(*cell) if cell else None
    if ref is not None and issue.cell and issue.cell != ref:
        message = re.sub(rf"(?<![A-Z0-9!]){re.escape(issue.cell)}(?![0-9])", ref, issue.message)
        old_row = row_of(issue.cell)
        if old_row is not None and cell is not None and old_row != cell[0]:  # « Ligne 14 » of their sheet
            message = re.sub(rf"\b([Ll]igne) {old_row}\b", rf"\g<1> {cell[0]}", message)
        issue = replace(issue, message=message, sheet=MAIN_SHEET, cell=ref)
    return Placed(issue, cell)


def _mark(ws: Worksheet, placed: list[Placed]) -> None:
    by_cell: dict[tuple[int, int], list[Issue]] = {}
    for item in placed:
        if item.cell is not None:
            by_cell.setdefault(item.cell, []).append(item.issue)
    for (row, col), issues in by_cell.items():
        cell = ws.cell(row=row, column=col)
        error = any(i.severity == "error" for i in issues)
        cell.fill = _ERROR_FILL if error else _WARNING_FILL
        cell.protection = Protection(locked=False)
        text = "\n\n".join(f"{SEVERITY_WORDS.get(i.severity, i.severity).capitalize()} : {i.message}" for i in issues)
        lines = sum(len(text) // 50 + 1 for text in text.split("\n"))
        cell.comment = Comment(text, COMMENT_AUTHOR, width=360, height=max(80, 15 * lines))


# --------------------------------------------------------------------------- the list of issues


def _subject(issue: Issue) -> str:
    ind = indicators_by_id().get(issue.indicator or "")
    if ind is not None:
        return f"{ind.label} [{ind.id}]"
    if issue.code in ("unknown_indicator", "ambiguous_indicator") and issue.value:
        return f"{SUBJECTS[issue.code]} : « {issue.value} »"
    return SUBJECTS.get(issue.code, OTHER_SUBJECT)


def _fill_issues(ws: Worksheet, placed: list[Placed], filename: str, region_name: str | None, year: int) -> None:
    errors = sum(1 for p in placed if p.issue.severity == "error")
    title = f"Points à corriger – bilan {year}" + (f" – {region_name}" if region_name else "")
    ws.cell(row=1, column=1, value=title).font = Font(name=FONT_NAME, size=13, bold=True)
    intro = (f"Fichier reçu : « {filename} ». {errors} erreur(s) à corriger, {len(placed) - errors} "
             f"avertissement(s) à vérifier. Dans la feuille « {MAIN_SHEET} », les cellules en rouge sont à "
             "corriger, celles en orange à vérifier ; le message figure en commentaire de la cellule. Cliquez "
             "sur une cellule de la colonne « Cellule » pour y aller. Corrigez, enregistrez ce fichier et "
             "renvoyez-le en réponse.")
    ws.cell(row=2, column=1, value=intro).font = _FONT
    ws.cell(row=2, column=1).alignment = _WRAP
    ws.merge_cells(start_row=2, start_column=1, end_row=2, end_column=len(ISSUE_WIDTHS))
    ws.row_dimensions[2].height = 3 * FONT_SIZE * 1.3 + 6
    for col, (text, width) in enumerate(zip(ISSUE_HEADERS, ISSUE_WIDTHS, strict=True), start=1):
        cell = ws.cell(row=ISSUE_HEADER_ROW, column=col, value=text)
        cell.font = Font(name=FONT_NAME, size=FONT_SIZE, bold=True)
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
        cell.border = _BORDER
        cell.alignment = Alignment(wrap_text=True, vertical="center", horizontal="center")
        ws.column_dimensions[get_column_letter(col)].width = width
    row = ISSUE_HEADER_ROW
    stamps = Stamps()
    for number, item in enumerate(placed, start=1):
        row = ISSUE_HEADER_ROW + number
        what, fix = split_message(item.issue.message)
        ref = cell_ref(*item.cell) if item.cell else None
        error = item.issue.severity == "error"
        values = (number, item.cell[0] if item.cell else None, ref, _subject(item.issue),
                  SEVERITY_WORDS.get(item.issue.severity, item.issue.severity), what, fix or None)
        for col, value in enumerate(values, start=1):
            cell = ws.cell(row=row, column=col, value=value)
            alignment = _CENTRED if col in (1, 2, 3, 5) else _WRAP
            if col == 5:
                stamps.apply(cell, ("severity", error), font=_FONT, border=_BORDER, alignment=alignment,
                             fill=_ERROR_FILL if error else _WARNING_FILL)
            elif col in (2, 3) and ref is not None:
                stamps.apply(cell, ("link", col), font=_LINK_FONT, border=_BORDER, alignment=alignment)
                cell.hyperlink = Hyperlink(ref=cell.coordinate, location=f"'{MAIN_SHEET}'!{ref}",
                                           tooltip=f"Aller à la cellule {ref}")
            else:
                stamps.apply(cell, ("plain", col), font=_FONT, border=_BORDER, alignment=alignment)
    fit_rows(ws, range(ISSUE_HEADER_ROW + 1, row + 1), ISSUE_WIDTHS)
    ws.freeze_panes = ws.cell(row=ISSUE_HEADER_ROW + 1, column=1)
    print_setup(ws, title_rows=f"{ISSUE_HEADER_ROW}:{ISSUE_HEADER_ROW}",
                area=f"A1:{get_column_letter(len(ISSUE_WIDTHS))}{max(row, ISSUE_HEADER_ROW)}")
