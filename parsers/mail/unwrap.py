"""Attachments that hold other attachments, opened: ``winmail.dat``, ``.zip``, ``.eml``, ``.msg``.

``unwrap`` replaces, in a message's attachments:

* each ``winmail.dat`` by the files Outlook put inside it (:mod:`parsers.mail.tnef`);
* each ``.zip`` by its files (:mod:`parsers.mail.archives`; a .7z or .rar by an issue);
* each message saved as a file (``.eml``, or ``message/rfc822`` found in an archive; Outlook's
  ``.msg``, :mod:`parsers.mail.outlook`) by its attachments, marked forwarded and named
  "message.eml › tableau.xlsx", and its body among ``Unwrapped.texts``, as for a message forwarded
  as an attachment (``parsers.mail.mime`` handles the ``message/rfc822`` parts).

Files found inside are unwrapped in turn, up to ``MAX_DEPTH`` levels (an archive directly inside
an archive is refused by :mod:`parsers.mail.archives` itself); deeper, they are left as they are.
All the archives of one message together may inflate at most ``limits.max_total_uncompressed``
bytes: an archive past that budget gets ``archive_too_large``. An attachment over
``max_attachment_bytes`` is left as it is, for the caller to report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from parsers.issues import make_issue, reason_words
from parsers.mail.archives import SEPARATOR, ArchiveLimits, expand_archive
from parsers.mail.forwards import Forwarded, forwarded_bodies
from parsers.mail.mime import parse_message
from parsers.mail.outlook import is_outlook_message, read_outlook_message
from parsers.mail.tnef import is_tnef, tnef_attachments
from parsers.model import Attachment, Issue, UnreadableFile

MAX_DEPTH = 3  # levels of files within files that are opened
_HEADER_LINE = re.compile(rb"^[A-Za-z][A-Za-z0-9-]{0,76}:[ \t]")


@dataclass(frozen=True)
class Unwrapped:
    attachments: tuple[Attachment, ...]
    texts: tuple[Forwarded, ...]  # the bodies of the messages saved as files, and of those they forward
    issues: tuple[Issue, ...]


def unwrap(attachments: tuple[Attachment, ...], limits: ArchiveLimits, max_attachment_bytes: int) -> Unwrapped:
    """The attachments with every container replaced by what it holds (see the module docstring)."""
    found: list[Attachment] = []
    texts: list[Forwarded] = []
    issues: list[Issue] = []
    budget = limits.max_total_uncompressed
    pending = [(attachment, 0) for attachment in attachments]
    pending.reverse()  # a stack, popped in the attachments' order
    while pending:
        attachment, depth = pending.pop()
        if depth >= MAX_DEPTH or len(attachment.data) > max_attachment_bytes:
            found.append(attachment)
            continue
        inner: list[Attachment] | None = None
        if is_tnef(attachment):
            try:
                inner = [replace(a, forwarded=attachment.forwarded) for a in tnef_attachments(attachment.data)]
            except UnreadableFile as exc:
                issues.append(make_issue("unsupported_attachment", file=attachment.filename or "winmail.dat",
                                         reason=f"fichier Outlook winmail.dat illisible : {reason_words(exc.reason)}"))
                continue
        elif is_saved_message(attachment):
            mail = parse_message(attachment.data)
            inner = _inside(attachment, mail.attachments, "message.eml")
            texts += [Forwarded(mail.from_addr, mail.body_text), *forwarded_bodies(mail.body_text, mail.subject)]
        elif is_outlook_message(attachment):
            try:
                outlook = read_outlook_message(attachment.data)
            except UnreadableFile as exc:
                issues.append(make_issue("unsupported_attachment", file=attachment.filename or "message.msg",
                                         reason=f"message Outlook (.msg) illisible : {reason_words(exc.reason)}"))
                continue
            inner = _inside(attachment, outlook.attachments, "message.msg")
            texts += [Forwarded(outlook.sender, outlook.body), *forwarded_bodies(outlook.body, outlook.subject)]
        else:
            expanded = expand_archive(attachment, replace(limits, max_total_uncompressed=max(budget, 0)))
            if expanded is None:
                found.append(attachment)
                continue
            issues.extend(expanded.issues)
            inner = list(expanded.attachments)
            budget -= sum(len(a.data) for a in inner)
        pending.extend((a, depth + 1) for a in reversed(inner))
    return Unwrapped(tuple(found), tuple(t for t in texts if t.text.strip()), tuple(issues))


def _inside(container: Attachment, attachments: tuple[Attachment, ...], default: str) -> list[Attachment]:
    """The attachments of a saved message, named after it and marked forwarded."""
    prefix = (container.filename or default) + SEPARATOR
    return [replace(a, filename=prefix + (a.filename or "(sans nom)"), forwarded=True) for a in attachments]


def is_saved_message(attachment: Attachment) -> bool:
    """An e-mail saved as a file and attached (``.eml``, or ``message/rfc822`` out of an archive)."""
    name = (attachment.filename or "").strip().lower()
    declared = name.endswith(".eml") or attachment.content_type == "message/rfc822"
    return declared and bool(_HEADER_LINE.match(attachment.data.lstrip(b"\r\n")[:200]))
