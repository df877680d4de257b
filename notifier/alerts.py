"""Alerts: short plain-text mails that tell the admins (``[alerts] emails``) something went wrong.

An alert is an outbox item of kind "alert" like any other mail, queued in the caller's
transaction, so it is committed together with the fact it reports. Its key is unique: the
same alert (same key) is queued once. The outbox sender never alerts about an alert.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from sqlalchemy.orm import Session

from intake.config.clock import PARIS
from intake.config.settings import Settings
from notifier.outbox import build_mail
from parsers.text import one_line
from store.models import InboundMessage
from store.queries.outbox import enqueue_outbox

AlertFn = Callable[[Session, str, str], None]

SUBJECT_PREFIX = "[Conventions d'objectifs – alerte] "
FOOTER = (
    "\n\n-- \n"
    "Message envoyé automatiquement par le service de collecte des bilans des conventions "
    "d'objectifs.\nVous le recevez parce que votre adresse figure dans la liste des "
    "destinataires des alertes ([alerts] emails)."
)


def queue_alert(session: Session, settings: Settings, *, key: str, subject: str, text: str) -> int | None:
    """Queue an alert to the admins: its outbox id; None when an alert with this key exists or
    nobody is listed."""
    recipients = list(settings.alert_emails)
    if not recipients:
        return None
    full_subject = subject if subject.startswith(SUBJECT_PREFIX) else SUBJECT_PREFIX + subject
    msg = build_mail(
        settings, to=recipients, subject=full_subject, text=text.rstrip() + FOOTER, auto_submitted="auto-generated",
    )
    return enqueue_outbox(
        session, key=f"alert:{key}"[:255], kind="alert", message_pk=None, recipients=recipients, cc=[],
        subject=full_subject, raw=msg.raw, mail_message_id=msg.message_id,
    )


def content_key(subject: str, text: str) -> str:
    """A key derived from the alert's content: the very same alert is queued once."""
    return hashlib.sha256(f"{subject}\n{text}".encode("utf-8", "surrogateescape")).hexdigest()[:48]


def alert_sink(settings: Settings) -> AlertFn:
    """The ``alert(session, subject, text)`` callable the outbox sender takes.

    The key is a digest of subject and text, so an alert naming one outbox item and one cause
    (as the sender's do) is queued once even if the same failure is reported again.
    """

    def alert(session: Session, subject: str, text: str) -> None:
        queue_alert(session, settings, key=content_key(subject, text), subject=subject, text=text)

    return alert


def queue_failed_alert(session: Session, settings: Settings, inbound_id: int, reason: str) -> int | None:
    """Queue the admins' mail about a message that could not be processed (``failed``).

    One alert per message and attempt count: a message failing again after ``reprocess`` alerts
    again. Queued in the caller's transaction.
    """
    inbound = session.get(InboundMessage, inbound_id)
    attempts = inbound.attempts if inbound is not None else 0
    sender = (inbound.from_addr or inbound.envelope_from or "?") if inbound is not None else "?"
    received = inbound.received_at.astimezone(PARIS).strftime("%d/%m/%Y à %H:%M") if inbound is not None else "?"
    text = (
        f"Le message n° {inbound_id} (reçu le {received}, de {one_line(sender, 200)}) n'a pas pu "
        f"être traité.\n\nErreur : {one_line(reason, 1000)}\n\n"
        "Il est conservé tel quel (état « en échec ») ; aucune réponse n'a été envoyée à l'expéditeur. "
        "Une fois la cause corrigée, relancez son traitement :\n\n"
        f"    conventions-intake reprocess {inbound_id}\n\n"
        "(ou « conventions-intake reprocess --failed » pour tous les messages en échec)."
    )
    return queue_alert(session, settings, key=f"failed:{inbound_id}:{attempts}",
                       subject=f"message n° {inbound_id} en échec", text=text)
