"""Outlook ``.msg`` files: a message saved from Outlook (or dragged from it) and attached.

An assistant who forwards the prefect's message from Outlook may attach it as a ``.msg`` file (an
OLE compound file of MAPI properties) rather than as ``message/rfc822``. ``read_outlook_message``
returns what counts of it, as for a forwarded message: its sender, subject, plain-text body (the
HTML body made text when there is no plain one; a body kept only as compressed RTF is not read)
and its attachments. Messages embedded in it are not opened. Compound files are read by olefile;
any damage becomes ``UnreadableFile("corrupt")``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import olefile

from parsers.mail.decoding import html_to_text, tidy_text
from parsers.model import Attachment, UnreadableFile
from parsers.sniff import OLE_MAGIC

MSG_TYPES = frozenset({"application/vnd.ms-outlook", "application/x-msg"})
MAX_ATTACHMENTS = 200
_ATTACH = "__attach_version1.0_#"


@dataclass(frozen=True)
class OutlookMessage:
    sender: str | None  # lower-case SMTP address, None when the file gives none
    subject: str
    body: str
    attachments: tuple[Attachment, ...]


def is_outlook_message(attachment: Attachment) -> bool:
    """A .msg file: an OLE compound file named .msg or typed as Outlook's."""
    name = (attachment.filename or "").strip().lower()
    return attachment.data.startswith(OLE_MAGIC) and (name.endswith(".msg") or attachment.content_type in MSG_TYPES)


def read_outlook_message(data: bytes) -> OutlookMessage:
    """Sender, subject, body and attachments of a .msg file; ``UnreadableFile`` when damaged."""
    try:
        with olefile.OleFileIO(io.BytesIO(data)) as ole:
            return _read(ole)
    except UnreadableFile:
        raise
    except Exception as exc:  # olefile raises many kinds on damaged files
        raise UnreadableFile("corrupt", f"{type(exc).__name__}: {exc}") from exc


def _read(ole: olefile.OleFileIO) -> OutlookMessage:
    if not ole.exists("__properties_version1.0"):
        raise UnreadableFile("corrupt", "no MAPI properties: not an Outlook message")
    body = _text(ole, "", "1000")
    if not body.strip():
        html = _binary(ole, "__substg1.0_10130102")
        body = html_to_text(html.decode("utf-8", "replace")) if html else ""
    sender = next((a for a in (_text(ole, "", tag) for tag in ("5D01", "0C1F", "0065")) if "@" in a), "")
    attachments: list[Attachment] = []
    folders = sorted({path[0] for path in ole.listdir(streams=True, storages=True) if path[0].startswith(_ATTACH)})
    for folder in folders[:MAX_ATTACHMENTS]:
        content = _binary(ole, f"{folder}/__substg1.0_37010102")
        if content is None:
            continue  # an embedded message or an OLE object: not opened
        name = _text(ole, folder + "/", "3707") or _text(ole, folder + "/", "3704") or None
        content_type = _text(ole, folder + "/", "370E") or "application/octet-stream"
        attachments.append(Attachment(name, content_type.lower(), content))
    return OutlookMessage(sender.strip().lower() or None, _text(ole, "", "0037").strip(), tidy_text(body),
                          tuple(attachments))


def _binary(ole: olefile.OleFileIO, path: str) -> bytes | None:
    if not ole.exists(path):
        return None
    data = ole.openstream(path).read()
    return data if isinstance(data, bytes) else None


def _text(ole: olefile.OleFileIO, folder: str, tag: str) -> str:
    """A string property: UTF-16 (``001F``), else 8-bit (``001E``, read as Windows-1252)."""
    unicode_value = _binary(ole, f"{folder}__substg1.0_{tag}001F")
    if unicode_value is not None:
        return unicode_value.decode("utf-16-le", "replace").rstrip("\x00")
    ansi_value = _binary(ole, f"{folder}__substg1.0_{tag}001E")
    return ansi_value.decode("cp1252", "replace").rstrip("\x00") if ansi_value is not None else ""
