"""Printing: the template, the annotated workbook and the national export, as LibreOffice prints
them to PDF: landscape pages, headers repeated, texts whole and never drawn over each other."""

from __future__ import annotations

import io
import re
from pathlib import Path

import openpyxl
import pytest

from intake.pipeline.services import Services
from notifier.corrections import build_corrections
from notifier.export import consolidate, to_xlsx
from notifier.template_workbook import MAIN_SHEET, build_template
from parsers.reference import catalogue
from parsers.workbook.check import check_workbook
from tests.factories.workbooks import good_workbook
from tests.support.consolidation import NOW, build_campaign, consolidation_services
from tests.support.office import Word, overlapping, pages_words, to_pdf

LEGIBLE = 5.0  # points: the smallest type on paper (the objectives' context columns)


def blank() -> bytes:
    return build_template(region_code="53", region_name="Bretagne", campaign_id="bilan-2013", year=2013)


def check_pages(pages: list[tuple[float, float, list[Word]]]) -> None:
    for number, (width, height, words) in enumerate(pages, start=1):
        assert width > height, f"page {number} is not landscape"
        assert not overlapping(words), f"page {number}: {overlapping(words)[:3]}"
        assert min(w.size for w in words) >= LEGIBLE, f"page {number}: type too small"


def test_page_setup_of_the_template() -> None:
    book = openpyxl.load_workbook(io.BytesIO(blank()))
    main = book[MAIN_SHEET]
    setup = main.page_setup
    assert (setup.orientation, setup.fitToWidth, setup.fitToHeight) == ("landscape", 1, 0)
    assert main.sheet_properties.pageSetUpPr.fitToPage
    assert main.print_title_rows == "$1:$4"
    assert main.print_area == f"'{MAIN_SHEET}'!$A$1:$I$36"
    for row in range(5, 37):  # every indicator row has a height, set from its wrapped texts
        assert main.row_dimensions[row].height >= 12
    assert main.row_dimensions[9].height > main.row_dimensions[5].height  # I05's long objective


def test_blank_template_prints_on_three_landscape_pages_at_most(tmp_path: Path) -> None:
    pages = pages_words(to_pdf(blank(), "tableau-de-bord.xlsx", tmp_path))
    assert 2 <= len(pages) <= 3
    check_pages(pages)
    table = [words for _, _, words in pages if any(w.text == "Indicateur" for w in words)]
    assert len(table) == len(pages) - 1  # the header row is repeated on every page of the table; then the notice
    texts = " ".join(w.text for _, _, words in pages for w in words)
    assert "Nombre de place de crèches nouvelles créées" in texts  # I16's label, drawn whole on one line


def test_annotated_workbook_prints_whole(tmp_path: Path) -> None:
    observations = {"I07": "Une observation assez longue pour tenir sur plusieurs lignes de la colonne : "
                           "la cible régionale est atteinte, malgré des difficultés de collecte. " * 2}
    original = check_workbook(good_workbook(values={"I09": "quatre"}, observations=observations), "bilan.xlsx",
                              year=2013, expected_region="53")
    data = build_corrections(original, region_code="53", region_name="Bretagne", campaign_id="bilan-2013",
                             year=2013)
    pages = pages_words(to_pdf(data, "corrections-bretagne.xlsx", tmp_path))
    check_pages(pages)
    assert len(pages) <= 5


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_national_export_keeps_labels_beside_values_on_every_page(tmp_path: Path, db_url: str) -> None:
    services: Services = consolidation_services(tmp_path, db_url)
    build_campaign(services)
    with services.sessions() as session:
        c = consolidate(session, services.settings, services.settings.campaign("bilan-2013"), NOW)
    data = to_xlsx(c)
    book = openpyxl.load_workbook(io.BytesIO(data))
    summary = book["Synthèse nationale"]
    assert summary.freeze_panes == "F7"
    assert (summary.print_title_rows, summary.print_title_cols) == ("$4:$6", "$A:$C")
    assert summary.page_setup.orientation == "landscape"
    for name in ("Dossiers", "Notes"):
        assert book[name].page_setup.orientation == "landscape" and book[name].print_title_rows == "$1:$1"
    pages = pages_words(to_pdf(data, "export.xlsx", tmp_path))
    check_pages(pages)
    # every page with regions' figures carries the indicators' labels beside them, and the header
    with_regions = [words for _, _, words in pages if any(w.text.endswith("– valeur") for w in words)]
    assert len(with_regions) > 1
    labels = {ind.label for ind in catalogue.indicators()}
    for words in with_regions:
        texts = [w.text for w in words]
        assert "Indicateur" in texts and "Tableau retenu (dernier accepté)" in texts
        assert any(re.fullmatch(r"I\d\d", t) for t in texts)  # the N° column
        assert any(any(label.startswith(t) for label in labels) for t in texts if len(t) > 12)  # and the labels
