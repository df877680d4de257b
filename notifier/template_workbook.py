"""The Annexe 2 workbook sent to regions: the table of 32 indicators, ready to fill in.

Layout (``build_template``), which ``parsers/table.py`` relies on:

Sheet 1, ``"Tableau de bord"`` (visible, protected without password):

* A1: ``TABLEAU DE SUIVI DES CONVENTIONS INTERMINISTERIELLES`` (merged A1:I1);
* A2: ``"Région : <name>"``, or ``"Région : "`` with B2 left empty and unlocked as a fill-in
  when the template is not addressed to one region;
* row 4 (``HEADER_ROW``): the document's columns, A to I: Convention | Objectif stratégique |
  Objectif opérationnel | BOP | Indicateur | Valeur cible nationale | Résultat régional <year> |
  Observations | Mode de renseignement;
* rows 5 to 36 (``FIRST_ROW`` + n): one row per indicator, I01 to I32 in document order. On
  locally filled rows, G (result) and H (observations) are the only unlocked cells; G carries a
  data validation matching the unit (percent: decimal 0-100 in points; count: whole number >= 0;
  count pair I16: free text such as ``12 / 5``, cell formatted as text). Validations warn rather
  than block, so that ``NC`` (not available) can still be typed. National rows are greyed and
  locked.

Every sheet prints on landscape A4, fit to the page's width, its header rows repeated, within a
print area (``print_setup``); row heights fit the wrapped texts (``fit_rows``); the default font is
Arial, so Excel and LibreOffice agree on widths and line breaks (docs/workbooks.md).

Sheet 2, ``"Notice"`` (visible): short French instructions.

Sheet 3, ``"_meta"`` (``veryHidden``, protected), read by the table parser to match rows exactly:

======  ==================================  =====================================
row     column A                            column B (C, D)
======  ==================================  =====================================
1       ``conventions-intake-template``     template version (``"1"``)
2       ``region``                          region code, or empty
3       ``campaign``                        campaign id
4       ``year``                            year under review (number)
5       ``sheet``                           ``Tableau de bord``
6       (empty)
7...    indicator id (``I01``)              B: row number on the main sheet (number),
                                            C: result column letter (``G``),
                                            D: observation column letter (``H``)
======  ==================================  =====================================
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Hashable, Iterable, Mapping
from copy import copy
from dataclasses import dataclass
from functools import cache, lru_cache
from types import MappingProxyType
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import Cell
from openpyxl.styles import Alignment, Border, Font, PatternFill, Protection, Side
from openpyxl.utils import get_column_letter
from openpyxl.utils.indexed_list import IndexedList
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.page import PageMargins
from openpyxl.worksheet.properties import PageSetupProperties
from openpyxl.worksheet.worksheet import Worksheet

from parsers.model import Indicator
from parsers.reference.catalogue import indicators

TEMPLATE_MARKER = "conventions-intake-template"
MAIN_SHEET = "Tableau de bord"
NOTICE_SHEET = "Notice"
META_SHEET = "_meta"
TITLE = "TABLEAU DE SUIVI DES CONVENTIONS INTERMINISTERIELLES"
HEADER_ROW = 4
FIRST_ROW = HEADER_ROW + 1
META_FIRST_ROW = 7
LABEL_COL = 5  # E
RESULT_COL = 7  # G
OBSERVATION_COL = 8  # H


def headers(year: int) -> tuple[str, ...]:
    return (
        "Convention", "Objectif stratégique", "Objectif opérationnel", "BOP", "Indicateur",
        "Valeur cible nationale", f"Résultat régional {year}", "Observations", "Mode de renseignement",
    )


# Arial (Liberation Sans, its metric twin, in LibreOffice): the same line breaks in Excel and LibreOffice.
FONT_NAME = "Arial"
FONT_SIZE = 10
_LINE_SPACING = 1.2  # a line of text is about 1.2 times the font size
MAX_ROW_HEIGHT = 409  # points: Excel's limit
_CHARS_PER_UNIT = 1.15  # characters of French prose per unit of column width, with a margin
COLUMN_WIDTHS = (12, 30, 50, 6, 40, 11, 12, 30, 14)
# The context (objectives) in a smaller type than what the region reads and fills: the table prints
# on two landscape pages, legibly.
COLUMN_SIZES = (9, 8, 8, 9, 9, 9, 10, 10, 9)
_THIN = Side(style="thin", color="808080")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_WRAP = Alignment(wrap_text=True, vertical="top")
_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
_INPUT_FILL = PatternFill("solid", fgColor="FFF2CC")
_NATIONAL_FILL = PatternFill("solid", fgColor="D9D9D9")
_FONT = Font(name=FONT_NAME, size=FONT_SIZE)
_BOLD = Font(name=FONT_NAME, size=FONT_SIZE, bold=True)
_NATIONAL_COLOUR = "595959"
_UNLOCKED = Protection(locked=False)

NOTICE_LINES = (
    "Bilan des conventions interministérielles — mode d'emploi du tableau de bord",
    "",
    "1. Renseignez uniquement les cellules sur fond jaune de la feuille « Tableau de bord » : la colonne "
    "« Résultat régional » et la colonne « Observations » des indicateurs à renseigner localement.",
    "2. Les lignes grisées sont renseignées au niveau national : vous n'avez rien à y saisir.",
    "3. Pourcentages : indiquez la valeur en points, de 0 à 100 (par exemple 25 pour 25 %). Décomptes : "
    "un nombre entier. Places de crèches : « créées / rénovées », par exemple 12 / 5.",
    "4. Si une donnée n'est pas disponible, écrivez NC dans la colonne « Résultat régional » et expliquez "
    "pourquoi dans la colonne « Observations ».",
    "5. La colonne « Observations » est à renseigner pour chaque indicateur : précision de la cible "
    "régionale, analyse des écarts entre la cible et les résultats, éléments de contexte, difficultés "
    "rencontrées dans la collecte des données.",
    "6. Ne modifiez pas l'ordre des lignes ni les intitulés des colonnes, et ne renommez pas les feuilles.",
    "7. Renvoyez le fichier au format Excel (.xlsx), sans mot de passe, par courriel, accompagné de "
    "l'analyse qualitative, avant la date limite indiquée dans le message de la campagne.",
)


@dataclass(frozen=True)
class TemplateBook:
    """The template still open in openpyxl, as :func:`_built` leaves it."""

    workbook: Workbook
    main: Worksheet
    rows: dict[str, int]  # indicator id -> its row on the main sheet


@dataclass(frozen=True)
class BlankTemplate:
    """A blank template as the regions receive it, and what a caller that patches its bytes
    (``notifier.corrections``) needs to know of it."""

    data: bytes  # the .xlsx file
    rows: Mapping[str, int]  # indicator id -> its row on the main sheet
    # main sheet row -> (value, font size) of its cells, columns A to I: what fit_rows measured
    cells: Mapping[int, tuple[tuple[object, float], ...]]


def build_template(
    *,
    region_code: str | None,
    region_name: str | None,
    campaign_id: str,
    year: int,
    version: str = "1",
    values: Mapping[str, object] | None = None,
    observations: Mapping[str, object] | None = None,
) -> bytes:
    """The .xlsx bytes of the Annexe 2 table for one campaign (and one region, if given).

    ``values`` and ``observations`` (indicator id -> stored value / text, as the store keeps
    them) pre-fill the open cells of the locally filled rows, e.g. with a region's latest
    return; other indicators are ignored. Without them the template is blank, and comes from
    :func:`blank_template`'s cache.
    """
    if values or observations:
        book = _built(region_code, region_name, campaign_id, year, version, values or {}, observations or {})
        return workbook_bytes(book.workbook)
    return blank_template(region_code=region_code, region_name=region_name, campaign_id=campaign_id, year=year,
                          version=version).data


def blank_template(
    *, region_code: str | None, region_name: str | None, campaign_id: str, year: int, version: str = "1"
) -> BlankTemplate:
    """The blank template, built and saved by openpyxl once per region and campaign in a process
    (:func:`_blank`); the annotated workbook of every faulty return patches its bytes."""
    return _blank(region_code, region_name, campaign_id, year, version)


@lru_cache(maxsize=64)
def _blank(region_code: str | None, region_name: str | None, campaign_id: str, year: int,
           version: str) -> BlankTemplate:
    book = _built(region_code, region_name, campaign_id, year, version, {}, {})
    cells = {row: _measured(book.main, row, len(COLUMN_WIDTHS)) for row in book.rows.values()}
    return BlankTemplate(workbook_bytes(book.workbook), MappingProxyType(dict(book.rows)), MappingProxyType(cells))


def _built(region_code: str | None, region_name: str | None, campaign_id: str, year: int, version: str,
           values: Mapping[str, object], observations: Mapping[str, object]) -> TemplateBook:
    wb = new_workbook()
    main = wb.active
    main.title = MAIN_SHEET
    rows = _fill_main(main, region_name, year)
    _prefill(main, rows, values, observations)
    fit_rows(main, range(FIRST_ROW, FIRST_ROW + len(rows)), COLUMN_WIDTHS)
    _fill_notice(wb.create_sheet(NOTICE_SHEET))
    _fill_meta(wb.create_sheet(META_SHEET), region_code, campaign_id, year, version, rows)
    wb.active = 0
    wb.properties.title = f"Tableau de bord des conventions interministérielles {year}"
    wb.properties.creator = "conventions-intake"
    return TemplateBook(wb, main, rows)


def new_workbook() -> Workbook:
    """An empty workbook whose default font is :data:`FONT_NAME`: column widths are counted in that
    font's digits, so Excel and LibreOffice (which may lack Excel's default Calibri) agree on them."""
    wb = Workbook()
    wb._fonts = IndexedList([Font(name=FONT_NAME, size=FONT_SIZE, family=2)])
    wb._named_styles["Normal"].font = Font(name=FONT_NAME, size=FONT_SIZE, family=2)
    return wb


def workbook_bytes(wb: Workbook) -> bytes:
    bio = io.BytesIO()
    wb.save(bio)
    return bio.getvalue()


# --------------------------------------------------------------------------- printing

# The page of every sheet we print (print_setup): margins in inches, the footer's left and right parts.
PAGE_MARGINS: Mapping[str, float] = MappingProxyType(
    {"left": 0.4, "right": 0.4, "top": 0.5, "bottom": 0.6, "header": 0.25, "footer": 0.3})
FOOTER = ("&A", "Page &P sur &N")  # the sheet's name; « Page 2 sur 5 »


class Stamps:
    """Style combinations applied by copying the style record of the first cell that got them.

    openpyxl hashes every style object (font, fill, border...) at each assignment to find it among
    the workbook's styles, about 25 µs each: a template's 300 styled cells cost 30 ms that way.
    A cell's style record is an array of indices into those lists, so within one workbook the
    first cell styled under a ``key`` gives its record to the next ones."""

    def __init__(self) -> None:
        self._records: dict[Hashable, Any] = {}

    def apply(self, cell: Cell, key: Hashable, **styles: object) -> None:
        """Give ``cell`` the ``styles`` (attribute -> style object); the same ``key`` must always
        come with the same styles."""
        record = self._records.get(key)
        if record is not None:
            cell._style = copy(record)
            return
        for name, style in styles.items():
            setattr(cell, name, style)
        self._records[key] = copy(cell._style)


@lru_cache(maxsize=4096)
def _wrapped_lines(text: str, per_line: int) -> int:
    return sum(len(textwrap.wrap(part, per_line)) or 1 for part in text.split("\n"))


def row_height(cells: Iterable[tuple[object, float, float]]) -> float:
    """A row height in points that shows whole every text of the row, wrapped in its column:
    ``(text, column width, font size)``, the width in Excel's units (about one digit of the default
    font, :data:`FONT_SIZE` points)."""
    height = FONT_SIZE * _LINE_SPACING
    for text, width, size in cells:
        if text is None or text == "":
            continue
        per_line = max(4, int(width * _CHARS_PER_UNIT * FONT_SIZE / size) - 1)
        lines = _wrapped_lines(str(text), per_line)
        height = max(height, lines * size * _LINE_SPACING)
    return min(MAX_ROW_HEIGHT, math.ceil(height + 4))


def fit_rows(ws: Worksheet, rows: Iterable[int], widths: Iterable[float]) -> None:
    """Set the height of ``rows`` so that their wrapped texts print whole (columns from A, each
    cell in its own font size)."""
    widths = tuple(widths)
    for row in rows:
        ws.row_dimensions[row].height = row_height(
            (value, width, size) for (value, size), width in zip(_measured(ws, row, len(widths)), widths, strict=True))


def _measured(ws: Worksheet, row: int, columns: int) -> tuple[tuple[object, float], ...]:
    """(value, font size) of the first ``columns`` cells of ``row``: what :func:`row_height` measures."""
    cells = (ws.cell(row=row, column=col) for col in range(1, columns + 1))
    return tuple((cell.value, float(cell.font.sz or FONT_SIZE)) for cell in cells)


def print_setup(ws: Worksheet, *, title_rows: str, area: str, title_cols: str | None = None,
                fit_width: bool = True, scale: int | None = None) -> None:
    """Landscape A4 with the header rows (and label columns) repeated on every page, a print area,
    page numbers in the footer; ``fit_width``: scaled to the page's width, as many pages down as needed."""
    setup = ws.page_setup
    setup.orientation = "landscape"
    setup.paperSize = ws.PAPERSIZE_A4
    if fit_width:
        ws.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
        setup.fitToWidth = 1
        setup.fitToHeight = 0
    elif scale is not None:
        setup.scale = scale
    ws.print_title_rows = title_rows
    if title_cols:
        ws.print_title_cols = title_cols
    ws.print_area = area
    ws.page_margins = PageMargins(**PAGE_MARGINS)
    ws.print_options.horizontalCentered = True
    ws.oddFooter.left.text, ws.oddFooter.right.text = FOOTER


def _fill_main(ws: Worksheet, region_name: str | None, year: int) -> dict[str, int]:
    ws["A1"] = TITLE
    ws["A1"].font = Font(name=FONT_NAME, bold=True, size=14)
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(COLUMN_WIDTHS))
    ws.row_dimensions[1].height = 22
    ws["A2"] = f"Région : {region_name}" if region_name else "Région : "
    ws["A2"].font = Font(name=FONT_NAME, bold=True, size=12)
    ws.row_dimensions[2].height = 18
    if not region_name:
        ws["B2"].protection = _UNLOCKED
        ws["B2"].fill = _INPUT_FILL
        ws["B2"].border = _BORDER
    for col, (title, width) in enumerate(zip(headers(year), COLUMN_WIDTHS, strict=True), start=1):
        cell = ws.cell(row=HEADER_ROW, column=col, value=title)
        cell.font = _BOLD
        cell.fill = _HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="center", horizontal="center")
        cell.border = _BORDER
        ws.column_dimensions[get_column_letter(col)].width = width
    validations = _validations()
    stamps = Stamps()
    rows: dict[str, int] = {}
    for row, ind in enumerate(indicators(), start=FIRST_ROW):
        rows[ind.id] = row
        texts = (ind.convention, ind.strategic_objective, ind.operational_objective, ind.bop, ind.label,
                 ind.national_target, None, None, ind.mode)
        for col, text in enumerate(texts, start=1):
            cell = ws.cell(row=row, column=col, value=text or None)
            font = _body_font(col, ind.is_local)
            if not ind.is_local:
                stamps.apply(cell, ("national", col), alignment=_WRAP, border=_BORDER, font=font, fill=_NATIONAL_FILL)
            elif col in (RESULT_COL, OBSERVATION_COL):  # what the region fills in
                stamps.apply(cell, ("input", col), alignment=_WRAP, border=_BORDER, font=font,
                             protection=_UNLOCKED, fill=_INPUT_FILL)
            else:
                stamps.apply(cell, ("local", col), alignment=_WRAP, border=_BORDER, font=font)
        if ind.is_local:
            _local_inputs(ws, row, ind, validations)
    for dv in validations.values():
        ws.add_data_validation(dv)
    ws.freeze_panes = ws.cell(row=FIRST_ROW, column=1)
    fit_rows(ws, (HEADER_ROW,), COLUMN_WIDTHS)
    last = f"{get_column_letter(len(COLUMN_WIDTHS))}{FIRST_ROW + len(rows) - 1}"
    print_setup(ws, title_rows=f"1:{HEADER_ROW}", area=f"A1:{last}")
    ws.protection.sheet = True
    ws.protection.formatColumns = False  # let people widen columns and rows to read
    ws.protection.formatRows = False
    return rows


@cache
def _body_font(col: int, local: bool) -> Font:
    return Font(name=FONT_NAME, size=COLUMN_SIZES[col - 1], color=None if local else _NATIONAL_COLOUR)


def _prefill(
    ws: Worksheet, rows: dict[str, int], values: Mapping[str, object], observations: Mapping[str, object]
) -> None:
    for ind in indicators():
        if not ind.is_local:
            continue
        value = prefill_value(values.get(ind.id))
        if value is not None:
            ws.cell(row=rows[ind.id], column=RESULT_COL, value=value)
        text = observations.get(ind.id)
        if isinstance(text, str) and text.strip():
            ws.cell(row=rows[ind.id], column=OBSERVATION_COL, value=text)


def prefill_value(value: object) -> float | int | str | None:
    """A stored value as a region would type it: a pair of counts as ``"12 / 5"``, a whole
    float as an integer; anything else (None, unexpected types) leaves the cell empty."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, list | tuple):
        if len(value) == 2 and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            return f"{_number(value[0])} / {_number(value[1])}"
        return None
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, str):
        return value
    return None


def _number(value: float | int) -> float | int:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _local_inputs(ws: Worksheet, row: int, ind: Indicator, validations: dict[str, DataValidation]) -> None:
    result = ws.cell(row=row, column=RESULT_COL)  # unlocked and filled in yellow by _fill_main
    observation = ws.cell(row=row, column=OBSERVATION_COL)
    if ind.unit == "count_pair":
        result.number_format = "@"  # "12/5" must stay text, not become a date
    if ind.unit in validations:
        validations[ind.unit].add(result.coordinate)
    validations["observation"].add(observation.coordinate)


def _validations() -> dict[str, DataValidation]:
    nc = " Si la donnée n'est pas disponible, saisissez NC et expliquez pourquoi dans « Observations »."
    percent = DataValidation(
        type="decimal", operator="between", formula1="0", formula2="100", allow_blank=True,
        showInputMessage=True, promptTitle="Pourcentage", prompt="Pourcentage en points, de 0 à 100",
        showErrorMessage=True, errorStyle="warning", errorTitle="Valeur inattendue",
        error="Saisissez un pourcentage en points, de 0 à 100 (25 pour 25 %)." + nc,
    )
    count = DataValidation(
        type="whole", operator="greaterThanOrEqual", formula1="0", allow_blank=True,
        showInputMessage=True, promptTitle="Nombre", prompt="Nombre entier, 0 ou plus",
        showErrorMessage=True, errorStyle="warning", errorTitle="Valeur inattendue",
        error="Saisissez un nombre entier, 0 ou plus." + nc,
    )
    pair = DataValidation(
        allow_blank=True, showInputMessage=True, promptTitle="Places de crèches",
        prompt="Places créées / places rénovées, par exemple « 12 / 5 »",
    )
    observation = DataValidation(
        allow_blank=True, showInputMessage=True, promptTitle="Observations",
        prompt="Cible régionale, analyse des écarts, contexte, difficultés de collecte",
    )
    return {"percent": percent, "count": count, "count_pair": pair, "observation": observation}


def _fill_notice(ws: Worksheet) -> None:
    ws.column_dimensions["A"].width = 110
    for row, line in enumerate(NOTICE_LINES, start=1):
        cell = ws.cell(row=row, column=1, value=line or None)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        cell.font = _FONT
    ws["A1"].font = Font(name=FONT_NAME, bold=True, size=12)
    fit_rows(ws, range(1, len(NOTICE_LINES) + 1), (110,))
    ws.protection.sheet = True
    print_setup(ws, title_rows="1:1", area=f"A1:A{len(NOTICE_LINES)}")


def _fill_meta(
    ws: Worksheet, region_code: str | None, campaign_id: str, year: int, version: str, rows: dict[str, int]
) -> None:
    header: tuple[tuple[str, str | int | None], ...] = (
        (TEMPLATE_MARKER, version),
        ("region", region_code or None),
        ("campaign", campaign_id),
        ("year", year),
        ("sheet", MAIN_SHEET),
    )
    for row, (key, value) in enumerate(header, start=1):
        ws.cell(row=row, column=1, value=key)
        cell = ws.cell(row=row, column=2, value=value)
        if isinstance(value, str):
            cell.number_format = "@"  # region "01" stays text
    result_letter = get_column_letter(RESULT_COL)
    observation_letter = get_column_letter(OBSERVATION_COL)
    for offset, (ind_id, main_row) in enumerate(rows.items()):
        row = META_FIRST_ROW + offset
        ws.cell(row=row, column=1, value=ind_id)
        ws.cell(row=row, column=2, value=main_row)
        ws.cell(row=row, column=3, value=result_letter)
        ws.cell(row=row, column=4, value=observation_letter)
    ws.sheet_state = "veryHidden"
    ws.protection.sheet = True
