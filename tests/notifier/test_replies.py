"""The replies read as a clerk reads them: in French only, never contradicting themselves, rows named
as on the clerk's sheet, the values we read listed. Real messages through the whole pipeline."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from intake.pipeline.journey import Result
from intake.pipeline.services import Services
from parsers.reference import catalogue
from tests.factories import hostile
from tests.factories.documents import Heading, Table, docx_bytes, narrative_blocks, pdf_bytes
from tests.factories.emails import build_email
from tests.factories.workbooks import Formula, build_return, good_workbook
from tests.support.pipeline import LATE, ingest
from tests.support.settings import make_services

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PDF = "application/pdf"
# Internal words of the code that must never reach a French text (case-insensitive, whole words).
ENGLISH = ("corrupt", "encrypted", "not_a_spreadsheet", "too_large", "too_slow", "unsupported", "unknown",
           "sender", "truncated", "error", "warning", "accepted", "rejected", "missing", "complete", "incomplete",
           "workbook", "narrative", "none", "null", "nesting", "deep", "file", "password", "quarantined",
           "forwarded", "answered", "failed", "true", "false", "exceeded", "members", "bytes", "traceback",
           "exception", "tnef", "verdict")
_ENGLISH = re.compile(r"\b(" + "|".join(ENGLISH) + r")\b", re.IGNORECASE)
_SNAKE = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")  # an internal code: not_a_number, out_of_range...
_TAGS = re.compile(r"<[^>]*>")


def table_blocks() -> list[Heading | Table | str]:
    """The Annexe 2 copied into a document: its title, header and rows with figures."""
    rows = tuple((ind.label, "25") for ind in catalogue.local_indicators()[:8])
    return [Heading("Tableau de suivi des conventions interministérielles – Bretagne"),
            Table((("Indicateur", "Résultat régional 2013"), *rows))]


def print_of_the_template() -> list[Heading | Table | str]:
    """The whole template printed to PDF: every row of the table, then its notice and the
    objectives, whose words read like the points of an analysis."""
    rows = tuple((ind.label, "") for ind in catalogue.indicators())
    return [Heading("Tableau de suivi des conventions interministérielles – Bretagne"),
            Table((("Indicateur", "Observations"), *rows)), *narrative_blocks()]


def photo_of_the_table() -> bytes:
    return hostile.PNG + bytes(range(256)) * 100  # a named picture of 25 kB, not a signature logo


def mail(*files: tuple[str, bytes, str], body: str | None = None) -> bytes:
    if body is None:
        return build_email(attachments=list(files))
    return build_email(attachments=list(files), body=body)


SITUATIONS: dict[str, Callable[[], bytes]] = {
    "complete return": lambda: mail(("bilan.xlsx", good_workbook(), XLSX),
                                    ("analyse.docx", docx_bytes(narrative_blocks()), DOCX)),
    "values to correct": lambda: mail(("bilan.xlsx", good_workbook(values={
        "I07": 125, "I08": "beaucoup", "I09": 4.5, "I16": "12 / -5", "I17": Formula("=1/0", "#DIV/0!"),
        "I19": Formula("=SUM(1,2)")}), XLSX)),
    "blank template": lambda: mail(("bilan.xlsx", build_return(), XLSX)),
    "encrypted workbook": lambda: mail(("bilan.xlsx", hostile.encrypted_xlsx(), XLSX)),
    "truncated workbook": lambda: mail(("bilan.xlsx", hostile.truncated_xlsx(), XLSX)),
    "not a spreadsheet": lambda: mail(("bilan.xlsx", b"ceci n'est pas un classeur", XLSX)),
    "zip bomb": lambda: mail(("bilan.xlsx", hostile.zip_bomb_xlsx(50), XLSX)),
    "corrupt document": lambda: mail(("bilan.xlsx", good_workbook(), XLSX), ("analyse.docx", b"PK\x03\x04abc", DOCX)),
    "corrupt winmail.dat": lambda: mail(("winmail.dat", hostile.tnef([("bilan.xlsx", good_workbook())])[:200],
                                         "application/ms-tnef")),
    "table as PDF only": lambda: mail(("tableau.pdf", pdf_bytes(table_blocks()), PDF)),
    "print of the whole template as PDF": lambda: mail(("tableau signé.pdf", pdf_bytes(print_of_the_template()),
                                                        PDF)),
    "table as Word document": lambda: mail(("tableau.docx", docx_bytes(table_blocks()), DOCX)),
    "table as picture": lambda: mail(("tableau.png", photo_of_the_table(), "image/png")),
    "workbook and its PDF print": lambda: mail(("bilan.xlsx", good_workbook(), XLSX),
                                               ("bilan signé.pdf", pdf_bytes(table_blocks()), PDF)),
    "forgotten attachment": lambda: mail(),
    "forgotten attachment, logo in the signature": lambda: mail(("logo-prefecture.png", photo_of_the_table(),
                                                                 "image/png")),
    "unknown sender": lambda: build_email(sender="Jean Dupont <jean.dupont@gmail.example.com>",
                                          attachments=[("bilan.xlsx", good_workbook(), XLSX)]),
    "question": lambda: mail(body="Bonjour,\n\nQuelle est la date limite pour le bilan ?\n\nCordialement"),
}


@pytest.fixture(scope="module")
def replies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    results: dict[str, Result] = {}
    for name, build in SITUATIONS.items():
        folder: Path = tmp_path_factory.mktemp("replies")
        services: Services = make_services(folder, f"sqlite:///{folder / 'replies.sqlite3'}")
        late = name == "values to correct"  # also received late: still never said to be recorded
        results[name] = ingest(services, build(), LATE) if late else ingest(services, build())
    return results


def text_and_html(result: Result) -> tuple[str, str]:
    assert result.reply is not None
    return result.reply.text, result.reply.html


@pytest.mark.parametrize("situation", SITUATIONS)
def test_no_english_word_nor_internal_code_in_a_reply(replies: dict[str, Result], situation: str) -> None:
    text, html = text_and_html(replies[situation])
    shown = _TAGS.sub(" ", html)
    for name, body in (("text", text), ("html", shown)):
        without_addresses = re.sub(r"\S+@\S+|\S+\.(?:xlsx|docx|pdf|png|dat)\b", " ", body)
        assert not _ENGLISH.findall(without_addresses), (situation, name, _ENGLISH.findall(without_addresses))
        assert not _SNAKE.findall(without_addresses), (situation, name, _SNAKE.findall(without_addresses))


def test_a_rejected_message_never_says_it_was_recorded_nor_counts_a_full_table(replies: dict[str, Result]) -> None:
    result = replies["values to correct"]
    assert result.outcome == "rejected"
    text, html = text_and_html(result)
    assert "n'empêchent pas l'enregistrement" not in text and "n'empêchent pas l'enregistrement" not in html
    assert "enregistré comme" not in text and "Votre retour est enregistré" not in text
    assert "renseignés sur 16" not in text
    assert re.search(r"à corriger, \d+ erreurs ; \d+ valeurs lues sur les 16 indicateurs à renseigner", text)


def test_rows_are_named_as_on_the_clerks_sheet_with_the_code_in_brackets(replies: dict[str, Result]) -> None:
    text, html = text_and_html(replies["values to correct"])
    assert "Ligne 9 « Part des postes affectés à la scolarisation" in text and "(I07) : la valeur 125" in text
    assert not re.search(r"(?<!\()\bI0[789]\b(?!\))", text), "a code outside brackets"
    assert "Ligne 9 « Part des postes affectés" in html
    # what we read, numbers as the clerk typed them (French decimal comma), even those refused
    assert re.search(r"\n\s+11\s+Nombre de délégués cohésion police.*« 4,5 »", text)


def test_an_out_of_range_percentage_says_how_to_write_it(replies: dict[str, Result]) -> None:
    text, _ = text_and_html(replies["values to correct"])
    assert "écrivez 25 pour 25 %" in text


@pytest.mark.parametrize("situation", ["table as PDF only", "print of the whole template as PDF",
                                       "table as Word document", "table as picture"])
def test_a_table_in_another_form_asks_for_the_spreadsheet_not_a_forgotten_attachment(
        replies: dict[str, Result], situation: str) -> None:
    result = replies[situation]
    assert result.outcome == "rejected"
    assert {i.code for i in result.issues} == {"table_not_spreadsheet"}
    text, _ = text_and_html(result)
    assert "oubliée" not in text and "Analyse qualitative «" not in text
    assert "le fichier tableur (.xlsx, .ods ou .xls)" in text


def test_a_print_of_the_table_sent_with_it_is_not_taken_for_the_analysis(replies: dict[str, Result]) -> None:
    result = replies["workbook and its PDF print"]
    assert (result.outcome, result.dossier) == ("accepted", "incomplete")
    text, _ = text_and_html(result)
    assert "« bilan signé.pdf » n'a pas été utilisée (c'est une copie du tableau de bord" in text
    assert "Analyse qualitative «" not in text and "Il manque encore : l'analyse qualitative." in text


@pytest.mark.parametrize("situation", ["forgotten attachment", "forgotten attachment, logo in the signature"])
def test_a_forgotten_attachment_is_still_called_so(replies: dict[str, Result], situation: str) -> None:
    text, _ = text_and_html(replies[situation])
    assert "La pièce jointe a peut-être été oubliée" in text


def test_an_unreadable_file_says_why_in_french(replies: dict[str, Result]) -> None:
    assert "protégé par un mot de passe" in text_and_html(replies["encrypted workbook"])[0]
    assert "endommagé ou incomplet" in text_and_html(replies["truncated workbook"])[0]
    assert "document illisible : il est endommagé ou incomplet" in text_and_html(replies["corrupt document"])[0]
    assert "winmail.dat illisible : il est endommagé ou incomplet" in text_and_html(replies["corrupt winmail.dat"])[0]


def test_the_acknowledgement_lists_the_values_read(replies: dict[str, Result]) -> None:
    text, html = text_and_html(replies["complete return"])
    assert "accepté, 16 indicateurs renseignés sur 16" in text
    block = text.split("VALEURS LUES DANS « bilan.xlsx »", 1)[1].split("\n\n", 1)[0].splitlines()
    lines = [line for line in block[2:] if line.strip()]
    assert len(lines) == 16
    assert re.match(r"\s+10\s+Part des postes créés dans les écoles des ZUS/Q.*\s30 %\s+Source : services", lines[1])
    assert any(line.rstrip().count("12 / 5") for line in lines)
    positions = {line.index(" %") for line in lines if " %" in line}
    assert len(positions) == 1, "values are aligned"
    assert re.search(r"<td>10</td><td>Part des postes créés[^<]*\(I08\)</td><td>30 %</td>",
                     re.sub(r"<td [^>]*>", "<td>", html))
