"""Raw e-mail bytes -> :class:`parsers.model.MailMessage`, whatever the sender's client did.

``parse_message`` never raises: every header is decoded leniently (RFC 2047 encoded words,
also inside quotes, raw 8-bit UTF-8 or Windows-1252), every part is decoded with its declared
charset, falling back to UTF-8 then Windows-1252 with replacement characters, and problems
are recorded as short English codes in ``MailMessage.defects``. The structure is read with
``policy.default``; if that fails, with ``policy.compat32``; if that fails too, the headers are
split by hand and the rest is kept as the body.

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

import base64
import binascii
import codecs
import re
from collections.abc import Iterable
from email import policy
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from html.parser import HTMLParser

from parsers.mime_large import LARGE_MESSAGE, parse_large
from parsers.model import Attachment, MailMessage

FORWARD_MARKER = "---------- Message transféré ----------"
MAX_DEPTH = 40  # nesting of multiparts / forwarded messages we follow
MAX_PARTS = 2000

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([qQbB])\?([^?\s]*)\?=")
_FOLD = re.compile(r"\r?\n[ \t]*")
_MSG_ID = re.compile(r"<[^<>\s]+>")
_BODY_TYPES = ("text/plain", "text/html")
# C0 controls but tab and newline (NUL breaks PostgreSQL text columns), and DEL
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# --------------------------------------------------------------------------- charsets


def _codec(charset: str | None) -> str | None:
    if not charset:
        return None
    name = charset.strip().strip('"').lower()
    # labels commonly used for a superset the sender really used
    aliases = {"unicode-1-1-utf-7": "utf-7", "cp-850": "cp850", "x-user-defined": "cp1252",
               "gb2312": "gb18030", "gbk": "gb18030", "ks_c_5601-1987": "cp949", "euc-kr": "cp949",
               "shift_jis": "cp932", "iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252",
               "us-ascii": "utf-8", "ascii": "utf-8", "ansi_x3.4-1968": "utf-8"}
    name = aliases.get(name, name)
    try:
        codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    return name


def decode_bytes(data: bytes, charset: str | None = None, defects: list[str] | None = None) -> str:
    """Decode with the declared charset; on failure UTF-8, then Windows-1252 with replacement."""
    codec = _codec(charset)
    if charset and codec is None and defects is not None:
        defects.append(f"unknown_charset:{charset.strip()[:40]}")
    for candidate in (codec, "utf-8"):
        if candidate is None:
            continue
        try:
            return data.decode(candidate)
        except (UnicodeDecodeError, LookupError):
            continue
        except Exception:  # some codecs raise odd errors on odd input
            continue
    if defects is not None and charset:
        defects.append(f"charset_mismatch:{charset.strip()[:40]}")
    return data.decode("cp1252", errors="replace")


# --------------------------------------------------------------------------- headers


def _unsurrogate(text: str) -> str:
    """Header strings from BytesParser carry raw 8-bit bytes as surrogates: decode them."""
    if not any("\udc80" <= ch <= "\udcff" for ch in text):
        return text
    return decode_bytes(text.encode("utf-8", "surrogateescape"))


def _decode_word(charset: str, encoding: str, payload: str) -> bytes | None:
    try:
        if encoding.lower() == "q":
            return binascii.a2b_qp(payload.encode("ascii", "replace"), header=True)
        padded = payload + "=" * (-len(payload) % 4)
        data = base64.b64decode(padded.encode("ascii", "replace"), validate=False)
        return data if data or not payload.strip("=") else None
    except (binascii.Error, ValueError):
        return None


def decode_words(text: str) -> str:
    """Decode RFC 2047 encoded words anywhere in ``text`` (also inside quotes), leniently.

    Adjacent encoded words of the same charset are joined before decoding, so a multi-byte
    character split across two words survives; white space between encoded words is dropped.
    """
    out: list[str] = []
    pending = b""
    pending_charset = ""
    pos = 0

    def flush() -> None:
        nonlocal pending
        if pending:
            out.append(decode_bytes(pending, pending_charset))
            pending = b""

    prev_word = False
    for match in _ENCODED_WORD.finditer(text):
        between = text[pos : match.start()]
        charset = match.group(1).split("*", 1)[0]
        decoded = _decode_word(charset, match.group(2), match.group(3))
        pos = match.end()
        if decoded is None:
            flush()
            out.append(between + match.group(0))
            prev_word = False
            continue
        if prev_word and not between.strip():
            if charset.lower() != pending_charset.lower():
                flush()
        else:
            flush()
            out.append(between)
        pending += decoded
        pending_charset = charset
        prev_word = True
    flush()
    out.append(text[pos:])
    return "".join(out)


def decode_header_value(raw: object) -> str:
    """Any header value (str with surrogates, Header object, ...) -> clean one-line str."""
    try:
        text = raw if isinstance(raw, str) else str(raw)
    except Exception:
        return ""
    text = _FOLD.sub(" ", _unsurrogate(text))
    return _CONTROL.sub("", decode_words(text).replace("\r", " ").replace("\n", " ")).strip()


def _raw_headers(msg: Message) -> list[tuple[str, str]]:
    try:
        return [(str(k), str(v)) for k, v in msg.raw_items()]
    except Exception:
        return []


def _addresses(raw_values: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """(decoded name, lower-case address) pairs; invalid addresses are skipped."""
    result: list[tuple[str, str]] = []
    values = [_FOLD.sub(" ", _unsurrogate(v)) for v in raw_values]
    try:
        pairs = getaddresses(values)
    except Exception:
        pairs = []
    for name, addr in pairs:
        addr = addr.strip().strip("<>").lower()
        if _valid_address(addr):
            result.append((decode_words(name).strip(), addr))
    return tuple(result)


def _valid_address(addr: str) -> bool:
    if addr.count("@") != 1 or any(ch.isspace() for ch in addr):
        return False
    local, domain = addr.split("@")
    return bool(local) and bool(domain)


def _single_address(raw: str | None) -> tuple[str, str | None]:
    if raw is None:
        return "", None
    value = _FOLD.sub(" ", _unsurrogate(raw))
    try:
        name, addr = parseaddr(value)
    except Exception:
        name, addr = "", ""
    addr = addr.strip().lower()
    if not _valid_address(addr):
        pairs = _addresses([raw])
        if pairs:
            return pairs[0]
        return decode_words(name).strip(), None
    return decode_words(name).strip(), addr


def _ids(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return ()
    return tuple(_MSG_ID.findall(_unsurrogate(raw)))


def _message_id(raw: str | None) -> str | None:
    if raw is None:
        return None
    ids = _ids(raw)
    if ids:
        return ids[0]
    value = _unsurrogate(raw).strip()
    return value or None


def _iso_date(raw: str | None, defects: list[str]) -> str | None:
    if not raw:
        return None
    try:
        return parsedate_to_datetime(_unsurrogate(raw).strip()).isoformat()
    except Exception:
        defects.append("bad_date")
        return None


def message_id_of(raw: bytes) -> str | None:
    """The Message-ID of raw bytes (with angle brackets), reading the header block only."""
    try:
        end = min((i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0), default=len(raw))
        head = BytesHeaderParser(policy=policy.compat32).parsebytes(raw[: end + 2])
        value = head.get("Message-ID")
        return _message_id(None if value is None else str(value))
    except Exception:
        return None


# --------------------------------------------------------------------------- html


class _HtmlText(HTMLParser):
    _SKIP = frozenset({"script", "style", "head", "title", "noscript", "template", "xml"})
    _BLOCK = frozenset({"div", "tr", "table", "ul", "ol", "blockquote", "section", "article",
                        "header", "footer", "address", "pre", "center", "dl", "dt", "dd", "form"})
    _PARA = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0
        self.cells = 0  # cells seen in the current table row

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self.skip += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in self._PARA:
            self.parts.append("\n\n")
        elif tag in self._BLOCK or tag == "hr":
            self.parts.append("\n")
            if tag == "tr":
                self.cells = 0
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in ("td", "th"):
            self.parts.append(" | " if self.cells else " ")
            self.cells += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "hr"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in self._PARA:
            self.parts.append("\n\n")
        elif tag in self._BLOCK or tag == "li":
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


_TAG = re.compile(r"<[^>]*>")


def html_to_text(html: str) -> str:
    """Readable plain text from HTML: no tags, scripts or styles; entities and paragraphs kept."""
    parser = _HtmlText()
    try:
        parser.feed(html)
        parser.close()
        text = "".join(parser.parts)
    except Exception:
        text = _TAG.sub(" ", html)
    return tidy_text(text)


def tidy_text(text: str) -> str:
    """Trim every line, collapse runs of spaces and of blank lines."""
    text = text.replace("\xa0", " ").replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    lines = [re.sub(r"[ \t\f\v]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


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
    for name, value in _raw_headers(part):
        if name.lower() == header:
            found = re.search(rf'(?<![\w*-]){param}\s*=\s*(?:"([^"]*)"|([^;]+))', _FOLD.sub(" ", value),
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
    if raw and (not name or "\\" in raw):
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
    text = decode_header_value(name).strip().strip('"').strip()
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
                return BytesParser(policy=policy.default).parsebytes(data)
            except Exception:
                state.defects.append("bad_forwarded_message")
    return children[0] if children else None


def _walk(part: Message, state: _Walk, depth: int, forwarded: bool) -> str:
    """Collect attachments under ``part`` and return its body text (forwarded text set aside)."""
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
            return html_to_text(text)
        if _param(part, "format").lower() == "flowed":
            text = unflow(text, delsp=_param(part, "delsp").lower() == "yes")
        return tidy_text(text)
    state.attachments.append(Attachment(filename, ctype, _payload_bytes(part, state), forwarded))
    return ""


def _alternative(children: list[Message], state: _Walk, depth: int, forwarded: bool) -> str:
    """Prefer a non-empty text/plain alternative, else the richest other one."""
    texts: list[tuple[str, str]] = []
    for child in children:
        text = _walk(child, state, depth + 1, forwarded)
        texts.append((_ctype(child), text))
    for ctype, text in texts:
        if ctype == "text/plain" and text.strip():
            return text
    for _, text in reversed(texts):
        if text.strip():
            return text
    return ""


def _forwarded_text(inner: Message, state: _Walk, depth: int) -> str:
    headers = dict((k.lower(), v) for k, v in _raw_headers(inner))
    body = _walk(inner, state, depth, forwarded=True)
    lines = [FORWARD_MARKER]
    for label, key in (("De", "from"), ("Date", "date"), ("Objet", "subject"), ("À", "to")):
        if key in headers:
            lines.append(f"{label} : {decode_header_value(headers[key])}")
    return "\n".join(lines) + "\n\n" + body


# --------------------------------------------------------------------------- message


def _build(msg: Message, defects: list[str]) -> MailMessage:
    raw_headers = _raw_headers(msg)
    headers = tuple((name, decode_header_value(value)) for name, value in raw_headers)

    def first(name: str) -> str | None:
        lname = name.lower()
        return next((v for k, v in raw_headers if k.lower() == lname), None)

    def every(name: str) -> list[str]:
        lname = name.lower()
        return [v for k, v in raw_headers if k.lower() == lname]

    if not raw_headers:
        defects.append("no_headers")
    state = _Walk()
    state.defects = defects
    body = _walk(msg, state, 0, forwarded=False)
    if state.forwarded_texts:
        body = "\n\n".join(t for t in [body, *state.forwarded_texts] if t.strip())
    from_name, from_addr = _single_address(first("From"))
    if first("From") is not None and from_addr is None:
        defects.append("bad_from")
    return MailMessage(
        message_id=_message_id(first("Message-ID")),
        subject=decode_header_value(first("Subject") or ""),
        from_addr=from_addr,
        from_name=from_name,
        reply_to=tuple(a for _, a in _addresses(every("Reply-To"))),
        to=tuple(a for _, a in _addresses(every("To"))),
        date=_iso_date(first("Date"), defects),
        in_reply_to=next(iter(_ids(first("In-Reply-To"))), None),
        references=tuple(i for v in every("References") for i in _ids(v)),
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
    for pol in (policy.default, policy.compat32):
        try:
            msg = BytesParser(policy=pol).parsebytes(bytes(raw))
            return _build(msg, list(defects))
        except RecursionError:
            defects.append("recursion")
        except Exception as exc:
            defects.append(f"parser_failed:{type(exc).__name__}")
    return _split_by_hand(bytes(raw), defects)
