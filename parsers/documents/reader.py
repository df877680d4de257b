"""Text out of a narrative document: txt, docx, odt, pdf, html and rtf bytes into plain text.

``extract_text`` raises :class:`parsers.model.UnreadableFile` when it cannot; docx and odt archives
are checked like workbooks (:mod:`parsers.safezip`) before anything is unpacked, and the time spent
is bounded.
"""

from __future__ import annotations

import io
import re
import time
import zipfile
from collections.abc import Callable
from dataclasses import replace

from parsers.mail.decoding import decode_bytes, html_to_text, tidy_text
from parsers.model import UnreadableFile
from parsers.safezip import CHECK_EVERY, DEFAULT_LIMITS, ReadLimits, check_deadline, check_zip_limits

MAX_PDF_PAGES = 200
MAX_TEXT_CHARS = 2_000_000  # extracted text is cut there
MAX_UNZIPPED = 200 * 1024 * 1024  # docx/odt whose members expand beyond this are refused


# --------------------------------------------------------------------------- extraction


def extract_text(data: bytes, kind: str, *, limits: ReadLimits = DEFAULT_LIMITS) -> str:
    """Plain text of a narrative document. ``kind``: txt, docx, odt, pdf, html or rtf.

    ``limits``: docx/odt archives are checked like workbooks (total uncompressed size, compression
    ratio) before anything is unpacked; ``limits.seconds`` (or ``deadline``) bounds the time spent,
    checked between paragraphs, nodes and pages (``UnreadableFile("too_slow")``).
    """
    kind = kind.lower().lstrip(".")
    kind = {"htm": "html", "text": "txt", "md": "txt", "xhtml": "html"}.get(kind, kind)
    if limits.seconds is not None and limits.deadline is None:
        limits = replace(limits, deadline=time.monotonic() + limits.seconds)
    readers: dict[str, Callable[[bytes, ReadLimits], str]] = {
        "txt": lambda d, _: _txt(d), "docx": _docx, "odt": _odt, "pdf": _pdf,
        "html": lambda d, _: _html(d), "rtf": lambda d, _: _rtf(d)}
    reader = readers.get(kind)
    if reader is None:
        raise UnreadableFile("unsupported", kind)
    try:
        text = reader(data, limits)
    except UnreadableFile:
        raise
    except RecursionError as exc:
        raise UnreadableFile("corrupt", "nesting too deep") from exc
    except Exception as exc:
        raise UnreadableFile("corrupt", f"{type(exc).__name__}: {exc}"[:200]) from exc
    return tidy_text(text)[:MAX_TEXT_CHARS]


def decode_text(data: bytes) -> str:
    """Text file bytes: BOM (UTF-8, UTF-16, UTF-32), then UTF-8, UTF-16 without BOM, cp1252."""
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe\x00\x00", "utf-32-le"),
                       (b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if data.startswith(bom):
            return data[len(bom):].decode(codec, errors="replace")
    sample = data[:4000]
    if len(sample) >= 4 and sample.count(0) > len(sample) // 4:
        odd_zeros = sample[1::2].count(0)
        codec = "utf-16-le" if odd_zeros > sample[0::2].count(0) else "utf-16-be"
        return data.decode(codec, errors="replace")
    return decode_bytes(data)


def _txt(data: bytes) -> str:
    return decode_text(data)


def _check_zip(data: bytes, limits: ReadLimits) -> zipfile.ZipFile:
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        if "EncryptedPackage".encode("utf-16-le") in data:
            raise UnreadableFile("encrypted", "document protégé par mot de passe")
        raise UnreadableFile("unsupported", "ancien format Word (.doc)")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise UnreadableFile("corrupt", "not a zip archive") from exc
    check_zip_limits(archive, limits)
    if sum(info.file_size for info in archive.infolist()) > MAX_UNZIPPED:
        raise UnreadableFile("too_large", "archive expands too much")
    return archive


def _docx(data: bytes, limits: ReadLimits) -> str:
    from docx import Document
    from docx.table import Table

    _check_zip(data, limits)
    check_deadline(limits)
    document = Document(io.BytesIO(data))
    lines: list[str] = []
    for index, block in enumerate(document.iter_inner_content()):
        if not index % CHECK_EVERY:
            check_deadline(limits)
        if isinstance(block, Table):
            lines.extend(_docx_table(block))
        else:
            lines.append(block.text)
    return "\n".join(lines)


def _docx_table(table: object) -> list[str]:
    lines: list[str] = []
    for row in getattr(table, "rows", ()):
        cells: list[str] = []
        for cell in row.cells:
            text = " ".join(cell.text.split())
            if text and (not cells or cells[-1] != text):  # merged cells repeat their text
                cells.append(text)
        if cells:
            lines.append(" | ".join(cells))
    return lines


def _odt(data: bytes, limits: ReadLimits) -> str:
    archive = _check_zip(data, limits)
    try:
        manifest = archive.read("META-INF/manifest.xml")
    except KeyError:
        manifest = b""
    if b"encryption-data" in manifest:
        raise UnreadableFile("encrypted", "document protégé par mot de passe")
    from odf.opendocument import load

    check_deadline(limits)
    document = load(io.BytesIO(data))
    lines: list[str] = []
    _odt_walk(document.text, lines, limits=limits)
    return "\n".join(lines)


_TEXT_NS = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
_TABLE_NS = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"


def _odt_walk(node: object, lines: list[str], depth: int = 0, limits: ReadLimits = DEFAULT_LIMITS) -> None:
    from odf import teletype

    if depth > 100:
        return
    for index, child in enumerate(getattr(node, "childNodes", ())):
        if not index % CHECK_EVERY:
            check_deadline(limits)
        qname = getattr(child, "qname", None)
        if qname in ((_TEXT_NS, "p"), (_TEXT_NS, "h")):
            lines.append(teletype.extractText(child))
        elif qname == (_TABLE_NS, "table-row"):
            cells: list[str] = []
            for cell in getattr(child, "childNodes", ()):
                parts: list[str] = []
                _odt_walk(cell, parts, depth + 1, limits)
                text = " ".join(" ".join(parts).split())
                if text:
                    cells.append(text)
            if cells:
                lines.append(" | ".join(cells))
        else:
            _odt_walk(child, lines, depth + 1, limits)


def _pdf(data: bytes, limits: ReadLimits) -> str:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted:
        try:
            opened = reader.decrypt("")
        except Exception as exc:
            raise UnreadableFile("encrypted", "PDF protégé") from exc
        if not opened:
            raise UnreadableFile("encrypted", "PDF protégé par mot de passe")
    texts: list[str] = []
    for index, page in enumerate(reader.pages):
        if index >= MAX_PDF_PAGES:
            break
        check_deadline(limits)
        try:
            texts.append(page.extract_text() or "")
        except Exception:
            continue  # one bad page does not lose the others
    return "\n\n".join(texts)


_META_CHARSET = re.compile(rb"<meta[^>]+charset=[\"']?([A-Za-z0-9_\-]+)", re.IGNORECASE)


def _html(data: bytes) -> str:
    match = _META_CHARSET.search(data[:4096])
    text = decode_bytes(data, match.group(1).decode("ascii") if match else None)
    return html_to_text(text)


# RTF: groups whose content is not text, and control words that mean a line break.
_RTF_SKIP = frozenset({"fonttbl", "colortbl", "stylesheet", "info", "pict", "object", "header", "footer",
                       "headerl", "headerr", "footerl", "footerr", "listtable", "listoverridetable",
                       "themedata", "colorschememapping", "latentstyles", "datastore", "xmlnstbl",
                       "rsidtbl", "generator", "fldinst", "bkmkstart", "bkmkend", "shp", "nonshppict"})
_RTF_TOKEN = re.compile(r"\\([a-zA-Z]+)(-?\d+)? ?|\\'([0-9a-fA-F]{2})|\\(.)|([{}])|([^\\{}\r\n]+)|[\r\n]+",
                        re.DOTALL)


def _rtf(data: bytes) -> str:
    """Crude RTF to text: skip destinations, decode \\'hh (code page) and \\uN escapes."""
    source = data.decode("latin-1")
    if not source.lstrip().startswith("{\\rtf"):
        raise UnreadableFile("corrupt", "not an RTF document")
    codepage = "cp1252"
    found = re.search(r"\\ansicpg(\d+)", source[:2000])
    if found:
        codepage = f"cp{found.group(1)}"
        try:
            b"".decode(codepage)
        except LookupError:
            codepage = "cp1252"
    out: list[str] = []
    pending = bytearray()
    stack: list[tuple[bool, int]] = []
    skipping, uc_skip, to_skip = False, 1, 0

    def flush() -> None:
        if pending:
            out.append(pending.decode(codepage, errors="replace"))
            pending.clear()

    for m in _RTF_TOKEN.finditer(source):
        word, arg, hexa, symbol, brace, plain = m.groups()
        if brace == "{":
            stack.append((skipping, uc_skip))
        elif brace == "}":
            flush()
            skipping, uc_skip = stack.pop() if stack else (False, 1)
        elif skipping:
            if symbol == "*":
                continue
        elif hexa is not None:
            if to_skip:
                to_skip -= 1
            else:
                pending.append(int(hexa, 16))
        elif word is not None:
            flush()
            if word in _RTF_SKIP:
                skipping = True
            elif word in ("par", "line", "sect", "page", "row"):
                out.append("\n")
            elif word in ("tab", "cell"):
                out.append("\t")
            elif word == "uc" and arg:
                uc_skip = int(arg)
            elif word == "u" and arg:
                code = int(arg) % 65536
                out.append(chr(code) if code < 0xD800 or code > 0xDFFF else "\ufffd")
                to_skip = uc_skip
        elif symbol is not None:
            flush()
            if symbol == "*":
                skipping = True
            elif symbol in "\\{}":
                out.append(symbol)
            elif symbol == "~":
                out.append(" ")
            elif symbol in "\r\n":
                out.append("\n")
        elif plain is not None:
            if to_skip:
                skip_now = min(to_skip, len(plain))
                plain = plain[skip_now:]
                to_skip -= skip_now
            flush()
            out.append(plain)
    flush()
    return "".join(out)


