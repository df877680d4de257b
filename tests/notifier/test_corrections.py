"""notifier.corrections: the annotated workbook read back by our reader, by openpyxl and by LibreOffice."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from notifier.corrections import (
    ERROR_COLOUR,
    ISSUES_SHEET,
    WARNING_COLOUR,
    build_corrections,
    corrections_name,
    split_message,
)
from notifier.template_workbook import MAIN_SHEET
from parsers.model import WorkbookReturn
from parsers.reference.catalogue import indicators_by_id
from parsers.workbook.check import check_workbook
from tests.factories.workbooks import Formula, document_layout, good_workbook, hand_made_layout
from tests.support.office import pages_words, to_pdf

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
