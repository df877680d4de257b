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
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from intake.config.settings import Settings
from notifier import mime
from notifier.mime import OutgoingMail
from notifier.replies import ReplyDraft
from parsers.model import MailMessage
from store.models import InboundMessage, OutboxItem
from store.queries.outbox import enqueue_outbox, mark_written

LOOP_HEADER = "X-Conventions-Intake-Loop"
SENDER_NAME = "Conventions d'objectifs – collecte des bilans"
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
    reply_to: str | None = None,
) -> OutgoingMail:
    """An RFC 5322 message marked as automatic, so that robots do not answer it (written by
    :mod:`notifier.mime`: UTF-8 bodies, quoted-printable when a line is long, attachments in base64,
    non-ASCII header text in RFC 2047 words and file names in RFC 2231 parameters)."""
    sender = sender_address(settings)
    domain = sender.rpartition("@")[2] or "localhost"
    message_id = mime.header("Message-ID", message_id or make_msgid(domain=domain))
    headers = [("From", formataddr((SENDER_NAME, sender), charset="utf-8")),
               ("To", mime.addresses("To", to))]
    if cc:
        headers.append(("Cc", mime.addresses("Cc", cc)))
    headers += [("Subject", mime.header("Subject", subject)),
                ("Date", format_datetime(now or datetime.now(UTC))),
                ("Message-ID", message_id)]
    if in_reply_to:
        headers += [("In-Reply-To", mime.header("In-Reply-To", in_reply_to)),
                    ("References", mime.header("References", _references([*references, in_reply_to])))]
    if reply_to:
        headers.append(("Reply-To", mime.addresses("Reply-To", [reply_to])))
    headers += [("Auto-Submitted", auto_submitted), ("X-Auto-Response-Suppress", "All"),
                (LOOP_HEADER, mime.header(LOOP_HEADER, settings.mailbox_address))]
    raw = mime.write(headers, mime.text_part(text, "plain"), None if html is None else mime.text_part(html, "html"),
                     [mime.attachment_part(name, data, content_type) for name, data, content_type in attachments])
    return OutgoingMail(raw=raw, message_id=message_id)


def _references(ids: list[str]) -> str:
    """The thread's last ten message ids, the oldest left out as needed to stay on one line."""
    kept = ids[-10:]
    while len(kept) > 1 and len(" ".join(kept)) > _MAX_REFERENCES:
        kept.pop(0)
    return " ".join(kept)


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
) -> int | None:
    """Queue the answer to ``inbound``: its outbox id; None when an answer was already queued for it."""
    key = f"reply:{inbound.id}" + (":released" if inbound.released_by else "")
    msg = build_mail(
        settings, to=draft.to, cc=draft.cc, subject=draft.subject, text=draft.text, html=draft.html,
        in_reply_to=mail.message_id, references=mail.references, attachments=draft.attachments,
        message_id=reply_message_id(settings, inbound),
    )
    return enqueue_outbox(
        session, key=key, kind="reply", message_pk=inbound.id,
        recipients=list(draft.to), cc=list(draft.cc), subject=draft.subject, raw=msg.raw,
        mail_message_id=msg.message_id,
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
