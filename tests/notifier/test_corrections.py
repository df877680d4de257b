"""notifier.corrections: the annotated workbook read back by our reader, by openpyxl and by LibreOffice."""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import openpyxl
import pytest
from openpyxl.cell.cell import Cell
from openpyxl.worksheet.worksheet import Worksheet

from notifier import corrections as corrections_module
from notifier import template_workbook
from notifier.corrections import (
    COMMENT_AUTHOR,
    ERROR_COLOUR,
    ISSUE_HEADER_ROW,
    ISSUE_WIDTHS,
    ISSUES_SHEET,
    WARNING_COLOUR,
    build_corrections,
    build_templates_ahead,
    corrections_name,
    split_message,
)
from notifier.rendering import SEVERITY_WORDS
from notifier.template_workbook import (
    COLUMN_WIDTHS,
    FIRST_ROW,
    FONT_SIZE,
    MAIN_SHEET,
    NOTICE_SHEET,
    OBSERVATION_COL,
    RESULT_COL,
    BlankTemplate,
    blank_template,
    prefill_value,
    row_height,
)
from parsers.model import Issue, WorkbookReturn
from parsers.reference.catalogue import indicators_by_id
from parsers.safezip import local_name
from parsers.workbook.check import check_workbook
from parsers.workbook.xlsx import read_xlsx, split_ref
from tests.factories.workbooks import Formula, document_layout, good_workbook, hand_made_layout
from tests.support.office import pages_words, to_pdf
from tests.support.settings import make_settings

# A return in the document's layout (not our template's), with a problem of every kind a cell can have.
FAULTS: dict[str, Any] = {
    "I09": "quatre",  # not_a_number
    "I12": -2,  # out_of_range (count)
    "I07": "150 %",  # out_of_range (percent)
    "I14": 7.5,  # not_an_integer
    "I15": Formula("=1/0", "#DIV/0!"),  # cell_error
    "I26": None,  # missing_value (with no observation below)
    "I25": "NC",  # a marker, with its observation: fine
    "I01": 5,  # national_indicator (warning)
}
OBSERVATIONS = {"I10": "", "I26": ""}  # I10: missing_observation (warning)
ERRORS = {("not_a_number", "I09"), ("out_of_range", "I12"), ("out_of_range", "I07"), ("not_an_integer", "I14"),
          ("cell_error", "I15")}
FIXES = {"I09": 4, "I12": 3, "I07": 25, "I14": 7, "I15": 9}


def read(data: bytes, name: str = "corrections-bretagne.xlsx") -> WorkbookReturn:
    return check_workbook(data, name, year=2013, expected_region="53")


def annotate(original: WorkbookReturn) -> bytes:
    return build_corrections(original, region_code="53", region_name="Bretagne", campaign_id="bilan-2013", year=2013)


@pytest.fixture(scope="module")
def original() -> WorkbookReturn:
    layout = document_layout(region_line="Région : {region}")
    return read(good_workbook(values=FAULTS, observations=OBSERVATIONS, layout=layout), "Bilan 2013 Bretagne.xlsx")


@pytest.fixture(scope="module")
def corrections(original: WorkbookReturn) -> bytes:
    return annotate(original)


def issue_keys(wb: WorkbookReturn) -> set[tuple[str, str | None, str]]:
    return {(i.code, i.indicator, i.severity) for i in wb.issues}


def test_the_original_has_the_faults_it_should(original: WorkbookReturn) -> None:
    assert {(i.code, i.indicator) for i in original.errors} == ERRORS
    assert issue_keys(original) - {(c, i, "error") for c, i in ERRORS} == {
        ("missing_value", "I26", "warning"), ("missing_observation", "I10", "warning"),
        ("national_indicator", "I01", "warning")}


def test_read_back_like_our_template_with_the_same_values_and_issues(
    original: WorkbookReturn, corrections: bytes
) -> None:
    back = read(corrections)
    assert back.sheet == MAIN_SHEET and back.template_version == "1" and back.region_code == "53"
    assert issue_keys(back) == issue_keys(original)
    assert back.entries.keys() == original.entries.keys()
    for ident, entry in original.entries.items():
        again = back.entries[ident]
        assert (again.value, again.observation) == (entry.value, entry.observation), ident
    # each issue now points at our template's cell, and its message names that cell
    book = openpyxl.load_workbook(io.BytesIO(corrections))
    main = book[MAIN_SHEET]
    for issue in back.issues:
        assert issue.cell is not None and issue.sheet == MAIN_SHEET
        cell = main[issue.cell]
        colour = ERROR_COLOUR if issue.severity == "error" else WARNING_COLOUR
        assert cell.fill.fgColor.rgb.endswith(colour), issue
        assert cell.protection.locked is False
        assert issue.message in cell.comment.text


def test_first_sheet_lists_every_issue_with_a_link_to_its_cell(
    original: WorkbookReturn, corrections: bytes
) -> None:
    book = openpyxl.load_workbook(io.BytesIO(corrections))
    assert book.sheetnames[0] == ISSUES_SHEET and book.active.title == ISSUES_SHEET
    assert book.sheetnames[1:] == [MAIN_SHEET, "Notice", "_meta"]
    sheet = book[ISSUES_SHEET]
    header = [c.value for c in sheet[4]]
    assert header == ["N°", "Ligne", "Cellule", "Élément concerné", "Gravité", "Ce qui ne va pas", "Comment corriger"]
    rows = [[c for c in row] for row in sheet.iter_rows(min_row=5) if row[0].value is not None]
    assert len(rows) == len(original.issues)
    assert [r[4].value for r in rows] == ["erreur"] * len(ERRORS) + ["avertissement"] * (len(rows) - len(ERRORS))
    main = book[MAIN_SHEET]
    labels = indicators_by_id()
    for number, line, cell, subject, _severity, what, fix in rows:
        assert isinstance(line.value, int) and cell.value in (f"G{line.value}", f"H{line.value}")
        assert cell.hyperlink.location == f"'{MAIN_SHEET}'!{cell.value}"
        assert line.hyperlink.location == cell.hyperlink.location
        ident = subject.value.rsplit("[", 1)[1].rstrip("]")
        assert subject.value == f"{labels[ident].label} [{ident}]"
        assert main.cell(row=line.value, column=5).value == labels[ident].label  # the row is that indicator's
        assert what.value and fix.value, number.value  # what is wrong, and how to fix it


def test_corrected_cells_are_accepted(corrections: bytes) -> None:
    book = openpyxl.load_workbook(io.BytesIO(corrections))
    back = read(corrections)
    main = book[MAIN_SHEET]
    for issue in back.issues:
        assert issue.indicator is not None and issue.cell is not None
        if issue.indicator in FIXES:
            main[issue.cell] = FIXES[issue.indicator]
    main[back.entries["I10"].observation_cell or ""] = "Source : préfecture."
    main[back.entries["I26"].value_cell or ""] = 6
    main[back.entries["I26"].observation_cell or ""] = "Source : préfecture."
    buffer = io.BytesIO()
    book.save(buffer)
    fixed = read(buffer.getvalue())
    assert fixed.verdict == "accepted", fixed.issues
    assert issue_keys(fixed) == {("national_indicator", "I01", "warning")}  # for information only
    assert fixed.entries["I09"].value == 4 and fixed.entries["I07"].value == 25


def test_an_issue_on_every_indicator_still_reads_as_our_template() -> None:
    """The list « À corriger » then names all 32 indicators: it must never be taken for the table."""
    faults = {ind.id: "à voir" for ind in indicators_by_id().values()}
    long_text = "Observation très longue. " * 200
    original = read(good_workbook(values=faults, observations={"I07": long_text}), "bilan.xlsx")
    assert {i.indicator for i in original.issues} >= set(faults)
    data = annotate(original)
    back = read(data)
    assert back.sheet == MAIN_SHEET and issue_keys(back) - {("region_not_found", None, "warning")} == (
        issue_keys(original) - {("region_not_found", None, "warning")})
    main = openpyxl.load_workbook(io.BytesIO(data))[MAIN_SHEET]
    assert max(main.row_dimensions[r].height for r in range(5, 37)) == 409  # Excel's highest row


def test_a_table_in_another_layout_is_moved_by_indicator() -> None:
    original = read(good_workbook(values={"I09": "x"}, observations={"I08": ""}, layout=hand_made_layout()),
                    "bilan.xlsx")
    assert original.entries["I09"].value_cell != "G13"  # their layout is not ours
    back = read(annotate(original))
    assert {(i.code, i.indicator, i.cell) for i in back.issues} == {
        ("not_a_number", "I09", "G13"), ("missing_observation", "I08", "H12")}


def test_another_regions_table_keeps_its_region_and_the_error() -> None:
    original = read(good_workbook("Pays de la Loire", values={"I09": "x"}, layout=document_layout(
        region_line="Région : {region}")), "bilan.xlsx")
    assert ("region_mismatch", None, "error") in issue_keys(original)
    data = annotate(original)
    book = openpyxl.load_workbook(io.BytesIO(data))
    region = book[MAIN_SHEET]["A2"]
    assert region.value == "Région : Pays de la Loire" and region.fill.fgColor.rgb.endswith(ERROR_COLOUR)
    assert region.protection.locked is False
    assert issue_keys(read(data)) == issue_keys(original)


def test_an_unreadable_file_is_listed_without_a_cell() -> None:
    original = read(b"PK\x03\x04 not really a workbook", "bilan.xlsx")
    assert [i.code for i in original.issues] == ["unreadable_file"]
    book = openpyxl.load_workbook(io.BytesIO(annotate(original)))
    row = [c.value for c in book[ISSUES_SHEET][5]]
    assert row[:5] == [1, None, None, "Fichier", "erreur"] and "ne peut pas être lu" in row[5]
    assert book[ISSUES_SHEET]["C5"].hyperlink is None


def test_file_name_and_message_split() -> None:
    assert corrections_name("Provence-Alpes-Côte d'Azur") == "corrections-provence-alpes-cote-d-azur.xlsx"
    assert corrections_name("Île-de-France", 2) == "corrections-ile-de-france-2.xlsx"
    what, fix = split_message("I12 « Nombre » : la valeur -2 (cellule G16) est hors des bornes (un nombre "
                              "positif ou nul). Corrigez la valeur.")
    assert what.endswith("(un nombre positif ou nul).") and fix == "Corrigez la valeur."


def test_it_opens_in_libreoffice(corrections: bytes, tmp_path: Path) -> None:
    pages = pages_words(to_pdf(corrections, "corrections-bretagne.xlsx", tmp_path))
    assert len(pages) >= 3  # the list, the table (two pages), the notice
    assert all(width > height for width, height, _ in pages)  # landscape
    first = " ".join(w.text for w in pages[0][2])
    assert "Points à corriger" in first and "quatre" in first


# --------------------------------------------------------------------------- the file as Excel checks it

# The children of <worksheet>, in the order of the schema (ECMA-376, CT_Worksheet): Excel refuses
# (« We found a problem with some content ») a sheet whose children are out of this order.
WORKSHEET_ORDER = (
    "sheetPr", "dimension", "sheetViews", "sheetFormatPr", "cols", "sheetData", "sheetCalcPr", "sheetProtection",
    "protectedRanges", "scenarios", "autoFilter", "sortState", "dataConsolidate", "customSheetViews", "mergeCells",
    "phoneticPr", "conditionalFormatting", "dataValidations", "hyperlinks", "printOptions", "pageMargins",
    "pageSetup", "headerFooter", "rowBreaks", "colBreaks", "customProperties", "cellWatches", "ignoredErrors",
    "smartTags", "drawing", "legacyDrawing", "legacyDrawingHF", "drawingHF", "picture", "oleObjects", "controls",
    "webPublishItems", "tableParts", "extLst",
)
WORKSHEET_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
R_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"


def the_blank() -> BlankTemplate:
    """The blank template the file of ``annotate`` starts from."""
    return blank_template(region_code="53", region_name="Bretagne", campaign_id="bilan-2013", year=2013)


def parts_of(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None  # every member's CRC
        names = archive.namelist()
        assert len(names) == len(set(names))
        return {name: archive.read(name) for name in names}


def children(element: ElementTree.Element, name: str) -> list[ElementTree.Element]:
    return [child for child in element.iter() if local_name(child.tag) == name]


def relationships(parts: dict[str, bytes], part: str) -> dict[str, tuple[str, str]]:
    """Id -> (type, path of the target part) of the relationships of ``part``."""
    folder, name = posixpath.split(part)
    rels = posixpath.join(folder, "_rels", f"{name}.rels")
    if rels not in parts:
        return {}
    found = {}
    for rel in ElementTree.fromstring(parts[rels]):
        target = rel.get("Target", "")
        path = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join(folder, target))
        found[rel.get("Id", "")] = (rel.get("Type", "").rsplit("/", 1)[-1], path)
    return found


def check_package(data: bytes) -> None:
    """What Excel needs to open the file without « repairing » it: every XML part well-formed
    (a strict parser: no character XML 1.0 forbids), every relationship's target present, a
    content type for every part, style lists whose counts match and that every index points
    into, sheets whose children follow the schema's order and whose cells and rows are in order,
    comments with their drawing."""
    parts = parts_of(data)
    trees = {name: ElementTree.fromstring(content) for name, content in parts.items()
             if name.endswith((".xml", ".rels", ".vml"))}
    assert set(trees) == set(parts)
    # content types
    types = trees["[Content_Types].xml"]
    defaults = {el.get("Extension", "").lower() for el in types if local_name(el.tag) == "Default"}
    overrides = {el.get("PartName", ""): el.get("ContentType") for el in types if local_name(el.tag) == "Override"}
    assert all(part.lstrip("/") in parts for part in overrides)
    assert all(f"/{name}" in overrides or name.rsplit(".", 1)[1] in defaults for name in parts
               if name != "[Content_Types].xml")
    # relationships: unique ids, targets present, each from a part that exists
    for name in parts:
        if name.endswith(".rels"):
            folder, base = posixpath.split(name)
            assert name == "_rels/.rels" or posixpath.join(posixpath.dirname(folder), base[:-5]) in parts
            ids = [rel.get("Id") for rel in trees[name]]
            assert len(ids) == len(set(ids)), name
    for part in (*parts, ""):
        for kind, target in relationships(parts, part).values():
            assert target in parts, (part, kind, target)
    # the workbook: its sheets, their ids, the sheet-local defined names
    workbook = trees["xl/workbook.xml"]
    sheets = children(workbook, "sheet")
    book_rels = relationships(parts, "xl/workbook.xml")
    assert len({s.get("name") for s in sheets}) == len({s.get("sheetId") for s in sheets}) == len(sheets)
    assert all(book_rels[s.get(R_ID, "")][0] == "worksheet" for s in sheets)
    assert all(int(d.get("localSheetId", "0")) < len(sheets) for d in children(workbook, "definedName"))
    assert int(children(workbook, "workbookView")[0].get("activeTab", "0")) < len(sheets)
    # styles: counts, and every index in range
    styles = trees["xl/styles.xml"]
    for section in styles:
        if section.get("count") is not None:
            assert int(section.get("count", "")) == len(section), local_name(section.tag)
    lists = {local_name(section.tag): len(section) for section in styles}
    custom = {int(f.get("numFmtId", "")) for f in children(styles, "numFmt")}
    xfs = children(next(s for s in styles if local_name(s.tag) == "cellXfs"), "xf")
    for xf in xfs:
        assert int(xf.get("fontId", "0")) < lists["fonts"] and int(xf.get("fillId", "0")) < lists["fills"]
        assert int(xf.get("borderId", "0")) < lists["borders"]
        assert int(xf.get("numFmtId", "0")) < 164 or int(xf.get("numFmtId", "")) in custom
    # sheets
    for sheet in sheets:
        part = book_rels[sheet.get(R_ID, "")][1]
        assert overrides[f"/{part}"] == WORKSHEET_TYPE
        tree = trees[part]
        order = [WORKSHEET_ORDER.index(local_name(child.tag)) for child in tree]
        assert order == sorted(order) and len(order) == len(set(order)), (part, [c.tag for c in tree])
        rows = [int(row.get("r", "")) for row in children(tree, "row")]
        assert rows == sorted(set(rows))
        for row in children(tree, "row"):
            refs = [re.fullmatch(r"([A-Z]+)(\d+)", c.get("r", "")) for c in children(row, "c")]
            assert all(ref and ref.group(2) == row.get("r") for ref in refs), part
            columns = [(len(ref.group(1)), ref.group(1)) for ref in refs if ref]
            assert columns == sorted(set(columns)), (part, row.get("r"))
            assert all(int(c.get("s", "0")) < len(xfs) for c in children(row, "c"))
        # comments: a drawing with one box per comment
        sheet_rels = relationships(parts, part)
        drawings = [sheet_rels[d.get(R_ID, "")] for d in children(tree, "legacyDrawing")]
        comments = [target for kind, target in sheet_rels.values() if kind == "comments"]
        assert len(drawings) == len(comments) <= 1
        if comments:
            assert drawings[0][0] == "vmlDrawing"
            commented = {split_ref(c.get("ref", "")) for c in children(trees[comments[0]], "comment")}
            boxes = {(int(box.findtext("{urn:schemas-microsoft-com:office:excel}Row", "")) + 1,
                      int(box.findtext("{urn:schemas-microsoft-com:office:excel}Column", "")) + 1)
                     for box in children(trees[drawings[0][1]], "ClientData")}
            assert commented == boxes


@pytest.mark.parametrize("kind", ["faults", "every indicator", "unreadable", "other region", "hand-made", "no region"])
def test_every_kind_of_file_is_a_sound_package(kind: str, original: WorkbookReturn) -> None:
    region: dict[str, Any] = {"region_code": "53", "region_name": "Bretagne"}
    if kind == "faults":
        workbook = original
    elif kind == "every indicator":
        workbook = read(good_workbook(values={i: "à voir" for i in indicators_by_id()}), "bilan.xlsx")
    elif kind == "unreadable":
        workbook = read(b"PK\x03\x04 not really a workbook", "bilan.xlsx")
    elif kind == "other region":
        workbook = read(good_workbook("Pays de la Loire", values={"I09": "x"},
                                      layout=document_layout(region_line="Région : {region}")), "bilan.xlsx")
    elif kind == "hand-made":
        workbook = read(good_workbook(values={"I09": "x"}, observations={"I08": ""}, layout=hand_made_layout()),
                        "bilan.xlsx")
    else:
        workbook = read(good_workbook(values={"I09": "x"}), "b.xlsx")
        region = {"region_code": None, "region_name": None}
    data = build_corrections(workbook, campaign_id="bilan-2013", year=2013, **region)
    check_package(data)
    listed = read_xlsx(data).sheets[0].cells  # the list: one row per issue
    numbers = [cell.value for (row, col), cell in sorted(listed.items()) if col == 1 and row > ISSUE_HEADER_ROW]
    assert numbers == list(range(1, len(workbook.issues) + 1))


def test_a_date_typed_in_a_figure_cell_stays_a_date() -> None:
    """« 12/5 » typed for the crèches (I16) becomes a date in Excel: written back as that date,
    with a date's number format (as openpyxl did), so that reading it back finds the same issue."""
    typed = datetime(2013, 5, 12)
    original = read(good_workbook(values={"I16": typed}), "bilan.xlsx")
    assert original.entries["I16"].raw == typed and original.entries["I16"].value is None
    data = annotate(original)
    check_package(data)
    cell = openpyxl.load_workbook(io.BytesIO(data))[MAIN_SHEET].cell(row=the_blank().rows["I16"], column=RESULT_COL)
    assert (cell.value, cell.number_format) == (typed, "yyyy-mm-dd h:mm:ss")
    assert cell.fill.fgColor.rgb.endswith(ERROR_COLOUR) and cell.protection.locked is False
    back = read(data)
    assert back.entries["I16"].raw == typed and issue_keys(back) - {("region_not_found", None, "warning")} == (
        issue_keys(original) - {("region_not_found", None, "warning")})


def xml_parts(data: bytes) -> dict[str, bytes]:
    """The parts but the template's creation date."""
    return {name: content for name, content in parts_of(data).items() if name != "docProps/core.xml"}


def font_of(cell: Cell) -> tuple[object, ...]:
    return (cell.font.name, cell.font.sz, cell.font.b, cell.font.color.rgb if cell.font.color else None, cell.font.u)


def look(cell: Cell) -> tuple[object, ...]:
    """A cell's format but its fill and protection."""
    border = cell.border
    return (font_of(cell), cell.number_format, cell.alignment.horizontal, cell.alignment.vertical,
            cell.alignment.wrap_text, tuple((side.style, side.color.rgb if side.color else None)
                                            for side in (border.left, border.right, border.top, border.bottom)))


def fill_of(cell: Cell) -> str | None:
    return str(cell.fill.fgColor.rgb)[-6:] if cell.fill.fill_type == "solid" else None


def fitted(ws: Worksheet, row: int, widths: tuple[float, ...]) -> float:
    """The height notifier.template_workbook.fit_rows gives a row."""
    return row_height((ws.cell(row=row, column=col).value, width, float(ws.cell(row=row, column=col).font.sz))
                      for col, width in enumerate(widths, start=1))


def test_the_file_is_a_sound_package(corrections: bytes) -> None:
    check_package(corrections)
    blank = parts_of(the_blank().data)
    parts = parts_of(corrections)
    # the template's other parts go as they were: the notice, _meta, the theme, the properties
    for name in ("xl/worksheets/sheet2.xml", "xl/worksheets/sheet3.xml", "xl/theme/theme1.xml",
                 "docProps/core.xml", "docProps/app.xml", "_rels/.rels"):
        assert parts[name] == blank[name], name


def test_the_main_sheet_is_the_template_with_the_values_and_the_marks(
    original: WorkbookReturn, corrections: bytes
) -> None:
    """Cell by cell against the blank template: the values and observations written in G and H,
    the cells the issues point at red or orange, unlocked, with a comment; the rest as it was."""
    blank = openpyxl.load_workbook(io.BytesIO(the_blank().data))
    book = openpyxl.load_workbook(io.BytesIO(corrections))
    main, before = book[MAIN_SHEET], blank[MAIN_SHEET]
    rows = the_blank().rows
    written: dict[tuple[int, int], object] = {}
    for ident, entry in original.entries.items():  # the value as we read it, else as it was typed
        if entry.raw is not None:
            written[rows[ident], RESULT_COL] = entry.raw if entry.value is None else prefill_value(entry.value)
        if entry.observation:
            written[rows[ident], OBSERVATION_COL] = entry.observation
    marks: dict[tuple[int, int], list[Issue]] = {}
    for issue in original.issues:
        assert issue.indicator is not None
        entry = original.entries[issue.indicator]
        column = OBSERVATION_COL if issue.cell == entry.observation_cell else RESULT_COL
        marks.setdefault((rows[issue.indicator], column), []).append(issue)
    assert len(marks) == len(original.issues) == 8
    for row in range(1, before.max_row + 1):
        for col in range(1, 10):
            cell, was = main.cell(row=row, column=col), before.cell(row=row, column=col)
            assert look(cell) == look(was), cell.coordinate  # font, border, alignment, number format kept
            if (row, col) in written:
                expected = written[row, col]
                if isinstance(expected, str):
                    assert cell.value == expected and cell.data_type in ("s", "e"), cell.coordinate  # never "f"
                else:
                    assert cell.value == expected and cell.data_type == "n", cell.coordinate
            else:
                assert cell.value == was.value, cell.coordinate
            issues = marks.get((row, col))
            if issues is None:
                assert (fill_of(cell), cell.protection.locked, cell.comment) == (fill_of(was), was.protection.locked,
                                                                                 None), cell.coordinate
                continue
            error = any(i.severity == "error" for i in issues)
            assert fill_of(cell) == (ERROR_COLOUR if error else WARNING_COLOUR) and cell.protection.locked is False
            assert cell.comment is not None and cell.comment.author == COMMENT_AUTHOR
            words = [SEVERITY_WORDS[i.severity].capitalize() for i in issues]
            assert cell.comment.text.startswith(f"{words[0]} : ") and cell.comment.text.count(" : Ligne ") == len(words)
    for row in range(1, before.max_row + 1):
        height = main.row_dimensions[row].height
        assert height == (fitted(main, row, COLUMN_WIDTHS) if row >= FIRST_ROW else before.row_dimensions[row].height)
    assert main.freeze_panes == before.freeze_panes == f"A{FIRST_ROW}"
    assert main.merged_cells.ranges == before.merged_cells.ranges
    assert (main.print_title_rows, main.print_area) == (before.print_title_rows, before.print_area)
    assert main.protection.sheet and [str(v.sqref) for v in main.data_validations.dataValidation] == [
        str(v.sqref) for v in before.data_validations.dataValidation]
    assert book[NOTICE_SHEET].print_area == blank[NOTICE_SHEET].print_area
    assert [(ws.title, ws.sheet_state) for ws in book.worksheets] == [
        (ISSUES_SHEET, "visible"), (MAIN_SHEET, "visible"), (NOTICE_SHEET, "visible"), ("_meta", "veryHidden")]
    assert book.active.title == ISSUES_SHEET and book[ISSUES_SHEET].sheet_view.tabSelected
    assert not main.sheet_view.tabSelected


def comment_boxes(data: bytes) -> dict[tuple[int, int], tuple[int, int]]:
    """(row, column) of each comment (1-based) -> the (width, height) of its box, in pixels."""
    parts = parts_of(data)
    vml = next(content for name, content in parts.items() if name.endswith(".vml"))
    boxes = {}
    for shape in ElementTree.fromstring(vml):
        if local_name(shape.tag) == "shape":
            style = dict(item.strip().split(":") for item in shape.get("style", "").split(";"))
            data_ = next(c for c in shape if local_name(c.tag) == "ClientData")
            row, col = (int(data_.findtext(f"{{urn:schemas-microsoft-com:office:excel}}{n}", "")) for n in ("Row",
                                                                                                          "Column"))
            boxes[row + 1, col + 1] = (int(style["width"].removesuffix("px")), int(style["height"].removesuffix("px")))
    return boxes


def test_comment_boxes_fit_their_texts(corrections: bytes) -> None:
    main = openpyxl.load_workbook(io.BytesIO(corrections))[MAIN_SHEET]
    commented = {(c.row, c.column): c.comment.text for row in main.iter_rows() for c in row if c.comment}
    boxes = comment_boxes(corrections)
    assert set(boxes) == set(commented)
    for cell, text in commented.items():
        lines = sum(len(part) // 50 + 1 for part in text.split("\n"))
        assert boxes[cell] == (360, max(80, 15 * lines))


def test_the_list_is_formatted_and_prints_like_the_other_sheets(original: WorkbookReturn, corrections: bytes) -> None:
    book = openpyxl.load_workbook(io.BytesIO(corrections))
    sheet, main = book[ISSUES_SHEET], book[MAIN_SHEET]
    last = ISSUE_HEADER_ROW + len(original.issues)
    assert sheet["A1"].font.b and sheet["A1"].font.sz == 13
    assert str(sheet.merged_cells) == "A2:G2" and sheet.row_dimensions[2].height == 3 * FONT_SIZE * 1.3 + 6
    assert sheet.freeze_panes == f"A{ISSUE_HEADER_ROW + 1}"
    assert [sheet.column_dimensions[chr(65 + i)].width for i in range(7)] == list(ISSUE_WIDTHS)
    for cell in sheet[ISSUE_HEADER_ROW]:
        assert cell.font.b and fill_of(cell) == "DDEBF7" and cell.border.left.style == "thin"
        assert (cell.alignment.horizontal, cell.alignment.vertical) == ("center", "center")
    for row in range(ISSUE_HEADER_ROW + 1, last + 1):
        cells = sheet[row]
        assert sheet.row_dimensions[row].height == fitted(sheet, row, ISSUE_WIDTHS)
        assert all(c.border.bottom.style == "thin" and c.alignment.wrap_text for c in cells)
        assert [c.alignment.horizontal for c in cells] == ["center"] * 3 + [None, "center", None, None]
        assert fill_of(cells[4]) == (ERROR_COLOUR if cells[4].value == "erreur" else WARNING_COLOUR)
        for link in cells[1:3]:
            assert link.hyperlink.tooltip == f"Aller à la cellule {cells[2].value}"
            assert link.font.u == "single" and str(link.font.color.rgb).endswith("0563C1")
    assert sheet.max_row == last
    assert (sheet.print_title_rows, sheet.print_area) == (f"${ISSUE_HEADER_ROW}:${ISSUE_HEADER_ROW}",
                                                          f"'{ISSUES_SHEET}'!$A$1:$G${last}")
    # the page as print_setup sets up the template's sheets
    for ws in (sheet, main):
        assert ws.sheet_properties.pageSetUpPr.fitToPage
    assert [(ws.page_setup.orientation, ws.page_setup.paperSize, ws.page_setup.fitToWidth, ws.page_setup.fitToHeight,
             ws.page_margins.left, ws.page_margins.right, ws.page_margins.top, ws.page_margins.bottom,
             ws.page_margins.header, ws.page_margins.footer, ws.print_options.horizontalCentered,
             ws.oddFooter.left.text, ws.oddFooter.right.text) for ws in (sheet, main)] == [
        ("landscape", 9, 1, 0, 0.4, 0.4, 0.5, 0.6, 0.25, 0.3, True, "&A", "Page &P sur &N")] * 2


def test_the_same_return_gives_the_same_bytes(original: WorkbookReturn) -> None:
    first = annotate(original)
    assert annotate(original) == first
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    # built again from scratch: only the template's creation date may differ
    corrections_module._template.cache_clear()
    template_workbook._blank.cache_clear()
    assert xml_parts(annotate(original)) == xml_parts(first)


# A cell's text as a hostile workbook may have it: control characters (our reader decodes Excel's
# _x0001_), a lone surrogate, markup, CDATA's end, what looks like Excel's escapes.
HOSTILE = "qu\x01atre\x0b\x1f ]]> <script>alert(1)</script> &amp; \"'\r\n _x0041_ \ud800 fin"


def test_hostile_values_are_escaped_and_read_back_as_text(tmp_path: Path) -> None:
    """What a region's workbook holds never makes the file invalid: XML's special characters
    escaped, what XML 1.0 cannot carry in Excel's _xHHHH_ notation, a text starting with = (or
    + - @) a text, never a formula, a text longer than a cell holds cut at 32,767 characters."""
    base = read(good_workbook(values={"I09": "qu_x0001_atre", "I12": "=HYPERLINK(\"http://example.org\")",
                                      "I13": "@SUM(1)"}), "bilan.xlsx")
    assert base.entries["I09"].raw == "qu\x01atre"  # the reader does hand control characters over
    entries = dict(base.entries)
    entries["I14"] = replace(entries["I14"], raw=HOSTILE, value=None)
    entries["I10"] = replace(entries["I10"], observation="x" * 32000)
    entries["I11"] = replace(entries["I11"], observation="=1+1 " + "y" * 40000)
    extra = (Issue("error", "not_a_number", f"La valeur « {HOSTILE} » n'est pas un nombre. Corrigez-la.",
                   indicator="I14", cell=entries["I14"].value_cell, value=HOSTILE),
             Issue("warning", "unknown_indicator", f"Ligne 40 « {HOSTILE} » : ligne non reconnue.", value=HOSTILE))
    hostile = replace(base, entries=entries, issues=base.issues + extra, file="bilan\x07<b>.xlsx")
    data = annotate(hostile)
    check_package(data)
    back = read(data)
    rows = the_blank().rows
    assert back.entries["I09"].raw == "qu\x01atre" and back.entries["I14"].raw == HOSTILE
    assert back.entries["I10"].observation == "x" * 32000
    assert back.entries["I11"].observation == ("=1+1 " + "y" * 40000)[:32767]
    book = openpyxl.load_workbook(io.BytesIO(data))
    main = book[MAIN_SHEET]
    for ident, text in (("I12", "=HYPERLINK(\"http://example.org\")"), ("I13", "@SUM(1)")):
        cell = main.cell(row=rows[ident], column=RESULT_COL)
        assert (cell.value, cell.data_type) == (text, "s")
    assert main.cell(row=rows["I11"], column=OBSERVATION_COL).data_type == "s"
    assert main.row_dimensions[rows["I10"]].height == 409
    # the list and the comments, read by our reader (which decodes _xHHHH_ as Excel does)
    listed = read_xlsx(data).sheets[0]
    assert listed.name == ISSUES_SHEET
    texts = {str(cell.value) for cell in listed.cells.values()}
    assert f"Ligne de votre tableau non reconnue : « {HOSTILE} »" in texts
    assert f"La valeur « {HOSTILE} » n'est pas un nombre." in texts and "bilan\x07<b>.xlsx" in " ".join(texts)
    comments = next(content for name, content in parts_of(data).items() if name.startswith("xl/comments/"))
    assert b"<script>" not in comments and b"\x01" not in comments and b"_x0001_" in comments
    decoded = {re.sub(r"_x([0-9A-F]{4})_", lambda m: chr(int(m.group(1), 16)), "".join(text.itertext()))
               for text in children(ElementTree.fromstring(comments), "text")}
    assert f"Erreur : La valeur « {HOSTILE} » n'est pas un nombre. Corrigez-la." in decoded
    pages = pages_words(to_pdf(data, "corrections-bretagne.xlsx", tmp_path))  # LibreOffice opens it
    assert "<script>alert(1)</script>" in " ".join(w.text for _, _, words in pages for w in words)


def test_the_templates_built_ahead_serve_each_configured_regions_first_rejection(
    original: WorkbookReturn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path)  # Bretagne and Rhône-Alpes, campaign bilan-2013 (year 2013)
    corrections_module._template.cache_clear()
    assert build_templates_ahead(settings, datetime(2014, 5, 2, tzinfo=UTC)) == 2

    def not_again(**_: object) -> BlankTemplate:
        raise AssertionError("a blank template built again")

    monkeypatch.setattr(corrections_module, "blank_template", not_again)
    for code, name in (("53", "Bretagne"), ("82", "Rhône-Alpes")):
        read_back = read(build_corrections(original, region_code=code, region_name=name,
                                           campaign_id="bilan-2013", year=2013))
        assert read_back.region_code == code
    with pytest.raises(AssertionError, match="built again"):  # a region not configured: not built ahead
        build_corrections(original, region_code="11", region_name="Île-de-France", campaign_id="bilan-2013", year=2013)
    corrections_module._template.cache_clear()  # the other tests build their own
