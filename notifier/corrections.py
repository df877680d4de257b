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

How the file is made: not through openpyxl (loading and saving a workbook there costs ~15 ms, and
this runs for every faulty return). The blank template's bytes, built and saved by openpyxl once per
region and campaign in a process (:func:`notifier.template_workbook.blank_template`, the very file
the regions receive), are patched part by part with :mod:`notifier.xlsx` (~1 ms): the main
sheet's cells, row heights and comments, new formats appended to the styles, the list as a new
sheet put first in the workbook; the parts left as they are were compressed once. Every text
comes from a region's workbook, untrusted: it is escaped, a text is never written as a formula,
and what XML cannot carry (control characters) never makes the file invalid (:mod:`notifier.xlsx`).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from functools import lru_cache

from intake.config.settings import Settings
from notifier.rendering import SEVERITY_WORDS
from notifier.template_workbook import (
    COLUMN_WIDTHS,
    FONT_NAME,
    FONT_SIZE,
    FOOTER,
    HEADER_ROW,
    LABEL_COL,
    MAIN_SHEET,
    OBSERVATION_COL,
    PAGE_MARGINS,
    RESULT_COL,
    blank_template,
    prefill_value,
    row_height,
)
from notifier.xlsx.package import (
    COMMENTS_REL,
    COMMENTS_TYPE,
    VML_REL,
    VML_TYPE,
    WORKSHEET_REL,
    WORKSHEET_TYPE,
    Member,
    Note,
    add_content_types,
    add_defined_names,
    add_relationship,
    comments_vml,
    comments_xml,
    next_number,
    pack,
    prepend_sheet,
    read_parts,
    relationships_xml,
    sheet_parts,
    zip_archive,
)
from notifier.xlsx.sheets import (
    PageSetup,
    SheetPatch,
    SheetXml,
    hyperlink_xml,
    insert_child,
    split_sheet,
    unselect_tab,
    worksheet_xml,
)
from notifier.xlsx.styles import (
    StyleBuilder,
    Styles,
    alignment_xml,
    border_xml,
    derive_xf,
    font_xml,
    parse_styles,
    solid_fill_xml,
    xf_xml,
)
from notifier.xlsx.text import R_NS, CellValue, date_format, row_xml, sheet_range, value_cell
from parsers.issues import row_of
from parsers.model import IndicatorEntry, Issue, WorkbookReturn, cell_ref, column_letter
from parsers.reference.catalogue import geography_for_year, indicators_by_id
from parsers.reference.regions import by_code
from parsers.text import strip_accents

ISSUES_SHEET = "À corriger"
ERROR_COLOUR = "FF9999"  # red
WARNING_COLOUR = "FFC266"  # orange
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
_HEADER_COLOUR = "DDEBF7"
_LINK_COLOUR = "0563C1"
_BORDER = ("thin", "808080")
_TITLE_SIZE = 13
_INTRO_HEIGHT = 3 * FONT_SIZE * 1.3 + 6  # three lines of the merged intro
_PAGE = PageSetup(margins=PAGE_MARGINS, footer=FOOTER)  # as print_setup sets a sheet up
_LEVEL = 1  # deflate level of the parts made for each file: 4x faster than 6, a few kB more
_WORKBOOK = "xl/workbook.xml"  # where openpyxl puts the workbook's parts
_WORKBOOK_RELS = "xl/_rels/workbook.xml.rels"
_STYLES = "xl/styles.xml"
_CONTENT_TYPES = "[Content_Types].xml"
_COMMENTS_ID, _VML_ID = "rId1", "rId2"  # in the main sheet's relationships


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
    template = _template(region_code, region_name, campaign_id, year)
    placed = [_placed(issue, _place(issue, workbook, template.rows)) for issue in _ordered(workbook.issues)]
    styles = StyleBuilder(template.styles)
    main, notes = _main_sheet(template, _values(workbook, template.rows), _marks(placed), styles)
    issues, last_row = _issues_sheet(placed, workbook.file, region_name, year, styles)
    return _package(template, main, notes, issues, last_row, styles)


# --------------------------------------------------------------------------- the blank template


@dataclass(frozen=True)
class _Template:
    """A blank template ready to patch: the parts each file changes as text, the others compressed."""

    rows: Mapping[str, int]  # indicator id -> its row on the main sheet
    cells: Mapping[int, tuple[tuple[object, float], ...]]  # row -> (value, font size) of each cell, A to I
    main_part: str  # xl/worksheets/sheet1.xml
    main: SheetXml
    styles: Styles
    workbook: str
    workbook_rels: str
    content_types: str
    kept: tuple[Member, ...]  # the parts that go as they are
    names: frozenset[str]  # every part's path


TEMPLATES_KEPT = 64  # blank templates kept ready per process (region x campaign)


def build_templates_ahead(settings: Settings, now: datetime) -> int:
    """Build the blank templates the annotated workbooks start from, for every configured region
    (at most half of those kept) in the campaign a return received ``now`` belongs to; how many.
    Otherwise each region's first rejected return pays for its template (openpyxl, ~25 ms), and
    after a restart on a deadline day the first minutes pay for all of them."""
    if not settings.campaigns:
        return 0
    campaign = settings.campaign_for(now)
    regions = settings.regions[:TEMPLATES_KEPT // 2]
    for region in regions:
        _template(region.code, region.name, campaign.id, campaign.year)
    return len(regions)


@lru_cache(maxsize=TEMPLATES_KEPT)
def _template(region_code: str | None, region_name: str | None, campaign_id: str, year: int) -> _Template:
    blank = blank_template(region_code=region_code, region_name=region_name, campaign_id=campaign_id, year=year)
    parts = read_parts(blank.data)
    workbook, rels = parts[_WORKBOOK].decode(), parts[_WORKBOOK_RELS].decode()
    main_part = sheet_parts(workbook, rels)[MAIN_SHEET]
    patched = {_WORKBOOK, _WORKBOOK_RELS, _STYLES, _CONTENT_TYPES, main_part}
    return _Template(
        rows=blank.rows, cells=blank.cells, main_part=main_part, main=split_sheet(parts[main_part].decode()),
        styles=parse_styles(parts[_STYLES].decode()), workbook=workbook, workbook_rels=rels,
        content_types=parts[_CONTENT_TYPES].decode(),
        kept=tuple(pack(name, data) for name, data in parts.items() if name not in patched),
        names=frozenset(parts))


# --------------------------------------------------------------------------- the main sheet


def _values(workbook: WorkbookReturn, rows: Mapping[str, int]) -> dict[tuple[int, int], CellValue]:
    """(row, column) -> what goes in that cell of the main sheet: values and observations."""
    values: dict[tuple[int, int], CellValue] = {}
    for ident, entry in workbook.entries.items():
        if ident in rows:
            value = _as_typed(ident, entry)
            if value is not None:
                values[rows[ident], RESULT_COL] = value
            if entry.observation:
                values[rows[ident], OBSERVATION_COL] = entry.observation
    return values


def _as_typed(ident: str, entry: IndicatorEntry) -> CellValue:
    """The value as we read it, or the cell as it was typed when it could not be read (a text is
    written as text, never as a formula, whatever it starts with)."""
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


def _marks(placed: list[Placed]) -> dict[tuple[int, int], list[Issue]]:
    """(row, column) -> the issues pointing at that cell."""
    by_cell: dict[tuple[int, int], list[Issue]] = {}
    for item in placed:
        if item.cell is not None:
            by_cell.setdefault(item.cell, []).append(item.issue)
    return by_cell


def _main_sheet(template: _Template, values: Mapping[tuple[int, int], CellValue],
                marks: Mapping[tuple[int, int], list[Issue]], styles: StyleBuilder) -> tuple[str, list[Note]]:
    """The main sheet with the values written, rows refitted, marked cells filled, unlocked and
    commented; and the comments."""
    sheet = SheetPatch(template.main)
    for row, col in sorted(values.keys() | marks.keys()):
        style = _cell_style(styles, sheet.style(row, col), values.get((row, col)), marks.get((row, col), []))
        if (row, col) in values:
            sheet.put(row, col, value_cell(cell_ref(row, col), style, values[row, col]))
        else:
            sheet.restyle(row, col, style)
    for row in sorted({row for row, _ in values}):
        sheet.row_height(row, _fitted(template.cells[row], {col: v for (r, col), v in values.items() if r == row}))
    notes = sorted((_note(cell, issues) for cell, issues in marks.items()), key=lambda n: (n.row, n.col))
    if notes:
        sheet.tail = insert_child(sheet.tail, f'<legacyDrawing xmlns:r="{R_NS}" r:id="{_VML_ID}"/>',
                                  "legacyDrawing")
    sheet.head = unselect_tab(sheet.head)
    return sheet.xml(), notes


def _fitted(cells: tuple[tuple[object, float], ...], written: Mapping[int, CellValue]) -> float:
    """A row's height as fit_rows gives it: the template's ``cells`` (value, font size), the
    values ``written`` (column -> value) in their place."""
    return row_height((written.get(col, value), width, size)
                      for col, ((value, size), width) in enumerate(zip(cells, COLUMN_WIDTHS, strict=True), start=1))


def _cell_style(styles: StyleBuilder, style: int, value: CellValue, issues: list[Issue]) -> int:
    """The format of a cell of the main sheet (its template's ``style``): a date's number format for
    a date; red or orange, unlocked, when issues point at it; the rest of the format kept."""
    value_format = date_format(value)
    if not issues and not value_format:
        return style
    fill = None
    if issues:
        error = any(i.severity == "error" for i in issues)
        fill = styles.add("fills", solid_fill_xml(ERROR_COLOUR if error else WARNING_COLOUR))
    num_fmt = styles.num_fmt(value_format) if value_format else None
    return styles.add("cellXfs", derive_xf(styles.xf(style), fill=fill, num_fmt=num_fmt,
                                           locked=False if issues else None))


def _note(cell: tuple[int, int], issues: list[Issue]) -> Note:
    text = "\n\n".join(f"{SEVERITY_WORDS.get(i.severity, i.severity).capitalize()} : {i.message}" for i in issues)
    lines = sum(len(part) // 50 + 1 for part in text.split("\n"))
    return Note(cell[0], cell[1], text, width=360, height=max(80, 15 * lines))


def _ordered(issues: Iterable[Issue]) -> list[Issue]:
    """Errors first, each group in the order the reader found them (sheet, row, column)."""
    issues = list(issues)
    return [i for i in issues if i.severity == "error"] + [i for i in issues if i.severity != "error"]


def _place(issue: Issue, workbook: WorkbookReturn, rows: Mapping[str, int]) -> tuple[int, int] | None:
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


# --------------------------------------------------------------------------- the list of issues


@dataclass(frozen=True)
class _ListStyles:
    """The cell formats of the list (indices into cellXfs)."""

    title: int
    intro: int
    header: int
    plain: int
    centred: int
    link: int
    error: int
    warning: int


def _list_styles(styles: StyleBuilder) -> _ListStyles:
    font = styles.add("fonts", font_xml(FONT_NAME, FONT_SIZE))
    link = styles.add("fonts", font_xml(FONT_NAME, FONT_SIZE, colour=_LINK_COLOUR, underline="single"))
    border = styles.add("borders", border_xml(*_BORDER))
    wrap = alignment_xml(vertical="top", wrap=True)
    centred = alignment_xml(horizontal="center", vertical="top", wrap=True)

    def xf(font: int, alignment: str | None = None, fill: int = 0, border: int = border) -> int:
        return styles.add("cellXfs", xf_xml(font=font, fill=fill, border=border, alignment=alignment))

    return _ListStyles(
        title=xf(styles.add("fonts", font_xml(FONT_NAME, _TITLE_SIZE, bold=True)), border=0),
        intro=xf(font, wrap, border=0),
        header=xf(styles.add("fonts", font_xml(FONT_NAME, FONT_SIZE, bold=True)),
                  alignment_xml(horizontal="center", vertical="center", wrap=True),
                  fill=styles.add("fills", solid_fill_xml(_HEADER_COLOUR))),
        plain=xf(font, wrap), centred=xf(font, centred), link=xf(link, centred),
        error=xf(font, centred, fill=styles.add("fills", solid_fill_xml(ERROR_COLOUR))),
        warning=xf(font, centred, fill=styles.add("fills", solid_fill_xml(WARNING_COLOUR))))


def _subject(issue: Issue) -> str:
    ind = indicators_by_id().get(issue.indicator or "")
    if ind is not None:
        return f"{ind.label} [{ind.id}]"
    if issue.code in ("unknown_indicator", "ambiguous_indicator") and issue.value:
        return f"{SUBJECTS[issue.code]} : « {issue.value} »"
    return SUBJECTS.get(issue.code, OTHER_SUBJECT)


def _issues_sheet(placed: list[Placed], filename: str, region_name: str | None, year: int,
                  styles: StyleBuilder) -> tuple[str, int]:
    """The sheet « À corriger », and its last row."""
    look = _list_styles(styles)
    errors = sum(1 for p in placed if p.issue.severity == "error")
    title = f"Points à corriger – bilan {year}" + (f" – {region_name}" if region_name else "")
    intro = (f"Fichier reçu : « {filename} ». {errors} erreur(s) à corriger, {len(placed) - errors} "
             f"avertissement(s) à vérifier. Dans la feuille « {MAIN_SHEET} », les cellules en rouge sont à "
             "corriger, celles en orange à vérifier ; le message figure en commentaire de la cellule. Cliquez "
             "sur une cellule de la colonne « Cellule » pour y aller. Corrigez, enregistrez ce fichier et "
             "renvoyez-le en réponse.")
    rows = [row_xml(1, [value_cell("A1", look.title, title)]),
            row_xml(2, [value_cell("A2", look.intro, intro)], _INTRO_HEIGHT),
            row_xml(ISSUE_HEADER_ROW, (value_cell(cell_ref(ISSUE_HEADER_ROW, col), look.header, text)
                                       for col, text in enumerate(ISSUE_HEADERS, start=1)))]
    links: list[str] = []
    row = ISSUE_HEADER_ROW
    for number, item in enumerate(placed, start=1):
        row = ISSUE_HEADER_ROW + number
        what, fix = split_message(item.issue.message)
        ref = cell_ref(*item.cell) if item.cell else None
        error = item.issue.severity == "error"
        values = (number, item.cell[0] if item.cell else None, ref, _subject(item.issue),
                  SEVERITY_WORDS.get(item.issue.severity, item.issue.severity), what, fix or None)
        cells = []
        for col, value in enumerate(values, start=1):
            if col == 5:
                style = look.error if error else look.warning
            elif col in (2, 3) and ref is not None:
                style = look.link
                links.append(hyperlink_xml(cell_ref(row, col), f"'{MAIN_SHEET}'!{ref}",
                                           f"Aller à la cellule {ref}", str(value)))
            else:
                style = look.centred if col in (1, 2, 3) else look.plain
            cells.append(value_cell(cell_ref(row, col), style, value))
        height = row_height((value, width, FONT_SIZE) for value, width in zip(values, ISSUE_WIDTHS, strict=True))
        rows.append(row_xml(row, cells, height))
    last = f"{column_letter(len(ISSUE_WIDTHS))}{row}"
    return worksheet_xml(widths=ISSUE_WIDTHS, rows=rows, dimension=f"A1:{last}", frozen_rows=ISSUE_HEADER_ROW,
                         selected=True, merged=(f"A2:{column_letter(len(ISSUE_WIDTHS))}2",), hyperlinks=links,
                         page=_PAGE), row


# --------------------------------------------------------------------------- the package


def _package(template: _Template, main: str, notes: list[Note], issues: str, last_row: int,
             styles: StyleBuilder) -> bytes:
    """The .xlsx: the list as a new first sheet, the comments and their drawing, every part that
    changed, the others as the template had them."""
    issues_part = _free_name(template.names, "xl/worksheets/sheet{}.xml")
    r_id = "rId{}".format(next_number(template.workbook_rels, r'Id="rId(\d+)"'))
    sheet_id = next_number(template.workbook, r'sheetId="(\d+)"')
    workbook = prepend_sheet(template.workbook, ISSUES_SHEET, sheet_id, r_id)
    workbook = add_defined_names(workbook, [
        ("_xlnm.Print_Titles", 0, sheet_range(ISSUES_SHEET, f"{ISSUE_HEADER_ROW}:{ISSUE_HEADER_ROW}")),
        ("_xlnm.Print_Area", 0, sheet_range(ISSUES_SHEET, f"A1:{column_letter(len(ISSUE_WIDTHS))}{last_row}"))])
    changed = {
        issues_part: issues, template.main_part: main, _STYLES: styles.xml(), _WORKBOOK: workbook,
        _WORKBOOK_RELS: add_relationship(template.workbook_rels, r_id, WORKSHEET_REL, f"/{issues_part}"),
    }
    overrides, defaults = {f"/{issues_part}": WORKSHEET_TYPE}, {}
    if notes:
        comments = _free_name(template.names, "xl/comments/comment{}.xml")
        drawing = _free_name(template.names, "xl/drawings/commentsDrawing{}.vml")
        folder, name = posixpath.split(template.main_part)
        changed[comments] = comments_xml(COMMENT_AUTHOR, notes)
        changed[drawing] = comments_vml(notes)
        changed[posixpath.join(folder, "_rels", f"{name}.rels")] = relationships_xml(
            [(_COMMENTS_ID, COMMENTS_REL, f"/{comments}"), (_VML_ID, VML_REL, f"/{drawing}")])
        overrides[f"/{comments}"] = COMMENTS_TYPE
        defaults["vml"] = VML_TYPE
    types = add_content_types(template.content_types, overrides, defaults)
    made = [pack(_CONTENT_TYPES, types.encode(), _LEVEL)]
    made += [pack(name, xml.encode(), _LEVEL) for name, xml in changed.items()]
    return zip_archive([made[0], *template.kept, *made[1:]])


def _free_name(names: frozenset[str], pattern: str) -> str:
    """The first ``pattern.format(n)``, n from 1, that is no part of the template."""
    number = 1
    while pattern.format(number) in names:
        number += 1
    return pattern.format(number)
