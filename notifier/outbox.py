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
from email.message import EmailMessage
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
) -> EmailMessage:
    """An RFC 5322 message marked as automatic, so that robots do not answer it."""
    sender = sender_address(settings)
    domain = sender.rpartition("@")[2] or "localhost"
    msg = EmailMessage()
    msg["From"] = formataddr((SENDER_NAME, sender))
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now or datetime.now(UTC))
    msg["Message-ID"] = message_id or make_msgid(domain=domain)
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = " ".join([*references, in_reply_to][-10:])
    msg["Auto-Submitted"] = auto_submitted
    msg["X-Auto-Response-Suppress"] = "All"
    msg[LOOP_HEADER] = settings.mailbox_address
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for filename, data, content_type in attachments:
        maintype, _, subtype = content_type.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg


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
