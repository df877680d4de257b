"""Worksheet parts: an existing sheet cut around its rows and patched (:class:`SheetPatch`), a new
sheet written whole (:func:`worksheet_xml`), an element put where the schema wants it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from notifier.xlsx.text import (
    MAIN_NS,
    R_NS,
    attribute,
    empty_cell,
    number,
    set_attributes,
    xml_attr,
)
from parsers.model import cell_ref
from parsers.workbook.xlsx import split_ref

# CT_Worksheet's children, in the order the schema requires.
WORKSHEET_CHILDREN = (
    "sheetPr", "dimension", "sheetViews", "sheetFormatPr", "cols", "sheetData", "sheetCalcPr", "sheetProtection",
    "protectedRanges", "scenarios", "autoFilter", "sortState", "dataConsolidate", "customSheetViews", "mergeCells",
    "phoneticPr", "conditionalFormatting", "dataValidations", "hyperlinks", "printOptions", "pageMargins",
    "pageSetup", "headerFooter", "rowBreaks", "colBreaks", "customProperties", "cellWatches", "ignoredErrors",
    "smartTags", "drawing", "legacyDrawing", "legacyDrawingHF", "drawingHF", "picture", "oleObjects", "controls",
    "webPublishItems", "tableParts", "extLst",
)


# --------------------------------------------------------------------------- an existing sheet

_ROW = re.compile(r"<row\b[^>]*?(?:/>|>.*?</row>)", re.S)
_CELL = re.compile(r"<c\b[^>]*?(?:/>|>.*?</c>)", re.S)
_OPENING = re.compile(r"<[^>]*>")


@dataclass(frozen=True)
class RowXml:
    """A ``<row>`` element and its parts."""

    xml: str
    opening: str  # its opening tag, ``<row r="5" ...>`` (never self-closing)
    cells: Mapping[int, str]  # column number -> its <c> element


@dataclass(frozen=True)
class SheetXml:
    """A worksheet part cut around its rows (worth caching: cutting a sheet is most of the work)."""

    head: str  # up to <sheetData> included
    rows: Mapping[int, RowXml]  # row number -> the row
    tail: str  # from </sheetData> on


def split_sheet(xml: str) -> SheetXml:
    empty = re.search(r"<sheetData\s*/>", xml)
    if empty:
        return SheetXml(xml[:empty.start()] + "<sheetData>", {}, "</sheetData>" + xml[empty.end():])
    start = xml.index(">", xml.index("<sheetData")) + 1
    end = xml.index("</sheetData>")
    rows = (split_row(m.group()) for m in _ROW.finditer(xml, start, end))
    return SheetXml(xml[:start], {int(attribute(row.opening, "r") or 0): row for row in rows}, xml[end:])


def split_row(xml: str) -> RowXml:
    tag = _OPENING.match(xml)
    if tag is None:
        raise ValueError(f"not a <row> element: {xml[:80]!r}")
    opening = tag.group()[:-2] + ">" if tag.group().endswith("/>") else tag.group()
    cells = {split_ref(attribute(m.group(), "r") or "")[1]: m.group() for m in _CELL.finditer(xml)}
    return RowXml(xml, opening, cells)


class SheetPatch:
    """Cells and rows changed in a :class:`SheetXml`; :meth:`xml` gives the sheet with them."""

    def __init__(self, sheet: SheetXml) -> None:
        self._sheet = sheet
        self._rows: dict[int, tuple[str, dict[int, str]]] = {}  # changed rows: opening tag, cells by column
        self.head = sheet.head
        self.tail = sheet.tail

    def _row(self, row: int) -> tuple[str, dict[int, str]]:
        if row not in self._rows:
            found = self._sheet.rows.get(row)
            self._rows[row] = (found.opening, dict(found.cells)) if found else (f'<row r="{row}">', {})
        return self._rows[row]

    def cell(self, row: int, col: int) -> str | None:
        """The ``<c>`` element of a cell, None when the sheet has none."""
        return self._row(row)[1].get(col)

    def style(self, row: int, col: int) -> int:
        """The index of a cell's format (``s``), 0 when it has none."""
        cell = self.cell(row, col)
        style = attribute(cell, "s") if cell else None
        return int(style) if style and style.isdigit() else 0

    def put(self, row: int, col: int, cell: str) -> None:
        """Set a cell's ``<c>`` element (its ``r`` must be the cell's reference)."""
        self._row(row)[1][col] = cell

    def restyle(self, row: int, col: int, style: int) -> None:
        """Give a cell another format, keeping its content (an empty cell when it had none)."""
        cell = self.cell(row, col)
        if cell is None:
            self.put(row, col, empty_cell(cell_ref(row, col), style))
            return
        opening = _OPENING.match(cell)
        assert opening is not None
        self.put(row, col, set_attributes(opening.group(), s=str(style)) + cell[opening.end():])

    def row_height(self, row: int, height: float) -> None:
        opening, cells = self._row(row)
        self._rows[row] = (set_attributes(opening, ht=number(height), customHeight="1"), cells)

    def xml(self) -> str:
        rows = {index: row.xml for index, row in self._sheet.rows.items()}
        for index, (opening, cells) in self._rows.items():
            rows[index] = opening + "".join(cells[c] for c in sorted(cells)) + "</row>"
        return self.head + "".join(rows[r] for r in sorted(rows)) + self.tail


def insert_child(xml: str, element: str, name: str, order: Sequence[str] = WORKSHEET_CHILDREN,
                 root: str = "worksheet") -> str:
    """``xml`` (a part, or its end) with ``element`` (a child of ``root`` named ``name``) before
    the first child the schema's ``order`` puts after it, else at the end."""
    later = order[order.index(name) + 1:]
    found = (re.search(rf"<{child}[\s/>]", xml) for child in later)
    at = min((m.start() for m in found if m), default=xml.rindex(f"</{root}>"))
    return xml[:at] + element + xml[at:]


def unselect_tab(sheet_head: str) -> str:
    """The start of a sheet's part with its tab no longer selected."""
    return re.sub(r'\stabSelected="[^"]*"', "", sheet_head, count=1)


# --------------------------------------------------------------------------- a new sheet


@dataclass(frozen=True)
class PageSetup:
    """How a sheet prints, as ``notifier.template_workbook.print_setup`` sets it up."""

    margins: Mapping[str, float]  # left, right, top, bottom, header, footer (inches)
    footer: tuple[str, str]  # left and right parts, header/footer codes (``&A``: the sheet's name)
    landscape: bool = True
    paper_size: int = 9  # A4
    fit_width: bool = True  # as wide as the page, as many pages down as needed
    centred: bool = True


def worksheet_xml(*, widths: Sequence[float], rows: Iterable[str], dimension: str, frozen_rows: int = 0,
                  selected: bool = False, merged: Sequence[str] = (), hyperlinks: Sequence[str] = (),
                  page: PageSetup | None = None) -> str:
    """A worksheet part: columns ``widths`` from A, ``rows`` (:func:`row_xml`), the first
    ``frozen_rows`` frozen, merged ranges, :func:`hyperlink_xml` elements, a page setup."""
    parts = [f'<worksheet xmlns="{MAIN_NS}" xmlns:r="{R_NS}"><sheetPr><outlinePr summaryBelow="1" summaryRight="1"/>',
             '<pageSetUpPr fitToPage="1"/>' if page is not None and page.fit_width else "",
             f'</sheetPr><dimension ref="{dimension}"/><sheetViews><sheetView',
             ' tabSelected="1"' if selected else "", ' workbookViewId="0">']
    if frozen_rows:
        below = cell_ref(frozen_rows + 1, 1)
        parts.append(f'<pane ySplit="{frozen_rows}" topLeftCell="{below}" activePane="bottomLeft" state="frozen"/>'
                     '<selection pane="bottomLeft" activeCell="A1" sqref="A1"/>')
    parts.append('</sheetView></sheetViews><sheetFormatPr baseColWidth="8" defaultRowHeight="15"/><cols>')
    parts.extend(f'<col width="{number(w)}" customWidth="1" min="{c}" max="{c}"/>' for c, w in enumerate(widths, 1))
    parts.append("</cols><sheetData>")
    parts.extend(rows)
    parts.append("</sheetData>")
    if merged:
        parts.append(f'<mergeCells count="{len(merged)}">')
        parts.extend(f'<mergeCell ref="{ref}"/>' for ref in merged)
        parts.append("</mergeCells>")
    if hyperlinks:
        parts.append(f"<hyperlinks>{''.join(hyperlinks)}</hyperlinks>")
    if page is not None:
        parts.append(page_setup_xml(page))
    parts.append("</worksheet>")
    return "".join(parts)


def page_setup_xml(page: PageSetup) -> str:
    """printOptions, pageMargins, pageSetup and headerFooter, in that order."""
    margins = " ".join(f'{side}="{number(page.margins[side])}"'
                       for side in ("left", "right", "top", "bottom", "header", "footer"))
    fit = ' fitToHeight="0" fitToWidth="1"' if page.fit_width else ""
    orientation = "landscape" if page.landscape else "portrait"
    footer = escape(f"&L{page.footer[0]}&R{page.footer[1]}")
    return (('<printOptions horizontalCentered="1"/>' if page.centred else "")
            + f'<pageMargins {margins}/><pageSetup orientation="{orientation}" paperSize="{page.paper_size}"{fit}/>'
            + f"<headerFooter><oddFooter>{footer}</oddFooter></headerFooter>")


def hyperlink_xml(ref: str, location: str, tooltip: str, display: str) -> str:
    """A link to a place in the workbook (``'Sheet'!A1``): no relationship needed."""
    return (f'<hyperlink ref="{ref}" location={xml_attr(location)} tooltip={xml_attr(tooltip)}'
            f" display={xml_attr(display)}/>")
