"""parsers.sniff: magic bytes first, then extension, then content type."""

from __future__ import annotations

import io
import zipfile

import docx
import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.sniff import kind_of, ole_stream_names, sniff
from tests.support.paths import CORPUS

SPREADSHEETS = CORPUS / "spreadsheets"
OCTET = "application/octet-stream"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def zip_with(members: dict[str, bytes], *, stored_first: str | None = None) -> bytes:
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", zipfile.ZIP_DEFLATED) as zf:
        if stored_first:
            zf.writestr(stored_first, members.pop(stored_first), compress_type=zipfile.ZIP_STORED)
        for name, data in members.items():
            zf.writestr(name, data)
    return bio.getvalue()


def ole_with(*streams: str, align_pad: int = 0) -> bytes:
    """A fake compound file: the header, then 128-byte directory entries for the given streams."""
    entries = b""
    for name in ("Root Entry", *streams):
        raw = (name.encode("utf-16-le") + b"\x00\x00").ljust(64, b"\x00")
        raw += (len(name) * 2 + 2).to_bytes(2, "little") + (b"\x05" if name == "Root Entry" else b"\x02")
        entries += raw.ljust(128, b"\x00")
    return OLE_MAGIC.ljust(512 + align_pad, b"\x00") + entries


def xlsx_bytes() -> bytes:
    bio = io.BytesIO()
    openpyxl.Workbook().save(bio)
    return bio.getvalue()


def docx_bytes() -> bytes:
    bio = io.BytesIO()
    document = docx.Document()
    document.add_paragraph("Analyse qualitative")
    document.save(bio)
    return bio.getvalue()


@pytest.mark.parametrize("content_type", ["", OCTET, "application/pdf", "text/plain"])
def test_zip_based_office_files_are_recognised_by_content(content_type: str) -> None:
    assert sniff("tableau.xlsx", content_type, xlsx_bytes()) == "xlsx"
    assert sniff(None, content_type, xlsx_bytes()) == "xlsx"
    assert sniff("renommé.pdf", content_type, xlsx_bytes()) == "xlsx"
    assert sniff("analyse.docx", content_type, docx_bytes()) == "docx"
    xlsm = zip_with({"xl/workbook.xml": b"<workbook/>", "xl/vbaProject.bin": b"\x00"})
    assert sniff("tableau.xlsx", content_type, xlsm) == "xlsm"
    assert sniff(None, content_type, zip_with({"xl/workbook.bin": b"\x00"})) == "xlsb"


def test_odf_mimetype_member() -> None:
    ods = zip_with({"mimetype": b"application/vnd.oasis.opendocument.spreadsheet", "content.xml": b"<x/>"},
                   stored_first="mimetype")
    odt = zip_with({"mimetype": b"application/vnd.oasis.opendocument.text", "content.xml": b"<x/>"},
                   stored_first="mimetype")
    assert sniff("bilan.xlsx", OCTET, ods) == "ods"
    assert sniff(None, "", odt) == "odt"


def test_unknown_or_damaged_zip_falls_back_to_name_then_type() -> None:
    plain = zip_with({"readme.txt": b"bonjour"})
    assert sniff("archive.zip", OCTET, plain) == "zip"
    assert sniff("pieces.bin", OCTET, plain) == "zip"
    truncated = xlsx_bytes()[:200]
    assert sniff("tableau.xlsx", OCTET, truncated) == "xlsx"  # the reader will then call it corrupt
    assert sniff(None, "application/vnd.oasis.opendocument.spreadsheet", truncated) == "ods"
    assert sniff("notes.pdf", "", truncated) == "zip"  # a pdf cannot start with PK


def test_ole_compound_files_by_stream_name() -> None:
    assert sniff("bilan.xlsx", OCTET, ole_with("EncryptionInfo", "EncryptedPackage")) == "encrypted_office"
    assert sniff(None, OCTET, ole_with("Workbook", "SummaryInformation")) == "xls"
    assert sniff(None, OCTET, ole_with("Book")) == "xls"  # Excel 5/95
    assert sniff("analyse.xls", OCTET, ole_with("WordDocument", "1Table")) == "doc"
    assert sniff("old.xls", OCTET, ole_with("Something")) == "xls"
    assert sniff(None, OCTET, ole_with("Something")) == "other"
    assert ole_stream_names(ole_with("WORKBOOK")) == {"workbook"}  # names are case-insensitive


def test_ole_names_must_be_real_directory_entries() -> None:
    # "Workbook" as UTF-16 text at an offset that is not a directory entry boundary
    data = OLE_MAGIC.ljust(600, b"\x00") + "Workbook".encode("utf-16-le") + b"\x00\x00" + b"\x00" * 200
    assert ole_stream_names(data) == set()
    assert ole_stream_names(b"not an ole file Workbook") == set()


def test_other_magic_bytes() -> None:
    assert sniff("tableau.xlsx", OCTET, b"%PDF-1.7\n...") == "pdf"
    assert sniff(None, "", b"\r\n%PDF-1.4 junk before") == "pdf"
    assert sniff("analyse.doc", "application/msword", b"{\\rtf1\\ansi Bonjour}") == "rtf"
    assert sniff("export.xls", "application/vnd.ms-excel", b"<html><body><table></table></body></html>") == "html"
    assert sniff(None, "", b"\xef\xbb\xbf<!DOCTYPE html><html>") == "html"


def test_extension_then_content_type_then_text_heuristic() -> None:
    assert sniff("analyse.txt", OCTET, b"Bonjour") == "txt"
    assert sniff("donnees.csv", "text/plain", b"a;b;c") == "other"  # the extension wins over the type
    assert sniff(None, "text/plain; charset=utf-8", b"\x00\x01binary") == "txt"
    assert sniff(None, "TEXT/HTML", b"plain words") == "html"
    assert sniff("sans-extension", "", "Région : Bretagne, résultats".encode()) == "txt"
    assert sniff(None, "", b"\x00\x01\x02\xff" * 10) == "other"
    assert sniff(None, "", b"") == "other"
    assert sniff("tableau.XLSX", "", b"garbage without magic") == "xlsx"


def test_kind_of() -> None:
    for kind in ("xlsx", "xlsm", "xlsb", "xls", "ods", "encrypted_office"):
        assert kind_of(kind) == "workbook"
    for kind in ("docx", "odt", "pdf", "txt", "rtf", "doc", "html"):
        assert kind_of(kind) == "narrative"
    assert kind_of("zip") == "unknown" and kind_of("other") == "unknown"


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.none(), st.text(max_size=30)), st.text(max_size=40), st.binary(max_size=600))
def test_fuzz_always_returns_a_known_kind(filename: str | None, content_type: str, data: bytes) -> None:
    known = {"xlsx", "xlsm", "xlsb", "xls", "ods", "docx", "odt", "pdf", "txt", "html", "rtf", "doc",
             "encrypted_office", "zip", "7z", "rar", "other"}
    assert sniff(filename, content_type, data) in known
    assert sniff(filename, content_type, b"PK\x03\x04" + data) in known
    assert sniff(filename, content_type, OLE_MAGIC + data) in known


@pytest.mark.skipif(not SPREADSHEETS.is_dir(), reason=f"shared robustness corpus absent ({SPREADSHEETS})")
def test_corpus_files_sniff_as_their_extension_even_without_a_name() -> None:
    mismatches = {}
    for path in sorted(SPREADSHEETS.iterdir()):
        ext = path.suffix.lower().lstrip(".")
        if ext not in {"xlsx", "xlsm", "xlsb", "xls", "ods"}:
            continue
        found = sniff(None, OCTET, path.read_bytes())
        if found != ext:
            mismatches[path.name] = found
    # known, legitimate differences: password-protected OOXML files are OLE containers, two ".xlsm"
    # files carry no macros, and one ".xls" is in fact a text file.
    assert mismatches == {
        "pass_protected.xlsx": "encrypted_office",
        "pass_protected.xlsb": "encrypted_office",
        "issue221.xlsm": "xlsx",
        "issue3.xlsm": "xlsx",
        "too_small.xls": "txt",
    }


@pytest.mark.parametrize(("data", "name", "ctype", "expected"), [
    (b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(24), "bilan.pdf", "application/pdf", "7z"),  # bytes first
    (b"Rar!\x1a\x07\x01\x00" + bytes(24), None, OCTET, "rar"),
    (b"Rar!\x1a\x07\x00" + bytes(24), "bilan.xlsx", OCTET, "rar"),
    (b"damaged", "bilan.7z", OCTET, "7z"),  # then the name
    (b"damaged", None, "application/x-rar-compressed", "rar"),  # then the content type
])
def test_7z_and_rar_archives_are_sniffed(data: bytes, name: str | None, ctype: str, expected: str) -> None:
    assert sniff(name, ctype, data) == expected
    assert kind_of(expected) == "unknown"
