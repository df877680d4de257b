"""Reading a delivery report (bounce): which of our mails failed, for whom, and why.

Pure: raw bytes in, a :class:`Bounce` out. Works on RFC 3464 reports (message/delivery-status with
the returned message or its headers) and on the plain-text bounces some servers still send,
by looking for the Message-IDs the report quotes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_MESSAGE_ID = re.compile(rb"^(?:message-id|in-reply-to|references)\s*:\s*((?:\s*<[^<>\s]{1,900}>)+)",
                         re.IGNORECASE | re.MULTILINE)
_ANGLE = re.compile(rb"<[^<>\s]{1,900}>")
_RECIPIENT = re.compile(rb"^(?:final|original)-recipient\s*:\s*rfc822\s*;\s*<?([^\s<>;]+@[^\s<>;]+)>?",
                        re.IGNORECASE | re.MULTILINE)
_STATUS = re.compile(rb"^status\s*:\s*([245]\.\d{1,3}\.\d{1,3})", re.IGNORECASE | re.MULTILINE)
_DIAGNOSTIC = re.compile(rb"^diagnostic-code\s*:\s*(.+(?:\r?\n[ \t].+)*)", re.IGNORECASE | re.MULTILINE)
_ACTION = re.compile(rb"^action\s*:\s*(\w+)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Bounce:
    message_ids: tuple[str, ...]  # every Message-ID the report quotes (ours among them)
    recipients: tuple[str, ...]  # the addresses that failed, lower case
    status: str | None  # "5.1.1"
    diagnostic: str  # the remote server's words, one line
    permanent: bool  # a 5.x.x status, or no status but "failed"


def read_bounce(raw: bytes, limit: int = 2_000_000) -> Bounce:
    data = raw[:limit]
    ids: list[str] = []
    for match in _MESSAGE_ID.finditer(data):
        for ident in _ANGLE.findall(match.group(1)):
            text = ident.decode("ascii", "replace")
            if text not in ids:
                ids.append(text)
    recipients = tuple(dict.fromkeys(m.group(1).decode("ascii", "replace").lower()
                                     for m in _RECIPIENT.finditer(data)))
    status_match = _STATUS.search(data)
    status = status_match.group(1).decode("ascii") if status_match else None
    diag_match = _DIAGNOSTIC.search(data)
    diagnostic = " ".join(diag_match.group(1).decode("utf-8", "replace").split()) if diag_match else ""
    action = _ACTION.search(data)
    failed = action is not None and action.group(1).lower() == b"failed"
    permanent = status.startswith("5") if status else failed
    return Bounce(tuple(ids), recipients, status, diagnostic[:500], permanent)
