"""Hostile files and messages, built in code (nothing binary is committed).

Each builder returns bytes. Large payloads are streamed into zip members chunk by chunk, so a
"zip bomb" costs the test process a few MB, not what it would expand to.
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import make_msgid

from tests.factories.documents import docx_bytes, narrative_blocks
from tests.factories.workbooks import good_workbook

SENDER = "sgar@bretagne.pref.gouv.fr"
MAILBOX = "conventions@ville.gouv.fr"
SUBJECT = "Bilan 2013 – Bretagne"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_MB = 1024 * 1024

PNG = (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
       + b"\x90wS\xde" + struct.pack(">I", 0) + b"IEND\xaeB`\x82")


def _rewrite(data: bytes, replace: dict[str, bytes], add: dict[str, bytes] | None = None) -> bytes:
    """A copy of a zip with some members replaced or added."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, replace.get(info.filename, src.read(info.filename)))
        for name, content in (add or {}).items():
            dst.writestr(name, content)
    return out.getvalue()


def _deflated(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def zip_bomb_xlsx(expanded_mb: int = 200) -> bytes:
    """A real .xlsx whose first sheet is padded with ``expanded_mb`` MB of blanks (ratio ~1000)."""
    base = good_workbook()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(base)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename == "xl/worksheets/sheet1.xml":
                continue
            dst.writestr(info.filename, src.read(info.filename))
        sheet = src.read("xl/worksheets/sheet1.xml")
        head, _, tail = sheet.partition(b"<sheetData>")
        with dst.open(_deflated("xl/worksheets/sheet1.xml"), "w", force_zip64=True) as fh:
            fh.write(head + b"<sheetData>")
            pad = b" " * _MB
            for _ in range(expanded_mb):
                fh.write(pad)
            fh.write(tail)
    return out.getvalue()


def declared_huge_xlsx() -> bytes:
    """A small .xlsx whose central directory announces a 3 GB sheet (sizes patched, ratio 1)."""
    data = bytearray(good_workbook())
    end = data.rfind(b"PK\x05\x06")
    (cd_offset,) = struct.unpack_from("<I", data, end + 16)
    pos = cd_offset
    while data[pos:pos + 4] == b"PK\x01\x02":
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, pos + 28)
        name = bytes(data[pos + 46:pos + 46 + name_len])
        if name == b"xl/worksheets/sheet1.xml":
            struct.pack_into("<II", data, pos + 20, 3_000_000_000, 3_000_000_000)
        pos += 46 + name_len + extra_len + comment_len
    return bytes(data)


_LAUGHS = (b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
           + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
                      for i in range(1, 10))
           + b']>\n')


_SST = b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>%s</t></si></sst>'


def entity_bomb_xlsx() -> bytes:
    """Billion laughs in xl/sharedStrings.xml (read by default even without a relationship)."""
    return _rewrite(good_workbook(), {}, {"xl/sharedStrings.xml": _LAUGHS + _SST % b"&lol9;"})


def external_entity_xlsx() -> bytes:
    """An external entity (file:///etc/passwd) in xl/sharedStrings.xml."""
    dtd = b'<?xml version="1.0"?>\n<!DOCTYPE sst [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    return _rewrite(good_workbook(), {}, {"xl/sharedStrings.xml": dtd + _SST % b"&xxe;"})


def truncated_xlsx() -> bytes:
    data = good_workbook()
    return data[: len(data) // 2]


def encrypted_xlsx(password: str = "secret") -> bytes:
    """The good return, encrypted with a password by msoffcrypto-tool (Agile encryption)."""
    from msoffcrypto.format.ooxml import OOXMLFile

    out = io.BytesIO()
    OOXMLFile(io.BytesIO(good_workbook())).encrypt(password, out)
    return out.getvalue()


def docx_bomb(expanded_mb: int = 200) -> bytes:
    """A .docx whose document.xml is padded with ``expanded_mb`` MB of blanks."""
    base = docx_bytes(narrative_blocks())
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(base)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename == "word/document.xml":
                continue
            dst.writestr(info.filename, src.read(info.filename))
        doc = src.read("word/document.xml")
        head, sep, tail = doc.partition(b"<w:body>")
        with dst.open(_deflated("word/document.xml"), "w", force_zip64=True) as fh:
            fh.write(head + sep)
            for _ in range(expanded_mb):
                fh.write(b" " * _MB)
            fh.write(tail)
    return out.getvalue()


def many_pages_pdf(pages: int = 10_000) -> bytes:
    """A PDF of ``pages`` blank pages (pypdf writer)."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=200, height=200)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def tnef(files: list[tuple[str, bytes]]) -> bytes:
    """A minimal winmail.dat holding ``files`` (attRenddata, attAttachTitle, attAttachData each)."""

    def obj(level: int, name: int, kind: int, data: bytes) -> bytes:
        return struct.pack("<BHHI", level, name, kind, len(data)) + data + struct.pack("<H", sum(data) & 0xFFFF)

    parts = [struct.pack("<IH", 0x223E9F78, 0x0101), obj(1, 0x9006, 8, struct.pack("<I", 0x10000)),
             obj(1, 0x9007, 6, struct.pack("<II", 1252, 0)), obj(1, 0x8008, 7, b"IPM.Microsoft Mail.Note\x00")]
    for name, data in files:
        parts += [obj(2, 0x9002, 6, b"\x01\x00\xff\xff\xff\xff" + b"\x00" * 8),
                  obj(2, 0x8010, 1, name.encode("cp1252") + b"\x00"), obj(2, 0x800F, 6, data)]
    return b"".join(parts)


# --------------------------------------------------------------------------- messages


def message(
    attachments: Sequence[tuple[str, bytes, str]] = (),
    *,
    sender: str = SENDER,
    subject: str = SUBJECT,
    body: str = "Bonjour,\n\nVeuillez trouver ci-joint notre bilan.\n\nCordialement,",
    headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    msg = EmailMessage()
    for name, value in headers:
        msg[name] = value
    msg["From"] = sender
    msg["To"] = MAILBOX
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="bretagne.pref.gouv.fr")
    msg["Date"] = "Fri, 02 May 2014 10:00:00 +0200"
    msg.set_content(body)
    for filename, data, ctype in attachments:
        maintype, _, subtype = ctype.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


def with_workbook(data: bytes, filename: str = "bilan.xlsx", *, subject: str = SUBJECT,
                  headers: Sequence[tuple[str, str]] = ()) -> bytes:
    return message([(filename, data, XLSX_TYPE)], subject=subject, headers=headers)


def huge_message(mb: int = 30) -> bytes:
    """A return plus ``mb`` MB of attachment (random-looking, so base64 makes it ~1.35 times larger)."""
    blob = (bytes(range(256)) * 4096) * (mb * _MB // (256 * 4096))
    return message([("bilan.xlsx", good_workbook(), XLSX_TYPE), ("scan.pdf", blob, "application/pdf")])


def many_attachments(count: int = 500) -> bytes:
    files = [("bilan.xlsx", good_workbook(), XLSX_TYPE)]
    files += [(f"piece-{i:03}.bin", b"x" * 64, "application/octet-stream") for i in range(count - 1)]
    return message(files)


def nested_multiparts(depth: int = 2000) -> bytes:
    """A message whose multipart/mixed parts nest ``depth`` levels deep."""
    head = (f"From: {SENDER}\r\nTo: {MAILBOX}\r\nSubject: imbrication\r\nMessage-ID: <nested@bretagne>\r\n"
            "MIME-Version: 1.0\r\n")
    parts = [head]
    for level in range(depth):
        parts.append(f'Content-Type: multipart/mixed; boundary="b{level}"\r\n\r\n--b{level}\r\n')
    parts.append("Content-Type: text/plain\r\n\r\nau fond\r\n")
    for level in reversed(range(depth)):
        parts.append(f"--b{level}--\r\n")
    return "".join(parts).encode()


def forged_authentication(authserv_id: str = "mx.pirate.example") -> bytes:
    """A return "from" the region with an Authentication-Results header the sender wrote itself."""
    forged = (f"{authserv_id}; dmarc=pass header.from=bretagne.pref.gouv.fr; "
              "dkim=pass header.d=bretagne.pref.gouv.fr; spf=pass smtp.mailfrom=" + SENDER)
    return with_workbook(good_workbook(), headers=[("Authentication-Results", forged)])
