"""``winmail.dat`` (TNEF, ``application/ms-tnef``): the files Outlook wrapped inside it.

Outlook sometimes sends "rich text" mail as one ``winmail.dat`` attachment holding the real
attachments. ``is_tnef`` recognises one (content type, file name or signature) and
``tnef_attachments`` unpacks the files, as :class:`parsers.model.Attachment` s the pipeline then
treats as if they had been attached directly. Decoding is tnefparse's; before handing it the
bytes, the object headers are walked (without copying) and a file with more than
``MAX_OBJECTS`` objects is refused: tnefparse copies the rest of the file for each object.
"""

from __future__ import annotations

import logging
import struct

from parsers.model import Attachment, UnreadableFile

TNEF_SIGNATURE = b"\x78\x9f\x3e\x22"
TNEF_TYPES = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})
MAX_OBJECTS = 512
MAX_FILES = 100

_CONTENT_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "xlsm": "application/vnd.ms-excel.sheet.macroenabled.12",
    "xls": "application/vnd.ms-excel",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "odt": "application/vnd.oasis.opendocument.text",
    "pdf": "application/pdf",
    "txt": "text/plain",
    "rtf": "application/rtf",
}


def is_tnef(attachment: Attachment) -> bool:
    name = (attachment.filename or "").strip().lower()
    return (attachment.content_type in TNEF_TYPES or name == "winmail.dat"
            or attachment.data.startswith(TNEF_SIGNATURE))


def _count_objects(data: bytes) -> int:
    """Walk the object headers (level, id, type, length ... checksum) without copying."""
    if not data.startswith(TNEF_SIGNATURE):
        raise UnreadableFile("corrupt", "no TNEF signature")
    offset, count = 6, 0
    while offset + 12 < len(data):
        (length,) = struct.unpack_from("<I", data, offset + 5)
        offset += 9 + length + 2
        if offset > len(data):
            raise UnreadableFile("corrupt", "TNEF object runs past the end of the file")
        count += 1
        if count > MAX_OBJECTS:
            raise UnreadableFile("too_large", f"more than {MAX_OBJECTS} TNEF objects")
    return count


def tnef_attachments(data: bytes) -> tuple[Attachment, ...]:
    """The files inside a ``winmail.dat``; raise :class:`UnreadableFile` when it cannot be read."""
    _count_objects(data)
    from tnefparse.tnef import TNEF  # type: ignore[import-untyped]

    logging.getLogger("tnefparse").setLevel(logging.ERROR)
    try:
        parsed = TNEF(data, do_checksum=False)
        found: list[Attachment] = []
        for item in parsed.attachments[:MAX_FILES]:
            payload = item.data
            if not isinstance(payload, bytes | bytearray) or not payload:
                continue  # an embedded message or an empty rendering
            name = _name(item)
            ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
            found.append(Attachment(name or None, _CONTENT_TYPES.get(ext, "application/octet-stream"),
                                    bytes(payload)))
    except UnreadableFile:
        raise
    except Exception as exc:  # a damaged winmail.dat: tnefparse raises anything
        raise UnreadableFile("corrupt", f"{type(exc).__name__}: {str(exc)[:200]}") from exc
    return tuple(found)


def _name(item: object) -> str:
    try:
        name = item.long_filename()  # type: ignore[attr-defined]
    except Exception:
        name = getattr(item, "name", "")
    if isinstance(name, bytes):
        name = name.decode("cp1252", "replace")
    text = str(name or "").replace("\x00", "").strip()
    return text.replace("\\", "/").rsplit("/", 1)[-1]
