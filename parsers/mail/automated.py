"""Is a received message automated, so that it must never be answered?

``automated_reason`` runs small rules in order and returns the reason code of the first one
that fires (short English codes, stable: they are logged and stored), or None for a message a
person wrote. The caller may still store or quarantine an automated message; it only must not
reply, which is what prevents mail loops and replies to robots.

Rules and the decisions behind them:

``loop_header``
    Our own ``X-Conventions-Intake-Loop`` header, whatever its value: one of our replies came back.
``own_address``
    ``From`` or ``Sender`` is one of ``own_addresses`` (case-insensitive).
``auto_submitted``
    ``Auto-Submitted`` with any value other than ``no`` (RFC 3834).
``null_return_path``
    ``Return-Path: <>`` (or empty): the envelope sender of bounces and auto-replies.
``delivery_report``
    ``multipart/report`` (delivery status or read receipt), a ``message/delivery-status``,
    ``message/disposition-notification`` or ``message/feedback-report`` part, or an
    ``X-Failed-Recipients`` header.
``system_sender``
    ``From`` or ``Sender`` local part is MAILER-DAEMON or postmaster, or starts (ignoring ``-``,
    ``_``, ``.``) with noreply, donotreply, nepasrepondre or bounce. Decision: a no-reply
    address cannot read an answer and may bounce it, so it is never answered even if it
    happened to carry a workbook (e.g. a platform notification).
``precedence``
    ``Precedence`` bulk, junk, list or auto_reply (also auto-reply).
``mailing_list``
    ``List-Id`` or ``List-Unsubscribe`` present. Caveat: a region writing through a Sympa list
    gets no automatic answer; its return is still stored by the caller.
``auto_reply_header``
    ``X-Autoreply``, ``X-Autorespond``, ``X-Autoresponder`` present with a value other than
    ``no``/``false``.
``out_of_office``
    Subject starting with an auto-reply prefix (« Réponse automatique », « Absence du bureau »,
    « Automatic reply », « Out of Office », « Auto: », « Abwesend »...). Decision, prudent: the
    prefix alone is not enough when the message carries files other than images (a person may
    keep a strange subject while sending a return); it is enough with no such files, or when
    an Exchange hint is also present (``X-MS-Exchange-Inbox-Rules-Loop``,
    ``X-Auto-Response-Suppress`` with OOF or All). Those hints alone never flag a message:
    Exchange adds them to ordinary mail too (rules, forwarding, some connectors).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from parsers.model import MailMessage

LOOP_HEADER = "X-Conventions-Intake-Loop"

Rule = Callable[[MailMessage, frozenset[str]], "str | None"]

_SYSTEM_LOCAL_EXACT = frozenset({"mailerdaemon", "postmaster"})
_SYSTEM_LOCAL_PREFIX = ("noreply", "donotreply", "nepasrepondre", "bounce", "mailerdaemon")
_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply", "auto-reply"})
_REPORT_TYPES = frozenset({"message/delivery-status", "message/disposition-notification",
                           "message/feedback-report"})
_OOF_SUBJECT = re.compile(
    r"^\s*(r[ée]ponse automatique|absence du bureau|absent du bureau|absence|absent|"
    r"automatic reply|auto[- ]?reply|autoreply|out of (the )?office|auto|abwesend|abwesenheitsnotiz|"
    r"message automatique|notification d'absence)\s*[:\-]",
    re.IGNORECASE,
)
_ADDRESS = re.compile(r"[^\s<>\"',;:]+@[^\s<>\"',;:]+")


def _addresses_of(msg: MailMessage, *names: str) -> list[str]:
    found: list[str] = []
    for name in names:
        for value in msg.header_all(name):
            found.extend(a.lower() for a in _ADDRESS.findall(value))
    if msg.from_addr:
        found.append(msg.from_addr)
    return found


def _ctype_header(msg: MailMessage) -> str:
    return (msg.header("Content-Type") or "").lower()


def loop_header(msg: MailMessage, own: frozenset[str]) -> str | None:
    return "loop_header" if msg.header(LOOP_HEADER) is not None else None


def own_address(msg: MailMessage, own: frozenset[str]) -> str | None:
    if not own:
        return None
    return "own_address" if any(a in own for a in _addresses_of(msg, "From", "Sender")) else None


def auto_submitted(msg: MailMessage, own: frozenset[str]) -> str | None:
    for value in msg.header_all("Auto-Submitted"):
        token = value.split(";", 1)[0].split("(", 1)[0].strip().lower()
        if token and token != "no":
            return "auto_submitted"
    return None


def null_return_path(msg: MailMessage, own: frozenset[str]) -> str | None:
    for value in msg.header_all("Return-Path"):
        if value.replace(" ", "") in ("<>", "", "<<>>"):
            return "null_return_path"
    return None


def delivery_report(msg: MailMessage, own: frozenset[str]) -> str | None:
    ctype = _ctype_header(msg)
    if ctype.startswith("multipart/report") or any(ctype.startswith(t) for t in _REPORT_TYPES):
        return "delivery_report"
    if any(a.content_type in _REPORT_TYPES for a in msg.attachments):
        return "delivery_report"
    if msg.header("X-Failed-Recipients") is not None:
        return "delivery_report"
    return None


def system_sender(msg: MailMessage, own: frozenset[str]) -> str | None:
    for address in _addresses_of(msg, "From", "Sender"):
        local = re.sub(r"[-_.]", "", address.split("@", 1)[0])
        if local in _SYSTEM_LOCAL_EXACT or local.startswith(_SYSTEM_LOCAL_PREFIX):
            return "system_sender"
    return None


def precedence(msg: MailMessage, own: frozenset[str]) -> str | None:
    values = (v.strip().lower() for v in msg.header_all("Precedence"))
    return "precedence" if any(v in _PRECEDENCE for v in values) else None


def mailing_list(msg: MailMessage, own: frozenset[str]) -> str | None:
    if msg.header("List-Id") is not None or msg.header("List-Unsubscribe") is not None:
        return "mailing_list"
    return None


def auto_reply_header(msg: MailMessage, own: frozenset[str]) -> str | None:
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Auto-Reply"):
        for value in msg.header_all(name):
            if value.strip().lower() not in ("no", "false", "0"):
                return "auto_reply_header"
    return None


def _exchange_hint(msg: MailMessage) -> bool:
    if msg.header("X-MS-Exchange-Inbox-Rules-Loop") is not None:
        return True
    suppress = " ".join(msg.header_all("X-Auto-Response-Suppress")).lower()
    return "oof" in suppress or "all" in suppress


def out_of_office(msg: MailMessage, own: frozenset[str]) -> str | None:
    if not _OOF_SUBJECT.match(msg.subject):
        return None
    files = [a for a in msg.attachments if not a.content_type.startswith("image/")]
    if not files or _exchange_hint(msg):
        return "out_of_office"
    return None


RULES: tuple[Rule, ...] = (
    loop_header,
    own_address,
    auto_submitted,
    null_return_path,
    delivery_report,
    system_sender,
    precedence,
    mailing_list,
    auto_reply_header,
    out_of_office,
)


def automated_reason(msg: MailMessage, *, own_addresses: Iterable[str] = ()) -> str | None:
    """The reason code of the first rule that flags ``msg`` as automated, else None."""
    own = frozenset(a.strip().lower() for a in own_addresses if a and a.strip())
    for rule in RULES:
        reason = rule(msg, own)
        if reason is not None:
            return reason
    return None
