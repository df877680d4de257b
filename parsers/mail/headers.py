"""Structured headers for :mod:`parsers.mime`: addresses, message ids, dates.

Addresses come back lower-case, invalid ones skipped; message ids keep their angle brackets
(``<abc@host>``); an unparsable ``Date`` is None with the defect ``bad_date``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from email import policy
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

from parsers.mail.decoding import FOLDED_LINE, decode_words, unsurrogate

_MSG_ID = re.compile(r"<[^<>\s]+>")


def raw_headers(msg: Message) -> list[tuple[str, str]]:
    try:
        return [(str(k), str(v)) for k, v in msg.raw_items()]
    except Exception:
        return []


def address_list(raw_values: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """(decoded name, lower-case address) pairs; invalid addresses are skipped."""
    result: list[tuple[str, str]] = []
    values = [FOLDED_LINE.sub(" ", unsurrogate(v)) for v in raw_values]
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


def single_address(raw: str | None) -> tuple[str, str | None]:
    if raw is None:
        return "", None
    value = FOLDED_LINE.sub(" ", unsurrogate(raw))
    try:
        name, addr = parseaddr(value)
    except Exception:
        name, addr = "", ""
    addr = addr.strip().lower()
    if not _valid_address(addr):
        pairs = address_list([raw])
        if pairs:
            return pairs[0]
        return decode_words(name).strip(), None
    return decode_words(name).strip(), addr


def message_ids(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return ()
    return tuple(_MSG_ID.findall(unsurrogate(raw)))


def message_id_header(raw: str | None) -> str | None:
    if raw is None:
        return None
    ids = message_ids(raw)
    if ids:
        return ids[0]
    value = unsurrogate(raw).strip()
    return value or None


def iso_date(raw: str | None, defects: list[str]) -> str | None:
    if not raw:
        return None
    try:
        return parsedate_to_datetime(unsurrogate(raw).strip()).isoformat()
    except Exception:
        defects.append("bad_date")
        return None


def _header_block(raw: bytes) -> Message:
    end = min((i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0), default=len(raw))
    return BytesHeaderParser(policy=policy.compat32).parsebytes(raw[: end + 2])


def message_id_of(raw: bytes) -> str | None:
    """The Message-ID of raw bytes (with angle brackets), reading the header block only."""
    try:
        value = _header_block(raw).get("Message-ID")
        return message_id_header(None if value is None else str(value))
    except Exception:
        return None


def sender_of(raw: bytes) -> str | None:
    """The address of the ``From`` header of raw bytes (lower case), reading the header block only;
    None when there is none or it is not an address."""
    try:
        froms = [v for k, v in _header_block(raw).raw_items() if k.lower() == "from"]
        return single_address(froms[0])[1] if froms else None
    except Exception:
        return None
