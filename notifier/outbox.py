"""The outbox: every outgoing mail is built once, queued in the store, then delivered.

A queued item's key is unique in the database, so the same reply can never be queued twice.
With no SMTP relay configured, queued mail is written as ``.eml`` files under the outbox folder
so a person can read it (``export_to_folder``, idempotent: one file per item), and that is its
delivery: the item is marked ``written`` and a relay configured later never sends it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from email import charset, policy
from email.encoders import encode_base64
from email.header import Header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from intake.config.settings import Settings
from notifier.replies import ReplyDraft
from parsers.model import MailMessage
from store.models import InboundMessage, OutboxItem
from store.queries.outbox import enqueue_outbox, mark_written

LOOP_HEADER = "X-Conventions-Intake-Loop"
SENDER_NAME = "Conventions d'objectifs – collecte des bilans"
# UTF-8 bodies as they are, or in quoted-printable when a line is long; never base64 (the
# registry's default for UTF-8), so that the raw .eml stays readable.
_UTF8_8BIT = charset.Charset("utf-8")
_UTF8_8BIT.body_encoding = None  # type: ignore[assignment]  # None: no transfer encoding (typeshed says int)
_UTF8_QP = charset.Charset("utf-8")
_UTF8_QP.body_encoding = charset.QP
_UTF8_QP.header_encoding = charset.QP  # "=?utf-8?q?Accus=C3=A9?=": the words stay legible
_SHORT_LINE = 78
# Serialised without refolding: the classic generator folds a header longer than 78 characters even
# where it cannot (a long Message-ID goes to a line of its own, « In-Reply-To: » then « <id> »,
# which reads back with a leading space); our values are already folded where they need to be.
_WIRE = policy.compat32.clone(max_line_length=998)
_MAX_REFERENCES = 900  # characters: References stays within SMTP's 998 per line


def sender_address(settings: Settings) -> str:
    return settings.smtp.sender if settings.smtp and settings.smtp.sender else settings.mailbox_address


def build_mail(
    settings: Settings,
    *,
    to: Sequence[str],
    cc: Sequence[str] = (),
    subject: str,
    text: str,
    html: str | None = None,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    attachments: Iterable[tuple[str, bytes, str]] = (),
    auto_submitted: str = "auto-replied",
    now: datetime | None = None,
    message_id: str | None = None,
) -> Message:
    """An RFC 5322 message marked as automatic, so that robots do not answer it.

    Built with the ``email`` package's classic classes (policy ``compat32``): the modern API
    parses every header on assignment and refolds it on output, 7.5 ms for an acknowledgement
    against 3 ms (docs/performance.md). Bodies are UTF-8, in quoted-printable when a line is long,
    attachments in base64, non-ASCII header text in RFC 2047 words and file names in RFC 2231 parameters.
    """
    sender = sender_address(settings)
    domain = sender.rpartition("@")[2] or "localhost"
    body: Message = _text_part(text, "plain")
    if html is not None:
        body = MIMEMultipart("alternative", _subparts=[_inner(body), _inner(_text_part(html, "html"))])
    files = list(attachments)
    msg: Message = body
    if files:
        msg = MIMEMultipart("mixed", _subparts=[_inner(body)])
        for filename, data, content_type in files:
            maintype, _, subtype = content_type.partition("/")
            part = MIMEBase(maintype, subtype)
            part.set_payload(data)
            encode_base64(part)
            _inner(part)
            part.add_header("Content-Disposition", "attachment",
                            filename=filename if filename.isascii() else ("utf-8", "", filename))
            msg.attach(part)
    msg["From"] = formataddr((SENDER_NAME, sender), charset="utf-8")
    msg["To"] = _header("To", ", ".join(to))
    if cc:
        msg["Cc"] = _header("Cc", ", ".join(cc))
    msg["Subject"] = _header("Subject", subject)
    msg["Date"] = format_datetime(now or datetime.now(UTC))
    msg["Message-ID"] = message_id or make_msgid(domain=domain)
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = _references([*references, in_reply_to])
    msg["Auto-Submitted"] = auto_submitted
    msg["X-Auto-Response-Suppress"] = "All"
    msg[LOOP_HEADER] = settings.mailbox_address
    msg.policy = _WIRE
    return msg


def _references(ids: list[str]) -> str:
    """The thread's last ten message ids, the oldest left out as needed to stay on one line."""
    kept = ids[-10:]
    while len(kept) > 1 and len(" ".join(kept)) > _MAX_REFERENCES:
        kept.pop(0)
    return " ".join(kept)


def _text_part(text: str, subtype: str) -> Message:
    """UTF-8 text as it is (8bit) when every line is short, as the ``email`` package's own choice
    would be; in quoted-printable otherwise (SMTP limits a line to 998 bytes)."""
    part = MIMENonMultipart("text", subtype, charset="utf-8")
    short = all(len(line) <= _SHORT_LINE for line in text.splitlines())
    part.set_payload(text, _UTF8_8BIT if short else _UTF8_QP)
    return part


def _inner(part: Message) -> Message:
    """A part inside a multipart: MIME-Version belongs to the message's own header only."""
    del part["MIME-Version"]
    return part


def _header(name: str, value: str) -> str:
    """ASCII text as it is; anything else as RFC 2047 encoded words (UTF-8), folded after ``name``."""
    return value if value.isascii() else Header(value, _UTF8_QP, header_name=name).encode()


def reply_message_id(settings: Settings, inbound: InboundMessage) -> str:
    """The reply's Message-ID, derived from the region's message, not drawn at random.

    The same message answered again — after a database restored from a backup, or processed by a
    second installation — gets a reply with the same Message-ID, which mail stores and clients that
    de-duplicate absorb (docs/reliability.md). One message has one reply (``reply:<id>``), or one
    more once released from quarantine, hence the suffix.
    """
    sender = sender_address(settings)
    seed = f"{settings.mailbox_address}\n{inbound.dedup_key}" + ("\nreleased" if inbound.released_by else "")
    digest = hashlib.sha256(seed.encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return f"<reply.{digest}@{sender.rpartition('@')[2] or 'localhost'}>"


def queue_reply(
    session: Session, *, settings: Settings, inbound: InboundMessage, mail: MailMessage, draft: ReplyDraft
) -> OutboxItem | None:
    """Queue the answer to ``inbound``; None when an answer was already queued for it."""
    key = f"reply:{inbound.id}" + (":released" if inbound.released_by else "")
    msg = build_mail(
        settings, to=draft.to, cc=draft.cc, subject=draft.subject, text=draft.text, html=draft.html,
        in_reply_to=mail.message_id, references=mail.references, attachments=draft.attachments,
        message_id=reply_message_id(settings, inbound),
    )
    return enqueue_outbox(
        session, key=key, kind="reply", message_pk=inbound.id,
        recipients=list(draft.to), cc=list(draft.cc), subject=draft.subject, raw=msg.as_bytes(),
        mail_message_id=str(msg["Message-ID"]),
    )


def eml_path(folder: Path, item: OutboxItem) -> Path:
    return folder / f"{item.id:06d}-{item.kind}.eml"


def export_to_folder(session: Session, folder: Path, now: datetime | None = None) -> list[Path]:
    """Write every queued item to the folder and mark it ``written``; returns the files written.

    The caller commits. Several threads (worker, scheduler, bot) may export at once: each writes
    its own temporary file, the atomic rename makes the last one win harmlessly, and the status
    changes once (a conditional update).
    """
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for item in session.scalars(select(OutboxItem).where(OutboxItem.status == "queued").order_by(OutboxItem.id)):
        path = eml_path(folder, item)
        if not path.exists():
            with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{path.stem}-", suffix=".tmp",
                                             delete=False) as fh:
                fh.write(item.raw)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(fh.name, path)
            written.append(path)
        mark_written(session, item.id, now or datetime.now(UTC))
    return written
