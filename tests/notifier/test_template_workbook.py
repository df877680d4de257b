"""notifier.template_workbook: the Annexe 2 template, read back by our reader and by openpyxl."""

from __future__ import annotations

import io
import zipfile

import openpyxl
import pytest

from notifier.template_workbook import (
    COLUMN_WIDTHS,
    FIRST_ROW,
    HEADER_ROW,
    MAIN_SHEET,
    META_FIRST_ROW,
    _built,
    blank_template,
    build_template,
    headers,
    row_height,
    workbook_bytes,
)
from parsers.model import Workbook
from parsers.reference.catalogue import indicators
from parsers.workbook.xlsx import read_xlsx

EXPECTED_HEADERS = [
    "Convention", "Objectif stratégique", "Objectif opérationnel", "BOP", "Indicateur",
    "Valeur cible nationale", "Résultat régional 2013", "Observations", "Mode de renseignement",
]


@pytest.fixture(scope="module")
def bretagne() -> bytes:
    return build_template(region_code="53", region_name="Bretagne", campaign_id="bilan-2013", year=2013)


@pytest.fixture(scope="module")
def read_back(bretagne: bytes) -> Workbook:
    return read_xlsx(bretagne)


def test_sheets_and_visibility(read_back: Workbook) -> None:
    assert [(s.name, s.hidden) for s in read_back.sheets] == [
        ("Tableau de bord", False), ("Notice", False), ("_meta", True)]


def test_main_sheet_layout(read_back: Workbook) -> None:
    main = read_back.sheets[0]
    assert main.cells[(1, 1)].value == "TABLEAU DE SUIVI DES CONVENTIONS INTERMINISTERIELLES"
    assert main.cells[(2, 1)].value == "Région : Bretagne"
    assert [main.cells[(HEADER_ROW, c)].value for c in range(1, 10)] == EXPECTED_HEADERS
    assert list(headers(2013)) == EXPECTED_HEADERS
    for row, ind in enumerate(indicators(), start=FIRST_ROW):
        assert main.cells[(row, 5)].value == ind.label
        assert main.cells[(row, 1)].value == ind.convention
        mode = main.get(row, 9)
        assert (mode.value if mode else "") == ind.mode
        assert main.get(row, 7) is None and main.get(row, 8) is None  # nothing pre-filled
    assert main.max_row == FIRST_ROW + 31


def test_meta_sheet_maps_every_indicator_to_its_row(read_back: Workbook) -> None:
    meta = read_back.sheet("_meta")
    assert meta is not None
    main = read_back.sheets[0]

    def val(r: int, c: int) -> object:
        cell = meta.get(r, c)
        return None if cell is None else cell.value

    assert [(val(r, 1), val(r, 2)) for r in range(1, 6)] == [
        ("conventions-intake-template", "1"), ("region", "53"), ("campaign", "bilan-2013"),
        ("year", 2013.0), ("sheet", "Tableau de bord")]
    assert val(6, 1) is None
    ids = [ind.id for ind in indicators()]
    for offset, ind_id in enumerate(ids):
        r = META_FIRST_ROW + offset
        assert val(r, 1) == ind_id and val(r, 3) == "G" and val(r, 4) == "H"
        row = val(r, 2)
        assert isinstance(row, float)
        label = main.cells[(int(row), 5)].value
        assert label == next(i.label for i in indicators() if i.id == ind_id)
    assert val(META_FIRST_ROW + len(ids), 1) is None


def test_no_region_leaves_a_fill_in() -> None:
    data = build_template(region_code=None, region_name=None, campaign_id="c", year=2014, version="2")
    wb = read_xlsx(data)
    assert wb.sheets[0].cells[(2, 1)].value == "Région : "
    assert wb.sheets[0].cells[(HEADER_ROW, 7)].value == "Résultat régional 2014"
    meta = wb.sheet("_meta")
    assert meta is not None and meta.get(2, 2) is None and meta.cells[(1, 2)].value == "2"
    ws = openpyxl.load_workbook(io.BytesIO(data))["Tableau de bord"]
    assert ws["B2"].protection.locked is False


def test_protection_and_validation(bretagne: bytes) -> None:
    book = openpyxl.load_workbook(io.BytesIO(bretagne))
    ws = book["Tableau de bord"]
    assert ws.protection.sheet and not ws.protection.password
    assert book["_meta"].sheet_state == "veryHidden"
    assert ws.freeze_panes == f"A{FIRST_ROW}"
    validations = {str(dv.sqref): dv for dv in ws.data_validations.dataValidation}
    by_cell = {}
    for sqref, dv in validations.items():
        for ref in sqref.split():
            by_cell[ref] = dv
    locals_seen = 0
    for row, ind in enumerate(indicators(), start=FIRST_ROW):
        result, observation = ws.cell(row=row, column=7), ws.cell(row=row, column=8)
        if ind.is_local:
            locals_seen += 1
            assert result.protection.locked is False and observation.protection.locked is False
            dv = by_cell[result.coordinate]
            if ind.unit == "percent":
                assert (dv.type, dv.formula1, dv.formula2) == ("decimal", "0", "100")
                assert dv.prompt == "Pourcentage en points, de 0 à 100"
            elif ind.unit == "count":
                assert (dv.type, dv.operator, dv.formula1) == ("whole", "greaterThanOrEqual", "0")
            else:
                assert ind.unit == "count_pair" and dv.type is None and "12 / 5" in (dv.prompt or "")
                assert result.number_format == "@"
            assert observation.coordinate in by_cell
        else:
            for col in range(1, 10):
                cell = ws.cell(row=row, column=col)
                assert cell.protection.locked is not False
                assert cell.fill.fgColor.rgb.endswith("D9D9D9")
            assert result.coordinate not in by_cell
    assert locals_seen == 16
    assert ws.cell(row=HEADER_ROW, column=5).protection.locked is not False


def test_notice_is_in_french_and_mentions_nc(read_back: Workbook) -> None:
    notice = read_back.sheet("Notice")
    assert notice is not None
    text = " ".join(str(c.value) for c in notice.cells.values())
    assert "NC" in text and "Observations" in text and "date limite" in text


def test_printable_in_arial_on_landscape_pages(bretagne: bytes) -> None:
    """Arial everywhere (LibreOffice's Liberation Sans has its widths), so the row heights we set fit
    the line breaks of Excel and LibreOffice alike; docs/workbooks.md."""
    book = openpyxl.load_workbook(io.BytesIO(bretagne))
    assert book._fonts[0].name == "Arial"  # the default font, in which column widths are counted
    for name in ("Tableau de bord", "Notice"):
        ws = book[name]
        assert {c.font.name for row in ws.iter_rows() for c in row if c.value is not None} == {"Arial"}
        assert ws.page_setup.orientation == "landscape" and ws.print_area and ws.print_title_rows
        assert all(ws.row_dimensions[r].height for r in range(1, ws.max_row + 1) if ws.cell(r, 1).value)


def xml_parts(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist() if name != "docProps/core.xml"}


def test_a_blank_template_is_built_once_and_is_what_a_fresh_build_gives() -> None:
    """The blank template comes from a per-process cache (the annotated workbook of every faulty
    return patches its bytes): the file the regions receive, the same as a fresh build."""
    def blank() -> bytes:
        return build_template(region_code="93", region_name="Provence-Alpes-Côte d'Azur", campaign_id="bilan-2013",
                              year=2013)

    cached = blank_template(region_code="93", region_name="Provence-Alpes-Côte d'Azur", campaign_id="bilan-2013",
                            year=2013)
    assert blank() is cached.data and blank() is blank()
    fresh = _built("93", "Provence-Alpes-Côte d'Azur", "bilan-2013", 2013, "1", {}, {})
    assert xml_parts(cached.data) == xml_parts(workbook_bytes(fresh.workbook))
    assert dict(cached.rows) == fresh.rows
    # what a caller needs to refit a row as fit_rows would: each cell's text and font size
    main = openpyxl.load_workbook(io.BytesIO(cached.data))[MAIN_SHEET]
    assert set(cached.cells) == set(cached.rows.values())
    for row, cells in cached.cells.items():
        assert [value for value, _ in cells] == [main.cell(row=row, column=c).value for c in range(1, 10)]
        assert [size for _, size in cells] == [main.cell(row=row, column=c).font.sz for c in range(1, 10)]
        height = row_height((value, width, size) for (value, size), width in zip(cells, COLUMN_WIDTHS, strict=True))
        assert main.row_dimensions[row].height == height
