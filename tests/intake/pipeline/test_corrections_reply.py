"""The annotated workbook's round trip through the pipeline: attached to the reply, corrected by the
clerk with a spreadsheet program (openpyxl here), sent back as a reply, accepted."""

from __future__ import annotations

import io
from pathlib import Path

import openpyxl
import pytest

from intake.pipeline.services import Services
from notifier.template_workbook import MAIN_SHEET
from tests.factories.documents import docx_bytes, narrative_blocks
from tests.factories.emails import DOCX, XLSX, build_email
from tests.factories.workbooks import document_layout, good_workbook
from tests.support.pipeline import ingest, outbox, parsed
from tests.support.settings import make_services

NAME = "corrections-bretagne.xlsx"


@pytest.fixture
def services(tmp_path: Path, db_url: str) -> Services:
    return make_services(tmp_path, db_url)


def test_rejected_return_gets_its_corrections_and_the_corrected_file_is_accepted(services: Services) -> None:
    narrative = ("Analyse qualitative.docx", docx_bytes(narrative_blocks()), DOCX)
    faulty = good_workbook(values={"I09": "quatre", "I12": -2})
    first = ingest(services, build_email(attachments=[("Bilan 2013 - Bretagne.xlsx", faulty, XLSX), narrative]))
    assert first.outcome == "rejected" and first.reply is not None
    [(name, data, ctype)] = first.reply.attachments
    assert (name, ctype) == (NAME, XLSX)
    # the text names it and says what to do with it, in both parts
    text = " ".join(first.reply.text.split())  # as read, whatever the line breaks
    assert f"Le fichier « {NAME} » joint à ce message reprend votre tableau" in text
    assert "Corrigez ce fichier et renvoyez-le en réponse à ce message." in text
    assert f"<strong>« {NAME} »</strong>" in first.reply.html
    # the queued mail carries it
    [item] = outbox(services)
    attached = {part.get_filename(): part.get_content() for part in parsed(item.raw).iter_attachments()}
    assert attached[NAME] == data

    book = openpyxl.load_workbook(io.BytesIO(data))
    main = book[MAIN_SHEET]
    red = [c for row in main.iter_rows() for c in row if c.comment is not None]
    assert sorted(c.coordinate for c in red) == ["G13", "G16"]  # I09 and I12 in our layout
    main["G13"], main["G16"] = 4, 3
    buffer = io.BytesIO()
    book.save(buffer)

    second = ingest(services, build_email(subject="RE: Bilan 2013 – à corriger",
                                          attachments=[(NAME, buffer.getvalue(), XLSX)]))
    assert second.outcome == "accepted", second.issues
    assert second.dossier == "complete"
    assert second.reply is not None and second.reply.attachments == ()  # nothing left to correct
    assert "reprend votre tableau" not in second.reply.text


def test_accepted_return_with_warnings_gets_its_corrections_too(services: Services) -> None:
    workbook = good_workbook(observations={"I10": ""})
    result = ingest(services, build_email(attachments=[("bilan.xlsx", workbook, XLSX)]))
    assert result.outcome == "accepted" and result.reply is not None
    assert [a[0] for a in result.reply.attachments] == [NAME]
    assert "Si vous modifiez une valeur, corrigez ce fichier" in " ".join(result.reply.text.split())


def test_clean_return_gets_no_attachment(services: Services) -> None:
    clean = good_workbook(layout=document_layout(region_line="Région : {region}"))
    result = ingest(services, build_email(attachments=[("bilan.xlsx", clean, XLSX)]))
    assert result.outcome == "accepted" and not result.issues
    assert result.reply is not None and result.reply.attachments == ()


def test_two_faulty_workbooks_get_one_file_each(services: Services) -> None:
    first, second = good_workbook(values={"I09": "x"}), good_workbook(values={"I12": -1})
    result = ingest(services, build_email(attachments=[("a.xlsx", first, XLSX), ("b.xlsx", second, XLSX)]))
    assert result.reply is not None
    assert [a[0] for a in result.reply.attachments] == [NAME, "corrections-bretagne-2.xlsx"]
    assert f"Les fichiers « {NAME} », « corrections-bretagne-2.xlsx » joints à ce message reprennent" \
        in " ".join(result.reply.text.split())
