"""parsers.mail.archives: a .zip's files become attachments; every hostile archive gets a verdict."""

from __future__ import annotations

import tracemalloc
import unicodedata
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers.mail.archives import ARCHIVE_CODES, ArchiveLimits, Expanded, expand_archive, safe_parts
from parsers.model import Attachment
from tests.factories import archives
from tests.factories.archives import RAR5, SEVEN_ZIP, zip_of
from tests.factories.documents import docx_bytes, narrative_blocks
from tests.factories.workbooks import good_workbook

LIMITS = ArchiveLimits()
OCTET = "application/octet-stream"
ZIP = "application/zip"


def expand(data: bytes, name: str | None = "bilan.zip", ctype: str = ZIP,
           limits: ArchiveLimits = LIMITS) -> Expanded:
    expanded = expand_archive(Attachment(name, ctype, data), limits)
    assert expanded is not None
    return expanded


def only_code(expanded: Expanded) -> str:
    [issue] = expanded.issues
    assert issue.code in ARCHIVE_CODES | {"attachment_too_large"}
    assert issue.message and "?" not in issue.message  # every field of the French message filled
    return issue.code


def test_the_files_of_a_zip_become_attachments_named_after_it() -> None:
    workbook, narrative = good_workbook(), docx_bytes(narrative_blocks())
    data = zip_of([("tableau.xlsx", workbook), ("Bilan 2013/Analyse qualitative.docx", narrative)])
    expanded = expand(data)
    assert expanded.issues == ()
    assert [(a.filename, a.data) for a in expanded.attachments] == [
        ("bilan.zip › tableau.xlsx", workbook), ("bilan.zip › Analyse qualitative.docx", narrative)]


def test_not_an_archive_is_left_alone() -> None:
    assert expand_archive(Attachment("tableau.xlsx", OCTET, good_workbook()), LIMITS) is None
    assert expand_archive(Attachment("note.txt", "text/plain", b"Bonjour"), LIMITS) is None


def test_a_zip_is_known_by_its_bytes_whatever_its_name() -> None:
    expanded = expand(zip_of([("tableau.xlsx", good_workbook())]), name="envoi.dat", ctype=OCTET)
    assert [a.filename for a in expanded.attachments] == ["envoi.dat › tableau.xlsx"]


@pytest.mark.parametrize("names", ["utf-8", "utf-8-raw", "cp850", "unicode-extra"])
def test_names_are_decoded_as_the_archiving_tool_wrote_them(names: archives.Names) -> None:
    data = zip_of([("Données/Synthèse régionale.xlsx", b"x"), ("Réponse à l'instruction.docx", b"y")], names=names)
    assert [a.filename for a in expand(data).attachments] == [
        "bilan.zip › Synthèse régionale.xlsx", "bilan.zip › Réponse à l'instruction.docx"]


def test_decomposed_accents_from_macos_are_composed() -> None:
    data = zip_of([(unicodedata.normalize("NFD", "Synthèse régionale.xlsx"), b"x")], names="utf-8-raw")
    [attachment] = expand(data).attachments
    assert attachment.filename == "bilan.zip › Synthèse régionale.xlsx"


def test_two_files_of_the_same_name_keep_their_folders() -> None:
    data = zip_of([("2013/tableau.xlsx", b"a"), ("2014/tableau.xlsx", b"b"), ("note.txt", b"c")])
    assert [a.filename for a in expand(data).attachments] == [
        "bilan.zip › 2013/tableau.xlsx", "bilan.zip › 2014/tableau.xlsx", "bilan.zip › note.txt"]


def test_folders_and_file_managers_furniture_are_skipped() -> None:
    data = zip_of([("Bilan/", b""), ("Bilan/tableau.xlsx", b"x"), ("__MACOSX/Bilan/._tableau.xlsx", b"junk"),
                   ("Bilan/.DS_Store", b"junk"), ("Bilan/Thumbs.db", b"junk"), ("._note.txt", b"junk")])
    assert [a.filename for a in expand(data).attachments] == ["bilan.zip › tableau.xlsx"]


@pytest.mark.parametrize("name", ["../../etc/tableau.xlsx", "/var/mail/tableau.xlsx", "C:\\Users\\a\\tableau.xlsx",
                                  "./../tableau.xlsx", "..\\..\\tableau.xlsx"])
def test_path_traversal_names_are_reduced_to_safe_components(name: str) -> None:
    [attachment] = expand(zip_of([(name, b"x")])).attachments
    assert attachment.filename == "bilan.zip › tableau.xlsx"
    assert ".." not in safe_parts(name) and all(":" not in p and "/" not in p for p in safe_parts(name))


def test_a_zero_byte_file_inside_is_passed_on_as_it_is() -> None:
    [attachment] = expand(zip_of([("vide.xlsx", b"")])).attachments
    assert (attachment.filename, attachment.data) == ("bilan.zip › vide.xlsx", b"")


def test_images_inside_keep_an_image_type() -> None:
    types = {a.filename: a.content_type for a in expand(zip_of([("logo.PNG", b"x"), ("a.pdf", b"y")])).attachments}
    assert types == {"bilan.zip › logo.PNG": "image/png", "bilan.zip › a.pdf": OCTET}


def test_forwarded_archive_gives_forwarded_files() -> None:
    expanded = expand_archive(Attachment("bilan.zip", ZIP, zip_of([("a.txt", b"x")]), forwarded=True), LIMITS)
    assert expanded is not None and [a.forwarded for a in expanded.attachments] == [True]


# --------------------------------------------------------------------------- hostile archives


def test_a_compression_bomb_is_refused_before_it_is_inflated() -> None:
    expanded = expand(archives.bomb_zip(expanded_mb=8))
    assert only_code(expanded) == "archive_too_large" and expanded.attachments == ()
    assert "compressé plus de 200 fois" in expanded.issues[0].message


def test_too_many_files_refuse_the_archive() -> None:
    expanded = expand(archives.many_files_zip(LIMITS.max_members + 1))
    assert only_code(expanded) == "archive_too_large" and expanded.attachments == ()
    assert f"contient {LIMITS.max_members + 1} fichiers" in expanded.issues[0].message
    assert expand(archives.many_files_zip(LIMITS.max_members)).issues == ()


def test_too_much_in_all_refuses_the_archive() -> None:
    data = zip_of([("a.txt", b"a" * 600), ("b.txt", b"b" * 600)])
    expanded = expand(data, limits=ArchiveLimits(max_total_uncompressed=1000))
    assert only_code(expanded) == "archive_too_large"
    assert "une fois décompressée" in expanded.issues[0].message


def test_one_file_too_large_is_named_and_the_others_read() -> None:
    data = zip_of([("tableau.xlsx", good_workbook()), ("scan.pdf", b"%PDF-1.4" + bytes(1000))])
    expanded = expand(data, limits=ArchiveLimits(max_member_bytes=4000))
    [issue] = expanded.issues
    assert (issue.code, issue.file, issue.severity) == ("attachment_too_large", "bilan.zip › tableau.xlsx", "error")
    assert [a.filename for a in expanded.attachments] == ["bilan.zip › scan.pdf"]
    [pdf_issue] = expand(zip_of([("scan.pdf", b"%PDF-1.4" + bytes(5000))]),
                         limits=ArchiveLimits(max_member_bytes=4000)).issues
    assert pdf_issue.severity == "warning"  # not the table: no reason to reject the return


def test_an_archive_inside_an_archive_is_named_not_opened() -> None:
    inner = zip_of([("tableau.xlsx", good_workbook())])
    expanded = expand(zip_of([("Envoi/tableau.zip", inner), ("note.txt", b"Bonjour")]))
    assert only_code(expanded) == "archive_nested"
    assert "« Envoi/tableau.zip »" in expanded.issues[0].message
    assert [a.filename for a in expanded.attachments] == ["bilan.zip › note.txt"]


@pytest.mark.parametrize("inner", [SEVEN_ZIP, RAR5])
def test_a_7z_or_rar_inside_a_zip_is_nested_too(inner: bytes) -> None:
    assert only_code(expand(zip_of([("pieces.bin", inner)]))) == "archive_nested"


def test_encrypted_files_are_named_in_one_issue() -> None:
    data = zip_of([("tableau.xlsx", b"secret1"), ("analyse.docx", b"secret2"), ("lisez-moi.txt", b"clair")])
    data = archives.with_encrypted_flag(archives.with_encrypted_flag(data, "tableau.xlsx"), "analyse.docx")
    expanded = expand(data)
    assert only_code(expanded) == "archive_encrypted"
    assert "« tableau.xlsx », « analyse.docx »" in expanded.issues[0].message
    assert [a.filename for a in expanded.attachments] == ["bilan.zip › lisez-moi.txt"]


@pytest.mark.parametrize("damage", [
    pytest.param(lambda d: archives.truncated(d), id="truncated"),
    pytest.param(archives.broken_central_directory, id="broken-central-directory"),
    pytest.param(lambda d: b"", id="zero-byte"),
    pytest.param(lambda d: b"PK\x03\x04" + bytes(40), id="only-a-local-header"),
])
def test_a_damaged_archive_is_unreadable(damage: object) -> None:
    assert callable(damage)
    data = damage(zip_of([("tableau.xlsx", good_workbook()), ("analyse.docx", docx_bytes(narrative_blocks()))]))
    expanded = expand(data)
    assert only_code(expanded) == "archive_unreadable" and expanded.attachments == ()


def test_an_empty_archive_says_so() -> None:
    expanded = expand(zip_of([]))
    assert only_code(expanded) == "archive_unreadable" and "vide" in expanded.issues[0].message


def test_a_damaged_file_inside_is_named_and_the_others_read() -> None:
    data = archives.corrupted_member(zip_of([("tableau.xlsx", b"0123456789" * 10), ("note.txt", b"ok")],
                                            compression=zipfile.ZIP_STORED))
    expanded = expand(data)
    assert only_code(expanded) == "archive_member_unreadable"
    assert expanded.issues[0].file == "bilan.zip › tableau.xlsx"
    assert "n'a pas pu être extrait de l'archive (fichier endommagé" in expanded.issues[0].message
    assert [a.filename for a in expanded.attachments] == ["bilan.zip › note.txt"]


def test_a_member_whose_declared_size_lies_is_never_inflated_past_it() -> None:
    data = archives.lying_size(archives.bomb_zip("tableau.xlsx", expanded_mb=32), "tableau.xlsx", declared=1000)
    tracemalloc.start()
    try:
        expanded = expand(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert only_code(expanded) == "archive_member_unreadable" and expanded.attachments == ()
    assert peak < 4 * 1024 * 1024  # zipfile's read() would have inflated the 32 MB at once


@pytest.mark.parametrize("compression", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_bzip2_and_lzma_members_are_not_inflated(compression: int) -> None:
    expanded = expand(zip_of([("tableau.xlsx", b"x" * 100), ("note.txt", b"y")], compression=compression))
    assert [i.code for i in expanded.issues] == ["archive_member_unreadable", "archive_member_unreadable"]
    assert "méthode de compression non prise en charge" in expanded.issues[0].message


@pytest.mark.parametrize(("data", "name", "ctype", "shown"), [
    (SEVEN_ZIP, "bilan.7z", OCTET, "7-Zip (.7z)"),
    (SEVEN_ZIP, "bilan.dat", OCTET, "7-Zip (.7z)"),  # by its bytes
    (RAR5, "bilan.rar", OCTET, "RAR (.rar)"),
    (b"Rar!\x1a\x07\x00" + bytes(20), None, OCTET, "RAR (.rar)"),  # RAR 4, no name
    (b"garbage", "bilan.rar", "application/vnd.rar", "RAR (.rar)"),  # by its name
])
def test_7z_and_rar_ask_for_the_files_or_a_zip(data: bytes, name: str | None, ctype: str, shown: str) -> None:
    expanded = expand(data, name=name, ctype=ctype)
    assert only_code(expanded) == "archive_unsupported"
    assert shown in expanded.issues[0].message and ".zip" in expanded.issues[0].message


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_damage_to_a_zip_gets_a_verdict_never_an_exception(data: st.DataObject) -> None:
    original = bytearray(zip_of([("Bilan/tableau.xlsx", b"tableau " * 50), ("analyse.txt", b"texte " * 50)]))
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(original) - 1))
        original[at] = data.draw(st.integers(0, 255))
    expanded = expand(bytes(original[:data.draw(st.integers(0, len(original)))]))
    assert expanded.attachments or expanded.issues
