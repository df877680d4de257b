"""What the admins' chat bot changes: manual reminders, extensions, releases, the digest on demand.

Synchronous (the bot runs these in a worker thread). Every change is recorded on the dossier with
who did it (``actor``, e.g. ``"telegram:111111111 alice"``) and when, so ``/region`` shows it.
Answers are Telegram HTML with every dynamic value escaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from intake.chat.views import esc, state_of
from intake.config.clock import local_date
from intake.config.settings import Campaign
from intake.pipeline.journey import Result
from intake.pipeline.requests import RequestView, Verdict, decide, grant_pending, list_requests
from intake.pipeline.services import Services
from notifier.calendar import extension_refusal
from notifier.digest import Digest, build_digest, previous_digest_at
from notifier.export import to_xlsx
from notifier.reminders import queue_manual_reminder, reminder_key
from notifier.rendering import fr_day, plural
from store.queries.dossiers import set_extension

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class Answer:
    ok: bool
    text: str  # Telegram HTML


# ---------------------------------------------------------------------- /relancer


def reminder_question(services: Services, campaign: Campaign, code: str, now: datetime) -> Answer:
    """Whether a manual reminder can go to the region, and the question asked before sending it."""
    settings = services.settings
    with services.sessions() as session:
        state = state_of(session, settings, campaign, code, now)
    region = settings.region(code)
    contacts = region.contacts if region else ()
    if state.exempt:
        return Answer(False, f"{esc(state.name)} est exemptée pour cette campagne : pas de relance.")
    if state.dossier == "complete":
        return Answer(False, f"Le dossier de {esc(state.name)} est complet : pas de relance.")
    if not contacts:
        return Answer(False, f"Aucun contact configuré pour {esc(state.name)} ([[regions]] contacts) : "
                             "relance impossible.")
    situation = f"en retard de {plural(state.days_late, 'jour')}" if state.late else \
        f"date limite le {fr_day(state.deadline)}"
    return Answer(True, f"Envoyer maintenant une relance à <b>{esc(state.name)}</b> ({situation}) ?\n"
                        f"Destinataires : {esc(', '.join(contacts))}")


def send_manual_reminder(services: Services, campaign: Campaign, code: str, asked_at: int, actor: str,
                         now: datetime) -> Answer:
    """Queue the region's reminder now, under ``reminder:<campaign>:<region>:manual:<asked_at>``.

    ``asked_at`` is the moment the admin asked (epoch seconds): pressing the button twice queues
    one reminder, the outbox key being unique."""
    settings = services.settings
    question = reminder_question(services, campaign, code, now)
    if not question.ok:
        return question
    region = settings.region(code)
    assert region is not None
    key = f"{reminder_key(campaign.id, code, 'manual')}:{asked_at}"
    with services.sessions.begin() as session:
        state = state_of(session, settings, campaign, code, now)
        if queue_manual_reminder(session, settings, campaign, state, key, actor, now) is None:
            return Answer(False, f"Cette relance à {esc(state.name)} est déjà partie.")
    if services.after_commit is not None:
        try:  # wakes the outbox sender (or writes the folder); the reminder is committed either way
            services.after_commit()
        except Exception:
            services.log.exception("manual reminder %s queued; after_commit failed", key)
    return Answer(True, f"📨 Relance à <b>{esc(state.name)}</b> mise en file d'envoi "
                        f"({esc(', '.join(region.contacts))}).")


# ---------------------------------------------------------------------- /prolonger


def extend(services: Services, campaign: Campaign, code: str, until: date, actor: str, now: datetime) -> Answer:
    refusal = extension_refusal(campaign, until, local_date(now))
    if refusal is not None:
        return Answer(False, f"Impossible : {esc(refusal)}.")
    settings = services.settings
    with services.sessions.begin() as session:
        dossier = set_extension(session, campaign.id, code, until, actor=actor, at=now)
        answered = grant_pending(session, settings, dossier, until, actor=actor, now=now)
        state = state_of(session, settings, campaign, code, now)
    if answered and services.after_commit is not None:
        try:
            services.after_commit()
        except Exception:
            services.log.exception("extension answer queued; after_commit failed")
    granted = "\nSa demande de délai est accordée ; la réponse part dans le fil de son message." if answered else ""
    return Answer(True, f"📅 <b>{esc(state.name)}</b> : date limite prolongée au {fr_day(until)}.{granted}")


# ---------------------------------------------------------------------- /demandes


def request_line(r: RequestView) -> str:
    """One request as the bot shows it (Telegram HTML)."""
    if r.kind == "extension_request":
        asked = f"jusqu'au {fr_day(r.date_asked)}" if r.date_asked else \
            f"{plural(r.days_asked, 'jour')}" if r.days_asked else "sans date précisée"
        head = f"📅 <b>{esc(r.region_name)}</b> demande un délai {esc(asked)}"
    else:
        head = f"✉️ <b>{esc(r.region_name)}</b> : message à lire"
    replies = f"\n({plural(r.replies, 'réponse')} de la région dans ce fil)" if r.replies else ""
    return f"{head} (demande n° {r.id}, reçue le {fr_day(r.at.date())})\n« {esc(r.excerpt[:400])} »{replies}"


def open_requests(services: Services) -> list[RequestView]:
    return list_requests(services)


def decide_request(services: Services, event_id: int, verdict: Verdict, actor: str, now: datetime) -> Answer:
    """A coordinator's button: grant or refuse a request for more time, or close a forwarded message."""
    decision = decide(services, event_id, verdict, actor=actor, now=now)
    icon = {"grant": "✅", "refuse": "⛔", "close": "☑️"}[verdict]
    return Answer(decision.ok, (icon + " " if decision.ok else "Impossible : ") + esc(decision.text) + ".")


# ---------------------------------------------------------------------- /liberer


def release_answer(result: Result, region_name: str) -> Answer:
    errors = sum(1 for i in result.issues if i.severity == "error")
    outcome = {
        "accepted": "✅ envoi accepté",
        "rejected": f"❌ envoi refusé ({plural(errors, 'erreur')})",
        "quarantined": "toujours en quarantaine",
        "failed": "⚠️ échec du traitement",
        "duplicate": "déjà reçu (doublon)",
        "ignored": "ignoré (message automatique)",
    }.get(result.outcome, result.outcome)
    text = f"Message n° {result.inbound_id} attribué à <b>{esc(region_name)}</b> : {esc(outcome)}."
    if result.reply is not None:
        text += "\nLa réponse à l'expéditeur est en file d'envoi."
    return Answer(result.outcome not in ("failed",), text)


# ---------------------------------------------------------------------- /synthese


def synthesis(services: Services, now: datetime) -> tuple[Digest, list[tuple[str, bytes]]]:
    """The digest as it stands now (changes since the last one queued) and one workbook per campaign."""
    with services.sessions() as session:
        digest = build_digest(session, services.settings, now, previous_digest_at(session, now))
    stamp = local_date(now).isoformat()
    files = [(f"consolidation-{c.campaign.id}-{stamp}.xlsx", to_xlsx(c.consolidation)) for c in digest.campaigns]
    return digest, files
