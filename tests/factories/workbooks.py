"""Realistic Annexe 2 returns as .xlsx bytes, built with openpyxl (no binary fixture committed).

``build_return(region, values, observations, layout)`` writes the table the way a region would:
the document's own layout (``document_layout()``) or a hand-made one (``hand_made_layout()``), with
every variant as a parameter of :class:`Layout` (reordered/extra columns, title rows, a notice
sheet, merged title cells, edited labels, page-break repeated headers, number formats, formulas
with or without cached values, omitted or duplicated rows, our template's "_meta" sheet...).
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import openpyxl
from openpyxl.utils import get_column_letter

from parsers.reference.catalogue import indicators, indicators_by_id

TITLE = "TABLEAU DE SUIVI DES CONVENTIONS INTERMINISTERIELLES"
# Column keys, in the order of the document's Annexe 2.
DOCUMENT_COLUMNS = ("convention", "strategic", "operational", "bop", "label", "target", "result",
                    "observation", "mode")
DOCUMENT_HEADERS = {
    "convention": "Convention",
    "strategic": "Objectif stratégique",
    "operational": "Objectif opérationnel",
    "bop": "BOP",
    "label": "Indicateur",
    "target": "Valeur cible nationale",
    "result": "Résultat régional {year}",
    "observation": "Observations",
    "mode": "Mode de renseignement",
    "id": "N°",
    "unit": "Unité",
    "source": "Source",
}
# In the PDF the table breaks across pages after these indicators (title and header repeated).
DOCUMENT_PAGE_BREAKS = ("I09", "I15", "I19", "I25", "I28")
CELL_ERRORS = ("#DIV/0!", "#N/A", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#NULL!")


@dataclass(frozen=True)
class Formula:
    """A formula cell; ``cached`` is written as its last computed value (None: no cached value;
    an error literal such as "#DIV/0!" is written as an error result)."""

    text: str  # "=SUM(1,2)"
    cached: float | int | str | None = None


@dataclass(frozen=True)
class Layout:
    columns: tuple[str, ...] = DOCUMENT_COLUMNS
    headers: Mapping[str, str] = field(default_factory=dict)  # column key -> header text override
    year: int = 2013
    sheet_name: str = "Annexe 2"
    title_rows: tuple[str, ...] = ("Annexe 2",)
    region_line: str | None = None  # e.g. "Région : {region}", written above the header
    merge_titles: bool = False  # merge each title row across the table width
    notice_sheet: bool = False  # a "Notice" sheet with prose comes first
    extra_sheets: tuple[str, ...] = ()  # further sheets with a little unrelated content
    hidden_copy: bool = False  # a hidden sheet holding a blank copy of the table, last
    start_col: int = 1
    split_result_header: bool = False  # "Résultat régional" in one row, the year in the next
    page_breaks: tuple[str, ...] = ()  # repeat TITLE + header after these indicators
    carry_convention: bool = True  # like the document: the convention only on a group's first row
    order: tuple[str, ...] | None = None  # indicator order; default I01..I32
    labels: Mapping[str, str] = field(default_factory=dict)  # indicator -> label as typed
    omit: frozenset[str] = frozenset()
    duplicate: tuple[str, ...] = ()  # indicators whose row appears again at the end
    extra_rows: tuple[tuple[str, Any], ...] = ()  # (label, result) rows appended
    section_rows: bool = False  # a row with only the convention name before each group
    number_formats: Mapping[str, str] = field(default_factory=dict)  # indicator -> result format
    meta: bool = False  # add our template's veryHidden "_meta" sheet
    meta_row_shift: int = 0  # make the _meta row map stale by this many rows
    template_version: str = "1"


def document_layout(**changes: Any) -> Layout:
    """The Annexe 2 exactly as in the document (title, header, page-break repeats)."""
    return replace(Layout(page_breaks=DOCUMENT_PAGE_BREAKS), **changes)


def hand_made_layout(**changes: Any) -> Layout:
    """A table a region typed itself: titles, a region line, fewer and reordered columns."""
    base = Layout(
        columns=("id", "label", "result", "observation", "convention", "mode"),
        headers={"label": "Libellé de l'indicateur", "result": "Résultat régional {year} (valeur)",
                 "observation": "Observations / commentaires", "id": "N°"},
        sheet_name="Bilan",
        title_rows=("Bilan {year} des conventions interministérielles", ""),
        region_line="Région : {region}",
        merge_titles=True,
        notice_sheet=True,
        start_col=2,
        carry_convention=False,
    )
    return replace(base, **changes)


def annexe2_rows(order: tuple[str, ...] | None = None) -> list[dict[str, str]]:
    """The 32 rows of Annexe 2 as column key -> text (convention filled on every row)."""
    by_id = indicators_by_id()
    rows = []
    for ident in order or tuple(i.id for i in indicators()):
        ind = by_id[ident]
        rows.append({
            "id": ind.id, "convention": ind.convention, "strategic": ind.strategic_objective,
            "operational": ind.operational_objective, "bop": ind.bop, "label": ind.label,
            "target": ind.national_target, "mode": ind.mode, "unit": ind.unit, "source": "",
        })
    return rows


def build_return(
    region: str | None = "Bretagne",
    values: Mapping[str, Any] | None = None,
    observations: Mapping[str, Any] | None = None,
    layout: Layout | None = None,
) -> bytes:
    """An Annexe 2 return as .xlsx bytes; ``values``/``observations`` are keyed by indicator id.

    A value may be any cell value (number, text, None) or a :class:`Formula`.
    """
    layout = layout or document_layout()
    values = dict(values or {})
    observations = dict(observations or {})
    wb = openpyxl.Workbook()
    first = wb.active
    if layout.notice_sheet:
        first.title = "Notice"
        first["A1"] = "Notice méthodologique"
        first["A3"] = ("Seuls les indicateurs dont le recueil relève du niveau local doivent être "
                       "complétés. Renseignez la colonne « Observations ».")
        ws = wb.create_sheet(layout.sheet_name)
    else:
        ws = first
        ws.title = layout.sheet_name
    formulas: dict[str, Formula] = {}
    rows_of = _write_table(ws, layout, region, values, observations, formulas)
    for name in layout.extra_sheets:
        extra = wb.create_sheet(name)
        extra["A1"] = f"Feuille {name}"
        extra["A2"] = 42
    if layout.hidden_copy:
        hidden = wb.create_sheet("Copie")
        hidden.sheet_state = "hidden"
        _write_table(hidden, replace(layout, region_line=None), None, {}, {}, {})
    if layout.meta:
        _write_meta(wb, ws.title, layout, region, rows_of)
    buffer = io.BytesIO()
    wb.save(buffer)
    data = buffer.getvalue()
    cached = {ref: f for ref, f in formulas.items() if f.cached is not None}
    if cached:
        data = add_cached_values(data, wb.sheetnames.index(ws.title) + 1, cached)
    return data


# A complete, correct return for the 16 local indicators: a figure and an observation each.
GOOD_VALUES: dict[str, Any] = {
    "I07": 25, "I08": "30 %", "I09": 4, "I10": 12, "I11": 150, "I12": 3, "I13": 10.5, "I14": 7,
    "I15": 9, "I16": "12 / 5", "I18": 2, "I25": 14, "I26": 6, "I27": 3, "I28": 2, "I30": 5,
}
GOOD_OBSERVATIONS = {k: f"Source : services déconcentrés ; cible régionale atteinte ({k})." for k in GOOD_VALUES}


def good_workbook(region: str = "Bretagne", **changes: Any) -> bytes:
    """The good return of ``region`` (:data:`GOOD_VALUES`, :data:`GOOD_OBSERVATIONS`); ``values`` and
    ``observations`` change some cells, any other keyword goes to :func:`build_return`."""
    values = {**GOOD_VALUES, **changes.pop("values", {})}
    observations = {**GOOD_OBSERVATIONS, **changes.pop("observations", {})}
    return build_return(region=region, values=values, observations=observations, **changes)


def _header_text(layout: Layout, key: str) -> str:
    return (layout.headers.get(key) or DOCUMENT_HEADERS.get(key, key)).format(year=layout.year)


def _write_table(
    ws: Any, layout: Layout, region: str | None, values: Mapping[str, Any],
    observations: Mapping[str, Any], formulas: dict[str, Formula],
) -> dict[str, int]:
    col_of = {key: layout.start_col + i for i, key in enumerate(layout.columns)}
    last_col = layout.start_col + len(layout.columns) - 1
    row = 1
    titles = [t.format(year=layout.year, region=region or "") for t in layout.title_rows]
    if layout.region_line and region:
        titles.insert(1 if titles else 0, layout.region_line.format(region=region, year=layout.year))
    for title in titles:
        if title:
            ws.cell(row=row, column=layout.start_col, value=title)
            if layout.merge_titles:
                ws.merge_cells(start_row=row, start_column=layout.start_col, end_row=row, end_column=last_col)
        row += 1

    def header(at: int) -> int:
        for key, col in col_of.items():
            text = _header_text(layout, key)
            if key == "result" and layout.split_result_header:
                ws.cell(row=at, column=col, value=re.sub(r"\s*\b20\d\d\b.*", "", text))
                ws.cell(row=at + 1, column=col, value=layout.year)
            else:
                ws.cell(row=at, column=col, value=text)
        return at + (2 if layout.split_result_header else 1)

    row = header(row)
    rows_of: dict[str, int] = {}
    order = [r for r in annexe2_rows(layout.order) if r["id"] not in layout.omit]
    order += [r for ident in layout.duplicate for r in annexe2_rows((ident,))]
    previous_convention = None
    for data in order:
        ident = data["id"]
        if layout.section_rows and data["convention"] != previous_convention and "convention" in col_of:
            ws.cell(row=row, column=col_of["convention"], value=data["convention"])
            row += 1
        for key, col in col_of.items():
            if key == "result":
                _put(ws, row, col, values.get(ident), formulas)
                if ident in layout.number_formats:
                    ws.cell(row=row, column=col).number_format = layout.number_formats[ident]
            elif key == "observation":
                ws.cell(row=row, column=col, value=observations.get(ident))
            elif key == "label":
                ws.cell(row=row, column=col, value=layout.labels.get(ident, data["label"]))
            elif key == "convention":
                if not layout.carry_convention or data["convention"] != previous_convention:
                    ws.cell(row=row, column=col, value=data["convention"])
            else:
                ws.cell(row=row, column=col, value=data.get(key) or None)
        previous_convention = data["convention"]
        rows_of.setdefault(ident, row)
        row += 1
        if ident in layout.page_breaks:
            row += 1
            ws.cell(row=row, column=layout.start_col, value=TITLE)
            row = header(row + 2)
    for label, value in layout.extra_rows:
        if "label" in col_of:
            ws.cell(row=row, column=col_of["label"], value=label)
        if "result" in col_of:
            _put(ws, row, col_of["result"], value, formulas)
        row += 1
    return rows_of


def _put(ws: Any, row: int, col: int, value: Any, formulas: dict[str, Formula]) -> None:
    if isinstance(value, Formula):
        ws.cell(row=row, column=col, value=value.text)
        formulas[f"{get_column_letter(col)}{row}"] = value
    else:
        ws.cell(row=row, column=col, value=value)


def _write_meta(wb: Any, sheet: str, layout: Layout, region: str | None, rows_of: dict[str, int]) -> None:
    from parsers.reference.regions import match_region

    meta = wb.create_sheet("_meta")
    meta.sheet_state = "veryHidden"
    found = match_region(region or "")
    meta["A1"], meta["B1"] = "conventions-intake-template", layout.template_version
    meta["B2"], meta["B3"], meta["B4"], meta["B5"] = (found.code if found else None), "test", layout.year, sheet
    col_of = {key: layout.start_col + i for i, key in enumerate(layout.columns)}
    for i, (ident, row) in enumerate(sorted(rows_of.items())):
        meta.cell(row=7 + i, column=1, value=ident)
        meta.cell(row=7 + i, column=2, value=row + layout.meta_row_shift)
        meta.cell(row=7 + i, column=3, value=get_column_letter(col_of["result"]))
        if "observation" in col_of:
            meta.cell(row=7 + i, column=4, value=get_column_letter(col_of["observation"]))


def add_cached_values(data: bytes, sheet_number: int, cached: Mapping[str, Formula]) -> bytes:
    """Write the cached result of formulas into an openpyxl-made xlsx (openpyxl leaves them empty)."""
    name = f"xl/worksheets/sheet{sheet_number}.xml"
    source = zipfile.ZipFile(io.BytesIO(data))
    xml = source.read(name).decode("utf-8")
    for ref, formula in cached.items():
        pattern = re.compile(rf'<c r="{ref}"([^>]*)><f>(.*?)</f><v\s*(?:/>|></v>)')
        kind = ' t="str"' if isinstance(formula.cached, str) else ""
        if isinstance(formula.cached, str) and formula.cached in CELL_ERRORS:
            kind = ' t="e"'
        value = str(formula.cached).replace("&", "&amp;").replace("<", "&lt;")
        replacement = rf'<c r="{ref}"\1{kind}><f>\2</f><v>{_escape_group(value)}</v>'
        xml, count = pattern.subn(replacement, xml)
        assert count == 1, f"formula cell {ref} not found in {name}"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            target.writestr(item, xml.encode("utf-8") if item.filename == name else source.read(item.filename))
    return out.getvalue()


def _escape_group(text: str) -> str:
    return text.replace("\\", "\\\\")
