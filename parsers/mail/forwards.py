"""The bodies of the messages a body forwards, as their authors wrote them.

When a region's assistant forwards the prefect's message, the prefect's text (often the
qualitative analysis itself) sits below a separator: ours for a forwarded ``message/rfc822``
(``parsers.mail.mime.FORWARD_MARKER``, same wording as Thunderbird's), or the one the sender's
client wrote inline:

* ``---------- Forwarded message ---------`` (Gmail), ``-------- Message transféré --------``
  (Thunderbird), ``Début du message réexpédié :`` / ``Begin forwarded message:`` (Apple Mail);
* Outlook's header block ``De : … / Envoyé : … / À : … / Objet : …`` (``From:/Sent:/To:/Subject:``),
  also after ``-----Message d'origine-----`` / ``-----Original Message-----``.

Outlook writes the same block when one replies, and a reply's quoted thread is not the sender's
text (it may be our own reply, which names the points of the analysis): a block counts as a
forward only when the message's subject says so (``TR :``, ``Fwd:``, ``Fw:``, ``Transf :``).

``forwarded_bodies`` returns each forwarded message (:class:`Forwarded`: the address of its
sender when its header block gives one, and its text without the header lines), in order (a
forward of a forward gives two); what follows a forwarded text's own quoted thread or signature
is cut later by ``parsers.documents.narrative.own_text``. The caller leaves out the messages the
service itself sent (a region forwarding our reply back to us).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DASHED = re.compile(
    r"^\s*-{2,}\s*(forwarded message|message transf[ée]r[ée]|message r[ée]exp[ée]di[ée])\s*-{2,}\s*$",
    re.IGNORECASE,
)
_APPLE = re.compile(r"^\s*(d[ée]but du message r[ée]exp[ée]di[ée]|begin forwarded message)\s*:\s*$", re.IGNORECASE)
_ORIGINAL = re.compile(r"^\s*-{2,}\s*(original message|message d'origine)\s*-{2,}\s*$", re.IGNORECASE)
# "De : X", "*From:* X" (Outlook's HTML made text), "Envoyé :", "Date :"...
_HEADER = re.compile(
    r"^\s*\**\s*(de|from|envoy[ée]( le)?|sent|date|[àa]|to|cc|cci|bcc|objet|sujet|subject|importance"
    r"|r[ée]pondre [àa]|reply-to)\s*\**\s*:\**\s*(.*)$",
    re.IGNORECASE,
)
_FROM = re.compile(r"^\s*\**\s*(de|from)\s*\**\s*:\**\s*\S", re.IGNORECASE)
_SUBJECT = re.compile(r"^\s*\**\s*(objet|sujet|subject)\s*\**\s*:", re.IGNORECASE)
_PREFIX = r"\s*(\[\d+\])?\s*:"  # "TR :", "Fwd[2]:"
_FORWARD_SUBJECT = re.compile(rf"^\s*(tr|fwd?|transf|wg|rv){_PREFIX}", re.IGNORECASE)
_ADDRESS = re.compile(r"[\w.+'-]+@[\w-]+(\.[\w-]+)+")
_BLOCK_LINES = 8  # an Outlook header block: From, then Subject within these many lines
MAX_SCANNED_CHARS = 2_000_000  # a body is searched for forwards up to there (the narrative reader's own cut)


@dataclass(frozen=True)
class Forwarded:
    sender: str | None  # lower-case address from the header block, None when it gives none
    text: str


def is_forward_subject(subject: str) -> bool:
    """Whether a subject says the message is a forward (``TR : …``, ``Fwd: RE: …``; ``RE: TR: …`` is a reply)."""
    return bool(_FORWARD_SUBJECT.match(subject))


def forwarded_bodies(body: str, subject: str = "") -> list[Forwarded]:
    """Each message forwarded in ``body`` (header lines removed), first forwarded first."""
    lines = body[:MAX_SCANNED_CHARS].splitlines()
    outlook = is_forward_subject(subject)
    found: list[tuple[int, int]] = []  # (first line of the separator, first line of the forwarded text)
    index = 0
    while index < len(lines):
        line = lines[index]
        if _DASHED.match(line) or _APPLE.match(line) or (outlook and _ORIGINAL.match(line)):
            text_start = _skip_headers(lines, index + 1)  # its header block is no new forward
            found.append((index, text_start))
            index = text_start
            continue
        if outlook and _FROM.match(line) and _outlook_block(lines, index):
            text_start = _skip_headers(lines, index)
            found.append((index, text_start))
            index = text_start
            continue
        index += 1
    bodies: list[Forwarded] = []
    for number, (separator, start) in enumerate(found):
        end = found[number + 1][0] if number + 1 < len(found) else len(lines)
        text = "\n".join(lines[start:end]).strip()
        if text:
            bodies.append(Forwarded(_sender(lines[separator:start]), text))
    return bodies


def _sender(header_lines: list[str]) -> str | None:
    for line in header_lines:
        if _FROM.match(line):
            address = _ADDRESS.search(line)
            return address.group(0).lower() if address else None
    return None


def _outlook_block(lines: list[str], index: int) -> bool:
    """A From line followed, within a few header lines, by a Subject line."""
    for line in lines[index + 1:index + _BLOCK_LINES]:
        if _SUBJECT.match(line):
            return True
        if not _HEADER.match(line):
            return False
    return False


def _skip_headers(lines: list[str], index: int) -> int:
    """The index of the first line after the header lines (and blank lines) starting at ``index``."""
    while index < len(lines) and not lines[index].strip():
        index += 1
    while index < len(lines) and _HEADER.match(lines[index]):
        index += 1
        while index < len(lines) and lines[index].startswith((" ", "\t")) and lines[index].strip():
            index += 1  # a folded header value
    return index
