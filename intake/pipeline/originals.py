"""The original file of a stored version: found again in the raw message it came with, by its
SHA-256 (the store keeps each message byte for byte, not each file apart)."""

from __future__ import annotations

import contextlib
import hashlib

from sqlalchemy.orm import Session

from parsers.mail.mime import parse_message
from parsers.mail.tnef import is_tnef, tnef_attachments
from parsers.model import UnreadableFile
from store.models import InboundMessage, Submission


def original_file(session: Session, submission: Submission) -> tuple[str, bytes] | None:
    """(file name, bytes) of the version, or None when the message no longer holds it."""
    inbound = session.get(InboundMessage, submission.message_pk)
    if inbound is None:
        return None
    mail = parse_message(inbound.raw)
    candidates = list(mail.attachments)
    for attachment in mail.attachments:
        if is_tnef(attachment):
            with contextlib.suppress(UnreadableFile):
                candidates.extend(tnef_attachments(attachment.data))
    for attachment in candidates:
        if hashlib.sha256(attachment.data).hexdigest() == submission.sha256:
            return attachment.filename or submission.filename, attachment.data
    return None
