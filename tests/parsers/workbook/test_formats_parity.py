"""The same Annexe 2 return as .xlsx, .ods (odfpy) and legacy .xls (xlwt) gives the same values, the
same cell references and the same issues.

Known difference, by design of the readers: python-calamine (ods, xls) reports no number formats,
so a fraction typed in a cell formatted "%" (0.3 shown as 30 %) is read as 30 % from .xlsx but as
the plain number 0.3 from .ods/.xls, which the value rules then read as a fraction (30 points) with
an ``ambiguous_percent`` warning. Text such as "30 %" and numbers typed in points are identical.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import openpyxl
import pytest

from parsers.model import WorkbookReturn
from parsers.workbook.check import check_workbook
from tests.factories.workbooks import GOOD_VALUES, good_workbook


def _grid(xlsx: bytes) -> tuple[list[tuple[str, dict[tuple[int, int], Any], list[tuple[int, int, int, int]]]]]:
    wb = openpyxl.load_workbook(io.BytesIO(xlsx))
    sheets = []
    for ws in wb.worksheets:
        cells = {(c.row, c.column): c.value for row in ws.iter_rows() for c in row if c.value is not None}
        merges = [(m.min_row, m.min_col, m.max_row, m.max_col) for m in ws.merged_cells.ranges]
        sheets.append((ws.title, cells, merges))
    return (sheets,)


def to_xls(xlsx: bytes) -> bytes:
    import xlwt

    (sheets,) = _grid(xlsx)
    book = xlwt.Workbook()
    for title, cells, merges in sheets:
        ws = book.add_sheet(title)
        merged_tops = {(r1, c1): (r1, c1, r2, c2) for r1, c1, r2, c2 in merges}
        inside = {(r, c) for r1, c1, r2, c2 in merges for r in range(r1, r2 + 1) for c in range(c1, c2 + 1)}
        for (r, c), value in cells.items():
            if (r, c) in merged_tops:
                r1, c1, r2, c2 = merged_tops[(r, c)]
                ws.write_merge(r1 - 1, r2 - 1, c1 - 1, c2 - 1, value)
            elif (r, c) not in inside:
                ws.write(r - 1, c - 1, value)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def to_ods(xlsx: bytes) -> bytes:
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import CoveredTableCell, Table, TableCell, TableRow
    from odf.text import P

    (sheets,) = _grid(xlsx)
    doc = OpenDocumentSpreadsheet()
    for title, cells, merges in sheets:
        table = Table(name=title)
        spans = {(r1, c1): (r2 - r1 + 1, c2 - c1 + 1) for r1, c1, r2, c2 in merges}
        covered = {(r, c) for r1, c1, r2, c2 in merges for r in range(r1, r2 + 1) for c in range(c1, c2 + 1)
                   if (r, c) != (r1, c1)}
        max_row = max((r for r, _ in cells), default=0)
        max_col = max((c for _, c in cells), default=0)
        for r in range(1, max_row + 1):
            row = TableRow()
            for c in range(1, max_col + 1):
                if (r, c) in covered:
                    row.addElement(CoveredTableCell())
                    continue
                value = cells.get((r, c))
                attrs: dict[str, Any] = {}
                if (r, c) in spans:
                    attrs = {"numberrowsspanned": spans[(r, c)][0], "numbercolumnsspanned": spans[(r, c)][1]}
                if isinstance(value, bool) or value is None:
                    cell = TableCell(**attrs)
                elif isinstance(value, int | float):
                    cell = TableCell(valuetype="float", value=value, **attrs)
                    cell.addElement(P(text=str(value)))
                else:
                    cell = TableCell(valuetype="string", **attrs)
                    cell.addElement(P(text=str(value)))
                row.addElement(cell)
            table.addElement(row)
        doc.spreadsheet.addElement(table)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def summary(result: WorkbookReturn) -> dict[str, Any]:
    return {
        "sheet": result.sheet, "region": result.region_code, "region_cell": result.region_cell, "year": result.year,
        "entries": {k: (e.value, e.value_cell, e.label_cell, e.observation, e.observation_cell)
                    for k, e in result.entries.items()},
        "issues": sorted((i.code, i.indicator, i.cell, i.severity) for i in result.issues),
    }


CONVERTERS: dict[str, Callable[[bytes], bytes]] = {"ods": to_ods, "xls": to_xls}
RETURNS: dict[str, Callable[[], bytes]] = {
    "good": good_workbook,
    "with_errors": lambda: good_workbook(values={"I07": "beaucoup", "I09": 4.5, "I11": -3, "I08": "130 %"},
                                         observations={"I10": ""}),
    "other_region": lambda: good_workbook(region="Rhône-Alpes"),
}


@pytest.mark.parametrize("fmt", sorted(CONVERTERS))
@pytest.mark.parametrize("case", sorted(RETURNS))
def test_same_values_cells_and_issues_as_xlsx(fmt: str, case: str) -> None:
    xlsx = RETURNS[case]()
    other = CONVERTERS[fmt](xlsx)
    expected = summary(check_workbook(xlsx, "bilan.xlsx", year=2013, expected_region="53"))
    got = summary(check_workbook(other, f"bilan.{fmt}", year=2013, expected_region="53"))
    assert expected["entries"], "the xlsx itself must be read"
    assert got == expected


def test_the_converted_files_really_are_ods_and_xls() -> None:
    from parsers.sniff import sniff

    assert sniff("x", "", to_ods(good_workbook())) == "ods"
    assert sniff("x", "", to_xls(good_workbook())) == "xls"


def test_documented_difference_percent_formatted_fraction() -> None:
    """0.3 formatted "0%" in .xlsx is 30 %; .ods/.xls carry no format: 0.3 is read as a fraction."""
    wb = openpyxl.load_workbook(io.BytesIO(good_workbook()))
    ws = wb.active
    target = next(c for row in ws.iter_rows() for c in row if c.value == GOOD_VALUES["I08"])
    target.value, target.number_format = 0.3, "0%"
    out = io.BytesIO()
    wb.save(out)
    xlsx = out.getvalue()
    from_xlsx = check_workbook(xlsx, "bilan.xlsx", year=2013).entries["I08"]
    from_xls = check_workbook(to_xls(xlsx), "bilan.xls", year=2013)
    assert from_xlsx.value == pytest.approx(30.0)
    assert from_xls.entries["I08"].value == pytest.approx(30.0)
    assert "ambiguous_percent" in {i.code for i in from_xls.issues if i.indicator == "I08"}
