"""What kind of file an attachment really is, whatever its name and content type say.

``sniff`` decides by magic bytes first (zip members, OLE stream names, ``%PDF``, ``{\\rtf``,
HTML markup), then by the file name's extension, then by the declared content type: mail clients
often send ``application/octet-stream`` for an .xlsx, and people rename files.

Pure functions over bytes: no I/O beyond reading the given buffer.
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import Literal

from parsers.model import FileKind

Sniffed = Literal[
    "xlsx", "xlsm", "xlsb", "xls", "ods", "docx", "odt", "pdf", "txt", "html", "rtf", "doc",
    "encrypted_office", "zip", "7z", "rar", "other",
]

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
SEVEN_ZIP_MAGIC = b"7z\xbc\xaf\x27\x1c"
RAR_MAGIC = b"Rar!\x1a\x07"  # RAR 4 (then \x00) and RAR 5 (then \x01\x00)
ARCHIVE_KINDS = frozenset({"zip", "7z", "rar"})  # archives of files (expanded, or refused with a message)

_WORKBOOK_KINDS = frozenset({"xlsx", "xlsm", "xlsb", "xls", "ods", "encrypted_office"})
_NARRATIVE_KINDS = frozenset({"docx", "odt", "pdf", "txt", "rtf", "doc", "html"})
_ZIP_BASED = frozenset({"xlsx", "xlsm", "xlsb", "ods", "docx", "odt", "zip"})
_OLE_BASED = frozenset({"xls", "doc", "encrypted_office"})

_EXTENSIONS: dict[str, Sniffed] = {
    "xlsx": "xlsx", "xltx": "xlsx", "xlsm": "xlsm", "xltm": "xlsm", "xlsb": "xlsb",
    "xls": "xls", "xlt": "xls", "ods": "ods", "ots": "ods", "fods": "other",
    "docx": "docx", "dotx": "docx", "docm": "docx", "odt": "odt", "ott": "odt",
    "pdf": "pdf", "txt": "txt", "text": "txt", "md": "txt", "htm": "html", "html": "html",
    "rtf": "rtf", "doc": "doc", "dot": "doc", "zip": "zip", "7z": "7z", "rar": "rar",
}

_CONTENT_TYPES: dict[str, Sniffed] = {
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.template": "xlsx",
    "application/vnd.ms-excel.sheet.macroenabled.12": "xlsm",
    "application/vnd.ms-excel.template.macroenabled.12": "xlsm",
    "application/vnd.ms-excel.sheet.binary.macroenabled.12": "xlsb",
    "application/vnd.ms-excel": "xls",
    "application/msexcel": "xls",
    "application/x-msexcel": "xls",
    "application/x-excel": "xls",
    "application/vnd.oasis.opendocument.spreadsheet": "ods",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.oasis.opendocument.text": "odt",
    "application/pdf": "pdf",
    "application/x-pdf": "pdf",
    "text/plain": "txt",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/rtf": "rtf",
    "text/rtf": "rtf",
    "application/msword": "doc",
    "application/zip": "zip",
    "application/x-zip-compressed": "zip",
    "application/x-7z-compressed": "7z",
    "application/vnd.rar": "rar",
    "application/x-rar-compressed": "rar",
    "application/x-rar": "rar",
}

_ODF_MIMETYPES: dict[str, Sniffed] = {
    "application/vnd.oasis.opendocument.spreadsheet": "ods",
    "application/vnd.oasis.opendocument.spreadsheet-template": "ods",
    "application/vnd.oasis.opendocument.text": "odt",
    "application/vnd.oasis.opendocument.text-template": "odt",
}


def sniff(filename: str | None, content_type: str, data: bytes) -> Sniffed:
    """The kind of file ``data`` holds; see the module docstring for the order of evidence."""
    by_ext = _by_extension(filename)
    by_type = _CONTENT_TYPES.get(content_type.split(";")[0].strip().lower())
    head = data[:8]
    if head.startswith(_ZIP_MAGICS):
        found = _sniff_zip(data)
        if found != "zip":
            return found
        for guess in (by_ext, by_type):
            if guess in _ZIP_BASED:
                return guess
        return "zip"
    if head.startswith(SEVEN_ZIP_MAGIC):
        return "7z"
    if head.startswith(RAR_MAGIC):
        return "rar"
    if head == OLE_MAGIC:
        streams = ole_stream_names(data)
        if "encryptedpackage" in streams:
            return "encrypted_office"
        if "workbook" in streams or "book" in streams:
            return "xls"
        if "worddocument" in streams:
            return "doc"
        for guess in (by_ext, by_type):
            if guess in _OLE_BASED:
                return guess
        return "other"
    start = data[:1024]
    if b"%PDF-" in start:
        return "pdf"
    stripped = start.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"{\\rtf"):
        return "rtf"
    lowered = stripped[:512].lower()
    if lowered.startswith((b"<!doctype html", b"<html")) or b"<html" in lowered:
        return "html"
    if by_ext is not None:
        return by_ext
    if by_type is not None:
        return by_type
    return "txt" if _looks_like_text(data[:4096]) else "other"


def kind_of(sniffed: str) -> FileKind:
    """Whether a sniffed kind can carry the Annexe 2 table, the narrative, or neither."""
    if sniffed in _WORKBOOK_KINDS:
        return "workbook"
    if sniffed in _NARRATIVE_KINDS:
        return "narrative"
    return "unknown"


def _by_extension(filename: str | None) -> Sniffed | None:
    if not filename or "." not in filename:
        return None
    ext = filename.strip().rsplit(".", 1)[1].lower()
    return _EXTENSIONS.get(ext, "other")


def _sniff_zip(data: bytes) -> Sniffed:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = {n.replace("\\", "/").lower(): n for n in zf.namelist()}
            if "xl/workbook.xml" in names:
                return "xlsm" if "xl/vbaproject.bin" in names else "xlsx"
            if "xl/workbook.bin" in names:
                return "xlsb"
            if "word/document.xml" in names:
                return "docx"
            if "mimetype" in names:
                with zf.open(names["mimetype"]) as fh:
                    mimetype = fh.read(200).decode("ascii", "replace").strip()
                return _ODF_MIMETYPES.get(mimetype, "zip")
            # Office documents whose main part is not at the usual place (strict ISO paths...).
            if "[content_types].xml" in names:
                with zf.open(names["[content_types].xml"]) as fh:
                    types = fh.read(200_000).lower()
                if b"spreadsheetml.sheet.main" in types or b"sheet.macroenabled.main" in types:
                    return "xlsm" if b"macroenabled" in types else "xlsx"
                if b"wordprocessingml.document.main" in types:
                    return "docx"
    except Exception:  # any damaged archive: let the extension or content type decide
        return "zip"
    return "zip"


def _ole_name_pattern(name: str) -> re.Pattern[bytes]:
    return re.compile(re.escape(name.encode("utf-16-le") + b"\x00\x00"), re.IGNORECASE)


_OLE_NAMES = ("EncryptedPackage", "Workbook", "Book", "WordDocument")
_OLE_PATTERNS = tuple((name.lower(), _ole_name_pattern(name)) for name in _OLE_NAMES)


def ole_stream_names(data: bytes) -> set[str]:
    """The (lower-case) names, among a few of interest, of the streams of an OLE compound file.

    Directory entries are 128 bytes long and always start at a multiple of 128 from the start of
    the file; an entry holds its UTF-16 name, the name's byte length (terminator included) at
    offset 64 and the entry type (1 storage, 2 stream) at offset 66. Matching only well-formed
    entries avoids mistaking document text for a stream name.
    """
    found: set[str] = set()
    if not data.startswith(OLE_MAGIC):
        return found
    for lname, pattern in _OLE_PATTERNS:
        expected_len = (len(lname) + 1) * 2
        for match in pattern.finditer(data, 512):
            pos = match.start()
            if pos % 128 or pos + 67 > len(data):
                continue
            if int.from_bytes(data[pos + 64:pos + 66], "little") == expected_len and data[pos + 66] in (1, 2):
                found.add(lname)
                break
    return found


def _looks_like_text(sample: bytes) -> bool:
    if not sample or b"\x00" in sample:
        return False
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError:
        # a cut multi-byte sequence at the end of the sample, or a legacy 8-bit encoding
        text = sample.decode("latin-1")
    printable = sum(1 for ch in text if ch.isprintable() or ch in "\r\n\t")
    return printable / len(text) > 0.95
