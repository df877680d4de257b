"""Outgoing mail as bytes: the MIME structure our messages use, written directly.

Pure: headers and parts in, RFC 5322 bytes out (``\\n`` line ends; :mod:`smtplib` sends them as
CRLF). Our mail has one shape — a text body, an HTML alternative, attachments — so it is written
here rather than through the ``email`` package's objects and generator, which parse, fold and
re-encode every header and write the body a line at a time: 1.3 ms for a reply with its annotated
workbook, against 0.2 ms here (docs/performance.md). The output is what that generator wrote
(``compat32``): the same headers, parts and transfer encodings; the replies are read back by the
``email`` parser in the tests.

* Bodies are UTF-8: as they are (``7bit`` or ``8bit``) when every line is short, in
  quoted-printable otherwise (SMTP limits a line to 998 bytes); never base64, so that the raw
  ``.eml`` stays readable.
* Attachments in base64, their file names in RFC 2231 parameters when not ASCII.
* Header text that is not ASCII in RFC 2047 encoded words (``=?utf-8?q?Accus=C3=A9?=``: the words
  stay legible), a display name alone (never the address); line breaks in a value become spaces,
  so that no value can add a header.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from email import charset
from email.header import Header
from email.utils import encode_rfc2231, formataddr, getaddresses, quote

SHORT_LINE = 78  # a body whose lines are all this short is sent as it is
MAX_LINE = 998  # SMTP's limit, without the line end
_UTF8_QP = charset.Charset("utf-8")
_UTF8_QP.header_encoding = charset.QP
_NEWLINES = str.maketrans({"\r": " ", "\n": " "})


@dataclass(frozen=True)
class Part:
    """A leaf of the message: its headers after Content-Type, and its encoded body."""

    content_type: str
    headers: tuple[tuple[str, str], ...]
    body: str


@dataclass(frozen=True)
class OutgoingMail:
    """A message ready for the outbox: its bytes and its Message-ID."""

    raw: bytes
    message_id: str


def text_part(text: str, subtype: str) -> Part:
    """UTF-8 text as it is when every line is short, in quoted-printable otherwise."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    short = all(len(line) <= SHORT_LINE for line in text.splitlines())
    if short:
        return Part(f'text/{subtype}; charset="utf-8"',
                    (("Content-Transfer-Encoding", "7bit" if text.isascii() else "8bit"),), text)
    encoded = binascii.b2a_qp(text.encode("utf-8"), istext=True).decode("ascii")
    return Part(f'text/{subtype}; charset="utf-8"', (("Content-Transfer-Encoding", "quoted-printable"),), encoded)


def attachment_part(filename: str, data: bytes, content_type: str) -> Part:
    """A file in base64, named in the Content-Disposition."""
    name = f'filename="{quote(_one_line(filename))}"' if filename.isascii() else \
        f"filename*={encode_rfc2231(_one_line(filename), 'utf-8')}"
    return Part(_one_line(content_type), (("Content-Transfer-Encoding", "base64"),
                                          ("Content-Disposition", f"attachment; {name}")),
                base64.encodebytes(data).decode("ascii"))


def header(name: str, value: str) -> str:
    """``value`` as the text of header ``name``: ASCII as it is (within SMTP's line length),
    anything else in encoded words, folded after the name."""
    value = _one_line(value)
    if value.isascii() and len(name) + 2 + len(value) <= MAX_LINE:
        return value
    return Header(value, _UTF8_QP, header_name=name).encode()


def addresses(name: str, values: Sequence[str]) -> str:
    """Addresses for To or Cc: a display name that is not ASCII encoded, the address as it is;
    a new line (folded) before an address that would make the line longer than 78 characters."""
    formatted = [formataddr((display, address), charset="utf-8") if display else address
                 for display, address in getaddresses([_one_line(v) for v in values])]
    pieces: list[str] = []
    width = len(name) + 2
    for item in formatted:
        if pieces and width + len(item) + 2 > SHORT_LINE:
            pieces.append(",\n " + item)
            width = 1 + len(item)
        else:
            pieces.append((", " if pieces else "") + item)
            width += len(item) + 2
    return "".join(pieces)


def write(headers: Sequence[tuple[str, str]], body: Part, alternative: Part | None = None,
          attachments: Sequence[Part] = ()) -> bytes:
    """The message: ``headers`` (already encoded), the body with its HTML alternative, the files."""
    texts = (body.body, alternative.body if alternative is not None else "")
    inner: _Node = body if alternative is None else _Multipart("alternative", (body, alternative), _boundary(texts))
    root: _Node = inner if not attachments else _Multipart("mixed", (inner, *attachments), _boundary(texts))
    lines = [f"Content-Type: {_content_type(root)}", "MIME-Version: 1.0"]
    lines.extend(f"{name}: {value}" for name, value in _own_headers(root))
    lines.extend(f"{name}: {value}" for name, value in headers)
    return ("\n".join(lines) + "\n\n" + _body(root)).encode("utf-8")


@dataclass(frozen=True)
class _Multipart:
    subtype: str
    parts: tuple[_Node, ...]
    boundary: str


_Node = Part | _Multipart


def _one_line(text: str) -> str:
    return text.translate(_NEWLINES)


def _boundary(texts: Sequence[str]) -> str:
    """A boundary found in none of the texts ("=_" never appears in base64 or quoted-printable)."""
    while True:
        boundary = f"=_{secrets.token_hex(16)}"
        if not any(boundary in text for text in texts):
            return boundary


def _content_type(node: _Node) -> str:
    if isinstance(node, Part):
        return node.content_type
    return f'multipart/{node.subtype}; boundary="{node.boundary}"'


def _own_headers(node: _Node) -> tuple[tuple[str, str], ...]:
    return node.headers if isinstance(node, Part) else ()


def _body(node: _Node) -> str:
    if isinstance(node, Part):
        return node.body
    boundary = node.boundary
    parts = [f"Content-Type: {_content_type(part)}\n"
             + "".join(f"{name}: {value}\n" for name, value in _own_headers(part)) + "\n" + _body(part)
             for part in node.parts]
    return f"--{boundary}\n" + f"\n--{boundary}\n".join(parts) + f"\n--{boundary}--\n"
