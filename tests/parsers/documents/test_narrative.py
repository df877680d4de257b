"""parsers.narrative: text out of documents, points and conventions found, e-mail bodies judged."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers.documents.narrative import analyse_narrative, looks_like_narrative
from parsers.documents.reader import extract_text
from parsers.model import UnreadableFile
from parsers.reference.catalogue import CONVENTIONS, NARRATIVE_POINTS, narrative_point
from tests.factories.documents import (
    ALL_POINTS,
    blocks_to_text,
    docx_bytes,
    html_bytes,
    narrative_blocks,
    narrative_text,
    odt_bytes,
    pdf_bytes,
    rtf_bytes,
    txt_bytes,
)

ALL_CONVENTIONS = tuple(c.id for c in CONVENTIONS)


# --------------------------------------------------------------------------- points


@pytest.mark.parametrize("point", ALL_POINTS)
def test_each_point_is_found_from_its_prose_alone(point: str) -> None:
    report = analyse_narrative(narrative_text(points=(point,), headings=False), "analyse.docx")
    assert report.points_covered == (point,)
    assert len(report.points_missing) == 5
    missing_titles = {i.message for i in report.issues}
    assert all(i.code == "narrative_point_missing" and i.severity == "warning" for i in report.issues)
    assert all(i.file == "analyse.docx" for i in report.issues)
    for other in report.points_missing:
        assert any(narrative_point(other).title in m for m in missing_titles)


def test_complete_narrative_has_no_issue() -> None:
    report = analyse_narrative(narrative_text(), "corps du message")
    assert report.points_covered == ALL_POINTS
    assert report.points_missing == ()
    assert report.issues == ()
    assert len(report.sha256) == 64


def test_missing_points_are_reported_in_order() -> None:
    report = analyse_narrative(narrative_text(points=("P1", "P4", "P6")), "bilan.odt")
    assert report.points_covered == ("P1", "P4", "P6")
    assert report.points_missing == ("P2", "P3", "P5")
    assert [i.code for i in report.issues] == ["narrative_point_missing"] * 3
    assert "Articulation entre le niveau régional et le niveau départemental" in report.issues[1].message


def test_short_numbered_headings_are_enough() -> None:
    text = (
        "Région Centre – bilan 2013\n\n"
        "1) Gouvernance\nPrésentation au pré-CAR de janvier.\n\n"
        "2) Appropriation par les services\nBonne dans l'ensemble.\n\n"
        "3) Articulation région / départements\nRéunions mensuelles.\n\n"
        "4) Suivi :\nTableur partagé.\n\n"
        "5) Actions\nVoir le tableau joint.\n\n"
        "6) Difficultés :\nNéant.\n"
    )
    assert analyse_narrative(text, "x").points_covered == ALL_POINTS


def test_notice_wording_used_as_bullet_headings() -> None:
    text = "\n".join(f"- {p.title} :\nÀ compléter ultérieurement." for p in NARRATIVE_POINTS)
    assert analyse_narrative(text, "x").points_covered == ALL_POINTS


def test_a_vague_text_covers_nothing() -> None:
    text = ("Les services de la préfecture ont pris connaissance de l'instruction et transmettent "
            "les éléments disponibles à ce jour. Le contexte local est marqué par les élections municipales.")
    report = analyse_narrative(text, "x")
    assert report.points_covered == ()
    assert len(report.issues) == 6


@pytest.mark.parametrize("text", ["", "   \n\t ", "..."])
def test_empty_text_gives_narrative_empty(text: str) -> None:
    report = analyse_narrative(text, "scan.pdf")
    assert [i.code for i in report.issues] == ["narrative_empty"]
    assert report.issues[0].file == "scan.pdf"
    assert report.points_missing == ALL_POINTS


# --------------------------------------------------------------------------- conventions


@pytest.mark.parametrize("convention", ALL_CONVENTIONS)
def test_each_convention_is_recognised(convention: str) -> None:
    text = narrative_text(points=(), conventions=(convention,))
    assert analyse_narrative(text, "x").conventions == (convention,)


def test_all_conventions_in_catalogue_order() -> None:
    assert analyse_narrative(narrative_text(conventions=ALL_CONVENTIONS[::-1]), "x").conventions == ALL_CONVENTIONS


def test_short_keywords_do_not_match_inside_words_or_lower_case() -> None:
    text = ("Il faut agir vite car le processus est succinct ; cette promesse a été tenue, "
            "les arsenaux et les cafés sont hors sujet. Les démarches accessibles aux personnes "
            "ont été présentées par le ministère.")
    report = analyse_narrative(text, "x")
    assert "P1" not in report.points_covered  # "car" is not the CAR
    assert report.conventions == ()  # no ESS, CCI, ARS, CAF


def test_acronyms_match_as_whole_words() -> None:
    text = "Le CAR du 3 mars a examiné les conventions. L'ESS et les SCOP ont été présentées à la CCI et à l'ARS."
    report = analyse_narrative(text, "x")
    assert "P1" in report.points_covered
    assert set(report.conventions) >= {"economie-sociale-solidaire", "artisanat-commerce-tourisme"}


# --------------------------------------------------------------------------- documents

BLOCKS = narrative_blocks(conventions=("transports", "culture-communication"), table=True)


@pytest.mark.parametrize(
    ("kind", "build"),
    [("docx", docx_bytes), ("odt", odt_bytes), ("pdf", pdf_bytes), ("html", html_bytes), ("rtf", rtf_bytes)],
)
def test_document_formats(kind: str, build: object) -> None:
    assert callable(build)
    text = extract_text(build(BLOCKS), kind)
    assert "Difficultés rencontrées" in text
    assert "Modalités de mise en" in text
    assert "Convention | Observation" in text  # the table, row by row
    report = analyse_narrative(text, f"analyse.{kind}")
    assert report.points_covered == ALL_POINTS
    # the standard P5 paragraph cites Pôle emploi, emplois d'avenir and the service civique
    assert report.conventions == ("sports-jeunesse", "travail-emploi", "transports", "culture-communication")


def test_docx_keeps_paragraphs_and_tables_in_order() -> None:
    text = extract_text(docx_bytes(BLOCKS), "docx")
    assert text.index("6. Difficultés rencontrées") < text.index("Convention | Observation")
    assert text.index("1. Modalités") < text.index("6. Difficultés")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "cp1252"])
def test_txt_encodings(encoding: str) -> None:
    text = blocks_to_text(BLOCKS)
    extracted = extract_text(txt_bytes(text, encoding), "txt")
    assert "Difficultés rencontrées" in extracted
    assert "œuvre" in extracted


def test_html_drops_scripts_and_styles() -> None:
    text = extract_text(html_bytes(BLOCKS, charset="windows-1252"), "html")
    assert "var x" not in text and "margin" not in text
    assert "Difficultés rencontrées" in text


def test_rtf_unicode_escapes_and_destinations() -> None:
    rtf = rb"{\rtf1\ansi\ansicpg1252{\fonttbl{\f0 Arial;}}{\*\generator Foo}\uc1 Mise en \u339?uvre \'e9t\'e9\par Fin}"
    assert extract_text(rtf, "rtf") == "Mise en œuvre été\nFin"


def test_encrypted_pdf_is_reported_as_such() -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(text="Analyse qualitative")
    pdf.set_encryption(owner_password="proprietaire", user_password="secret")
    with pytest.raises(UnreadableFile) as caught:
        extract_text(bytes(pdf.output()), "pdf")
    assert caught.value.reason == "encrypted"


def test_pdf_with_owner_password_only_is_read() -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(text="Analyse qualitative")
    pdf.set_encryption(owner_password="proprietaire")
    assert extract_text(bytes(pdf.output()), "pdf") == "Analyse qualitative"


@pytest.mark.parametrize(
    ("data", "kind", "reason"),
    [
        (b"not a zip", "docx", "corrupt"),
        (b"PK\x03\x04garbage", "odt", "corrupt"),
        (b"%PDF-1.4 truncated", "pdf", "corrupt"),
        (b"plain text", "rtf", "corrupt"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "docx", "unsupported"),
        (b"\xd0\xcf\x11\xe0" + "EncryptedPackage".encode("utf-16-le"), "docx", "encrypted"),
        (b"x", "xls", "unsupported"),
    ],
)
def test_unreadable_files(data: bytes, kind: str, reason: str) -> None:
    with pytest.raises(UnreadableFile) as caught:
        extract_text(data, kind)
    assert caught.value.reason == reason


def test_docx_with_a_table_only_gives_its_text() -> None:
    blocks = narrative_blocks(points=(), conventions=("justice",), table=True)[3:]
    assert extract_text(docx_bytes(blocks), "docx").startswith("Convention | Observation\njustice | Le parquet")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600), st.sampled_from(["txt", "docx", "odt", "pdf", "html", "rtf"]))
def test_fuzz_only_unreadable_file_escapes(data: bytes, kind: str) -> None:
    prefix = {"pdf": b"%PDF-1.4\n", "rtf": b"{\\rtf1 ", "docx": b"PK\x03\x04", "odt": b"PK\x03\x04"}.get(kind, b"")
    try:
        text = extract_text(prefix + data, kind)
    except UnreadableFile:
        return
    analyse_narrative(text, "fuzz")


# --------------------------------------------------------------------------- e-mail bodies

COVER_NOTE = (
    "Bonjour,\n\nVeuillez trouver ci-joint le bilan 2013 des conventions interministérielles pour la "
    "région Bretagne : le tableau de bord (annexe 2) et l'analyse qualitative.\n\n"
    "Je reste à votre disposition pour tout complément.\n\nBien cordialement,\n\n"
)
SIGNATURE = (
    "Marie Le Goff\nChargée de mission politique de la ville – pilotage et suivi des conventions\n"
    "Secrétariat général pour les affaires régionales (SGAR) – articulation des politiques régionales et "
    "départementales, appropriation des dispositifs, difficultés d'accès au droit\n"
    "Préfecture de la région Bretagne\n3 avenue de la Préfecture – 35026 Rennes cedex 9\nTél. 02 99 02 10 10"
)


def test_cover_note_is_not_the_narrative() -> None:
    assert not looks_like_narrative(COVER_NOTE + SIGNATURE)


def test_long_signature_does_not_make_a_cover_note_a_narrative() -> None:
    assert not looks_like_narrative(COVER_NOTE + SIGNATURE + "\n" + SIGNATURE)


def test_quoted_thread_does_not_make_a_cover_note_a_narrative() -> None:
    quoted = "\n".join("> " + line for line in narrative_text().splitlines())
    body = COVER_NOTE + SIGNATURE + "\n\nLe 12/05/2014 à 10:03, Conventions a écrit :\n" + quoted
    assert not looks_like_narrative(body)
    outlook = (COVER_NOTE + "\nDe : DDCS 35\nEnvoyé : lundi 12 mai 2014 10:03\nÀ : SGAR\nObjet : bilan\n\n"
               + narrative_text())
    assert not looks_like_narrative(outlook)


def test_narrative_in_the_body_is_recognised() -> None:
    body = "Bonjour,\n\n" + narrative_text(headings=False) + "\n\nCordialement,\n\n" + SIGNATURE
    assert looks_like_narrative(body)


def test_analyse_qualitative_heading_with_enough_text() -> None:
    body = ("Bonjour,\n\nAnalyse qualitative\n\n" + narrative_text(points=("P6",), headings=False)
            + " La collecte a pris du retard dans trois départements, ce qui explique les cases vides du "
              "tableau. Les services ont néanmoins transmis leurs premières données et une réunion est prévue "
              "en juin pour compléter le bilan avec l'ensemble des partenaires.")
    assert looks_like_narrative(body)
    assert not looks_like_narrative("Bonjour,\n\nAnalyse qualitative\n\nÀ venir.\n")
