"""Parsing large messages without the standard library's per-line copies.

``email``'s parser turns a base64 body into one string object per 76-character line: a message
carrying a 25 MB workbook peaks near 280 MB. For a large message, each long run of base64 lines
is replaced by a small placeholder before the (complete, standard) MIME parse; the attachments
that come back holding a placeholder then get the original run, decoded straight from the raw
bytes. Headers, file names, charsets and text bodies are parsed exactly as for any message.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import replace

from parsers.model import Attachment, MailMessage

LARGE_MESSAGE = 4 * 1024 * 1024  # below this, the standard path alone is cheap enough
# At least ~1 MB of consecutive base64 lines (76 characters each, as every mail client writes).
# Possessive (``+``, Python 3.11): nothing follows the run, so no backtracking is ever needed, and the
# regular engine would keep a backtracking point per line (120 MB for a 34 MB message).
_RUN = re.compile(rb"(?:[A-Za-z0-9+/]{40,100}={0,2}\r?\n){12000,}+")
_MARK = b"\x00conventions-intake:chunk:"


def _marker(index: int) -> bytes:
    return _MARK + str(index).encode() + b"\x00"


def parse_large(raw: bytes, parse: Callable[[bytes], MailMessage]) -> MailMessage:
    """``parse`` (the standard path) applied to ``raw`` with its long base64 runs set aside."""
    runs: list[tuple[int, int]] = []
    pieces: list[bytes] = []
    last = 0
    for index, match in enumerate(_RUN.finditer(raw)):
        runs.append(match.span())
        pieces.append(raw[last:match.start()])
        pieces.append(base64.b64encode(_marker(index)) + b"\r\n")
        last = match.end()
    if not runs:
        return parse(raw)
    pieces.append(raw[last:])
    message = parse(b"".join(pieces))
    view = memoryview(raw)

    def restore(attachment: Attachment) -> Attachment:
        data = attachment.data
        if data.startswith(_MARK) and data.endswith(b"\x00"):
            index = int(data[len(_MARK):-1])
            start, end = runs[index]
            try:
                return replace(attachment, data=binascii.a2b_base64(view[start:end]))
            except (binascii.Error, ValueError):
                return replace(attachment, data=bytes(view[start:end]))
        for index, (start, end) in enumerate(runs):  # a part not declared base64: its text as sent
            placeholder = base64.b64encode(_marker(index))
            if placeholder in data:  # the placeholder's own line end stays where the run's last one was
                data = data.replace(placeholder, bytes(view[start:end]).rstrip(b"\r\n"))
        return attachment if data is attachment.data else replace(attachment, data=data)

    return replace(message, attachments=tuple(restore(a) for a in message.attachments))
