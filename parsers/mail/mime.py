"""Raw e-mail bytes -> :class:`parsers.model.MailMessage`, whatever the sender's client did.

``parse_message`` never raises: every header is decoded leniently (RFC 2047 encoded words,
also inside quotes, raw 8-bit UTF-8 or Windows-1252), every part is decoded with its declared
charset, falling back to UTF-8 then Windows-1252 with replacement characters, and problems
are recorded as short English codes in ``MailMessage.defects``. The structure is read with
``policy.compat32``: the headers stay as they came (we decode them ourselves), which makes the
parse three times cheaper than ``policy.default``, whose header objects we never use; if that
fails, with ``policy.default``; if that fails too, the headers are split by hand and the rest is
kept as the body.

Decisions:

* ``message_id`` and the ids of ``in_reply_to``/``references`` keep their angle brackets
  (``<abc@host>``), which is how they are compared with the headers of later messages.
* ``date`` is the ``Date`` header as ISO 8601 when it parses, else None (defect ``bad_date``).
* A leaf part is an attachment when it has a file name, an ``attachment`` disposition, or a
  content type other than text/plain and text/html; other text parts make the body.
* ``message/rfc822`` parts (forwarded messages): their attachments are collected with
  ``forwarded=True`` and their text is appended to ``body_text`` after a French separator
  (``FORWARD_MARKER``), with the forwarded sender, date and subject.
"""

from __future__ import annotations

import re
from email import policy
from email.headerregistry import BaseHeader
from email.message import Message
from email.parser import BytesParser
from email.policy import EmailPolicy

from parsers.mail.decoding import (
    FOLDED_LINE,
    decode_bytes,
    decode_header_value,
    html_to_text,
    tidy_text,
    unsurrogate,
)
from parsers.mail.headers import (
    address_list,
    iso_date,
    message_id_header,
    message_ids,
    raw_headers,
    single_address,
)
from parsers.mail.large import LARGE_MESSAGE, parse_large
from parsers.model import Attachment, MailMessage

FORWARD_MARKER = "---------- Message transféré ----------"
MAX_DEPTH = 40  # nesting of multiparts / forwarded messages we follow
MAX_PARTS = 2000

_BODY_TYPES = ("text/plain", "text/html")


class _ParsedOnce(EmailPolicy):
    """``policy.default`` that parses each header of one message once: the walk below asks for a
    part's Content-Type up to ten times, and the standard policy parses it again every time (most
    of the time of a parse). One instance per message (:func:`_policy`), dropped with it."""

    fetched: dict[tuple[str, str], BaseHeader] | None = None

    def header_fetch_parse(self, name: str, value: str) -> BaseHeader:
        if self.fetched is None:
            return super().header_fetch_parse(name, value)  # type: ignore[no-any-return]
        header = self.fetched.get((name, value))
        if header is None:
            header = self.fetched[(name, value)] = super().header_fetch_parse(name, value)
        return header


def _policy() -> EmailPolicy:
    return _ParsedOnce().clone(fetched={})  # type: ignore[call-arg]


# --------------------------------------------------------------------------- parts


class _Walk:
    """Mutable state of one walk over the MIME tree."""

    def __init__(self) -> None:
        self.attachments: list[Attachment] = []
        self.defects: list[str] = []
        self.forwarded_texts: list[str] = []
        self.parts = 0


def _ctype(part: Message) -> str:
    try:
        return (part.get_content_type() or "text/plain").lower()
    except Exception:
        return "application/octet-stream"


def _raw_param(part: Message, header: str, param: str) -> str | None:
    """A plain ``param=value`` read from the raw header, for values the email package rejects
    (unquoted encoded words, Windows paths whose backslashes it takes for escapes)."""
    for name, value in raw_headers(part):
        if name.lower() == header:
            found = re.search(rf'(?<![\w*-]){param}\s*=\s*(?:"([^"]*)"|([^;]+))', FOLDED_LINE.sub(" ", value),
                              re.IGNORECASE)
            if found:
                return (found.group(1) if found.group(1) is not None else found.group(2)).strip()
    return None


def _filename(part: Message, state: _Walk) -> str | None:
    name: object = None
    try:
        name = part.get_filename()
    except Exception:
        state.defects.append("bad_filename")
    raw = _raw_param(part, "content-disposition", "filename") or _raw_param(part, "content-type", "name")
    # compat32 gives raw 8-bit UTF-8 in a parameter as replacement characters: the raw header keeps it
    if raw and (not name or "\\" in raw or "\ufffd" in str(name)):
        name = raw
    if not name:
        try:
            name = part.get_param("name")
        except Exception:
            name = None
        if isinstance(name, tuple):  # compat32 RFC 2231 triple
            try:
                name = decode_bytes(str(name[2]).encode("latin-1", "replace"), name[0])
            except Exception:
                name = str(name[2])
    if not name:
        return None
    text = decode_header_value(unsurrogate(str(name))).strip().strip('"').strip()
    text = text.replace("\\", "/").rsplit("/", 1)[-1]  # C:\Users\...\bilan.xlsx -> bilan.xlsx
    return text or None


def _param(part: Message, name: str) -> str:
    try:
        value = part.get_param(name)
    except Exception:
        return ""
    return value if isinstance(value, str) else ""


def unflow(text: str, delsp: bool = False) -> str:
    """RFC 3676 format=flowed: join soft-broken lines (ending with a space), unstuff."""
    out: list[str] = []
    current = ""
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.startswith(" "):
            line = line[1:]  # space-stuffing
        if line.endswith(" ") and line.rstrip() != "--":
            current += line[:-1] if delsp else line
            continue
        out.append(current + line)
        current = ""
    if current:
        out.append(current)
    return "\n".join(out)


def _disposition(part: Message) -> str:
    try:
        return (part.get_content_disposition() or "").lower()
    except Exception:
        return ""


def _payload_bytes(part: Message, state: _Walk) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        state.defects.append("payload_decode_error")
        data = None
    if isinstance(data, bytes):
        return data
    try:
        raw = part.get_payload()
    except Exception:
        return b""
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogateescape")
    try:
        return b"\n".join(m.as_bytes() for m in raw if isinstance(m, Message))
    except Exception:
        return b""


def _part_text(part: Message, state: _Walk) -> str:
    data = _payload_bytes(part, state)
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    return decode_bytes(data, charset, state.defects)


def _children(part: Message) -> list[Message]:
    try:
        payload = part.get_payload()
    except Exception:
        return []
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    return []


def _inner_message(part: Message, state: _Walk) -> Message | None:
    """The message inside a message/rfc822 part, re-parsed when it was (wrongly) encoded."""
    children = _children(part)
    cte = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if cte in ("base64", "quoted-printable"):
        data = _payload_bytes(part, state)
        if data:
            try:
                return BytesParser(policy=policy.compat32).parsebytes(data)
            except Exception:
                state.defects.append("bad_forwarded_message")
    return children[0] if children else None


class _Html(str):
    """A text/html body not yet turned into text: an alternative converted only when it is chosen."""


def _walk(part: Message, state: _Walk, depth: int, forwarded: bool, *, html_later: bool = False) -> str:
    """Collect attachments under ``part`` and return its body text (forwarded text set aside);
    ``html_later``: a text/html body comes back as :class:`_Html`, still to convert."""
    state.parts += 1
    if depth > MAX_DEPTH or state.parts > MAX_PARTS:
        if "too_deep" not in state.defects:
            state.defects.append("too_deep")
        return ""
    for defect in getattr(part, "defects", ()) or ():
        state.defects.append(type(defect).__name__)
    ctype = _ctype(part)
    if ctype == "message/rfc822":
        inner = _inner_message(part, state)
        if inner is not None:
            state.forwarded_texts.append(_forwarded_text(inner, state, depth + 1))
        return ""
    if ctype.startswith("multipart/") and not part.is_multipart():
        # boundary missing or broken: keep whatever text is there as body
        text = _part_text(part, state)
        looks_html = re.search(r"<(html|body|div|p|table)\b", text[:5000], re.IGNORECASE)
        return html_to_text(text) if looks_html else tidy_text(text)
    if part.is_multipart() and ctype.startswith("multipart/"):
        children = _children(part)
        if ctype == "multipart/alternative":
            return _alternative(children, state, depth, forwarded)
        texts = [_walk(child, state, depth + 1, forwarded) for child in children]
        return "\n\n".join(t for t in texts if t.strip())
    filename = _filename(part, state)
    disposition = _disposition(part)
    if filename is None and disposition != "attachment" and ctype in _BODY_TYPES:
        text = _part_text(part, state)
        if ctype == "text/html":
            return _Html(text) if html_later else html_to_text(text)
        if _param(part, "format").lower() == "flowed":
            text = unflow(text, delsp=_param(part, "delsp").lower() == "yes")
        return tidy_text(text)
    state.attachments.append(Attachment(filename, ctype, _payload_bytes(part, state), forwarded))
    return ""


def _alternative(children: list[Message], state: _Walk, depth: int, forwarded: bool) -> str:
    """Prefer a non-empty text/plain alternative, else the richest other one."""
    texts: list[tuple[str, str]] = []
    for child in children:  # each walked, for the attachments it may hold
        text = _walk(child, state, depth + 1, forwarded, html_later=True)
        texts.append((_ctype(child), text))
    for ctype, text in texts:
        if ctype == "text/plain" and text.strip():
            return text
    for _, text in reversed(texts):
        if isinstance(text, _Html):
            text = html_to_text(text)
        if text.strip():
            return text
    return ""


def _forwarded_text(inner: Message, state: _Walk, depth: int) -> str:
    headers = dict((k.lower(), v) for k, v in raw_headers(inner))
    body = _walk(inner, state, depth, forwarded=True)
    lines = [FORWARD_MARKER]
    for label, key in (("De", "from"), ("Date", "date"), ("Objet", "subject"), ("À", "to")):
        if key in headers:
            lines.append(f"{label} : {decode_header_value(headers[key])}")
    return "\n".join(lines) + "\n\n" + body


# --------------------------------------------------------------------------- message


def _build(msg: Message, defects: list[str]) -> MailMessage:
    pairs = raw_headers(msg)
    headers = tuple((name, decode_header_value(value)) for name, value in pairs)

    def first(name: str) -> str | None:
        lname = name.lower()
        return next((v for k, v in pairs if k.lower() == lname), None)

    def every(name: str) -> list[str]:
        lname = name.lower()
        return [v for k, v in pairs if k.lower() == lname]

    if not pairs:
        defects.append("no_headers")
    state = _Walk()
    state.defects = defects
    body = _walk(msg, state, 0, forwarded=False)
    if state.forwarded_texts:
        body = "\n\n".join(t for t in [body, *state.forwarded_texts] if t.strip())
    from_name, from_addr = single_address(first("From"))
    if first("From") is not None and from_addr is None:
        defects.append("bad_from")
    return MailMessage(
        message_id=message_id_header(first("Message-ID")),
        subject=decode_header_value(first("Subject") or ""),
        from_addr=from_addr,
        from_name=from_name,
        reply_to=tuple(a for _, a in address_list(every("Reply-To"))),
        to=tuple(a for _, a in address_list(every("To"))),
        date=iso_date(first("Date"), defects),
        in_reply_to=next(iter(message_ids(first("In-Reply-To"))), None),
        references=tuple(i for v in every("References") for i in message_ids(v)),
        headers=headers,
        body_text=body,
        attachments=tuple(state.attachments),
        defects=tuple(dict.fromkeys(defects)),
    )


def _split_by_hand(raw: bytes, defects: list[str]) -> MailMessage:
    """Last resort: 'Name: value' lines up to the first blank line, the rest as body text."""
    text = decode_bytes(raw)
    head, _, body = text.replace("\r\n", "\n").partition("\n\n")
    msg = Message()
    for line in re.sub(r"\n[ \t]+", " ", head).split("\n"):
        name, sep, value = line.partition(":")
        if sep and name.strip() and " " not in name.strip():
            try:
                msg[name.strip()] = value.strip()
            except Exception:
                continue
    msg.set_payload(body)
    try:
        return _build(msg, defects)
    except Exception as exc:
        defects.append(f"unparsable:{type(exc).__name__}")
        return MailMessage(None, "", None, "", (), (), None, None, (), (), tidy_text(text), (),
                           tuple(dict.fromkeys(defects)))


def parse_message(raw: bytes) -> MailMessage:
    """Parse raw RFC 5322 bytes. Never raises; see the module docstring for the decisions."""
    if len(raw) > LARGE_MESSAGE:
        return parse_large(raw, _parse_standard)
    return _parse_standard(raw)


def _parse_standard(raw: bytes) -> MailMessage:
    defects: list[str] = []
    for pol in (policy.compat32, _policy()):
        try:
            msg = BytesParser(policy=pol).parsebytes(bytes(raw))
            return _build(msg, list(defects))
        except RecursionError:
            defects.append("recursion")
        except Exception as exc:
            defects.append(f"parser_failed:{type(exc).__name__}")
    return _split_by_hand(bytes(raw), defects)
