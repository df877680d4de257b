"""Text decoding for :mod:`parsers.mime`: charsets, RFC 2047 encoded words, header values,
HTML to plain text, tidying.

Everything is lenient and never raises: a declared charset is tried, then UTF-8, then
Windows-1252 with replacement characters (problems go to the caller's ``defects`` list).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from html.parser import HTMLParser

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([qQbB])\?([^?\s]*)\?=")
FOLDED_LINE = re.compile(r"\r?\n[ \t]*")
# C0 controls but tab and newline (NUL breaks PostgreSQL text columns), and DEL
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


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


def unsurrogate(text: str) -> str:
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
    text = FOLDED_LINE.sub(" ", unsurrogate(text))
    return _CONTROL.sub("", decode_words(text).replace("\r", " ").replace("\n", " ")).strip()


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
