"""The account e-mail: a one-time link to choose a password (new account or forgotten password)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from intake.config.settings import Settings
from notifier.outbox import build_mail
from notifier.rendering import fr_datetime
from store.queries.outbox import enqueue_outbox

SUBJECTS = {
    "welcome": "Votre compte sur l'espace de dépôt des bilans des conventions d'objectifs",
    "reset": "Choisir un nouveau mot de passe – bilans des conventions d'objectifs",
}


def account_text(purpose: str, email: str, link: str, expires_at: datetime) -> str:
    if purpose == "welcome":
        opening = (f"Bonjour,\n\nUn compte a été ouvert pour {email} sur l'espace de dépôt des bilans annuels "
                   "des conventions d'objectifs.\nPour choisir votre mot de passe, ouvrez ce lien :")
    else:
        opening = (f"Bonjour,\n\nUne demande de nouveau mot de passe a été faite pour {email}.\n"
                   "Pour choisir un nouveau mot de passe, ouvrez ce lien :")
    return (f"{opening}\n\n  {link}\n\nCe lien ne sert qu'une fois et reste valable jusqu'au "
            f"{fr_datetime(expires_at)}.\nSi vous n'êtes pas à l'origine de cette demande, ignorez ce message.\n")


def queue_account_mail(session: Session, settings: Settings, *, email: str, purpose: str, link: str,
                       token_id: int, expires_at: datetime) -> int | None:
    """Queue the mail carrying the link (key ``account:<token id>``: one mail per link); its outbox id."""
    subject = SUBJECTS[purpose]
    msg = build_mail(settings, to=[email], subject=subject, text=account_text(purpose, email, link, expires_at),
                     auto_submitted="auto-generated")
    return enqueue_outbox(session, key=f"account:{token_id}", kind="account", message_pk=None, recipients=[email],
                          cc=[], subject=subject, raw=msg.raw, mail_message_id=msg.message_id)
