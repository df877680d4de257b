"""What the admins' chat bot says: short French messages in Telegram HTML, built from the store.

Every function here is synchronous (the bot calls them in a worker thread) and returns text in
Telegram's HTML parse mode where **every dynamic value is escaped** (:func:`esc`). Lists are cut
(:func:`cut`) with the count of what was left out, and a whole message never exceeds
:data:`MAX_CHARS` (:func:`fit`). Statuses and lateness come from
:func:`notifier.calendar.campaign_states`, the same as ``status``, reminders and digests.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from intake.config.clock import PARIS, local_date
from intake.config.settings import Campaign, Settings
from intake.pipeline.quarantine import Quarantined
from notifier.calendar import RegionState, campaign_states
from notifier.digest import Digest
from notifier.rendering import STATUS_WORDS, fr_day, fr_moment, issue_location, part_verdict, plural
from parsers.model import Region
from parsers.reference import catalogue
from parsers.reference.regions import find_region_in_text, match_region
from parsers.text import fold
from store.models import DossierEvent, Submission
from store.queries.dossiers import dossier_events, dossier_submissions, dossiers_by_region, latest_event

MAX_CHARS = 4000  # Telegram refuses more than 4096 characters; keep a margin
MAX_LINES = 12  # items of a list shown before "… et N autres"
STATUS_ICONS = {"complete": "✅", "incomplete": "🟡", "rejected": "🔴", "missing": "⚪"}

COMMANDS: tuple[tuple[str, str], ...] = (
    ("statut", "Vue d'ensemble de la campagne"),
    ("retards", "Régions en retard"),
    ("region", "Dossier d'une région : /region bretagne"),
    ("relancer", "Relancer une région maintenant : /relancer bretagne"),
    ("quarantaine", "Messages mis de côté"),
    ("liberer", "Attribuer un message à une région : /liberer 12 bretagne"),
    ("prolonger", "Prolonger le délai : /prolonger bretagne 30/06/2014"),
    ("demandes", "Demandes des régions : délais demandés, messages transmis"),
    ("synthese", "Point d'étape et tableau consolidé"),
    ("aide", "Liste des commandes"),
)


def esc(value: object) -> str:
    """Any dynamic value, made safe for Telegram HTML."""
    return html.escape(str(value), quote=False)


def cut(lines: Sequence[str], limit: int = MAX_LINES, what: str = "autre") -> list[str]:
    """The first ``limit`` lines, then "… et N autres" for the rest."""
    if len(lines) <= limit:
        return list(lines)
    rest = len(lines) - limit
    return [*lines[:limit], f"… et {rest} {what}{'s' if rest > 1 else ''}"]


def fit(text: str, limit: int = MAX_CHARS) -> str:
    """The text, cut at a line boundary under ``limit`` characters, saying that it was cut."""
    if len(text) <= limit:
        return text
    tail = "\n… (message tronqué)"
    kept: list[str] = []
    size = len(tail)
    for line in text.split("\n"):
        if size + len(line) + 1 > limit:
            break
        kept.append(line)
        size += len(line) + 1
    if not kept:  # never cut inside a line: a tag or an entity could be broken
        return "… (message trop long)"
    return "\n".join(kept) + tail


def help_text() -> str:
    lines = ["<b>Commandes</b>"] + [f"/{name} – {esc(text)}" for name, text in COMMANDS]
    lines.append("\nVous pouvez aussi écrire simplement « où en est la Bretagne ? ».")
    return "\n".join(lines)


# ---------------------------------------------------------------------- regions


def current_campaign(settings: Settings, now: datetime) -> Campaign:
    return settings.campaign_for(now)


def resolve_region(text: str, campaign: Campaign, *, free_text: bool = False) -> Region | None:
    """A region as people type it ("bretagne", "Île de France", "idf", "PACA", "53")."""
    text = text.strip()
    if not text:
        return None
    region = match_region(text, campaign.geography)
    if region is None and (free_text or len(text.split()) > 1):
        region = find_region_in_text(text, campaign.geography)
    return region


def unknown_region(text: str) -> str:
    return f"Région inconnue : « {esc(text)} ». Essayez un nom (« bretagne », « idf ») ou un code (« 53 »)."


def state_of(session: Session, settings: Settings, campaign: Campaign, code: str, now: datetime) -> RegionState:
    return next(s for s in campaign_states(session, settings, campaign, now) if s.code == code)


# ---------------------------------------------------------------------- /statut, /retards


def deadline_line(campaign: Campaign, now: datetime) -> str:
    left = (campaign.deadline - local_date(now)).days
    if left > 0:
        when = f"dans {plural(left, 'jour')}"
    elif left == 0:
        when = "aujourd'hui"
    else:
        when = f"dépassée depuis {plural(-left, 'jour')}"
    return f"Date limite : {fr_day(campaign.deadline)} ({when})"


def status_text(session: Session, settings: Settings, campaign: Campaign, now: datetime) -> str:
    states = campaign_states(session, settings, campaign, now)
    lines = [f"<b>Bilan {campaign.year}</b> – campagne {esc(campaign.id)}", deadline_line(campaign, now),
             f"Situation au {fr_moment(now)}, {plural(len(states), 'région')} :"]
    for status in ("complete", "incomplete", "rejected", "missing"):
        n = sum(1 for s in states if s.dossier == status)
        lines.append(f"{STATUS_ICONS[status]} {esc(STATUS_WORDS[status])} : {n}")
    late = [s for s in states if s.late]
    lines.append(f"⏰ en retard : {len(late)}")
    extended = [s for s in states if s.extended]
    if extended:
        lines.append(f"📅 délai prolongé : {len(extended)}")
        lines += cut([f"  • {esc(s.name)} jusqu'au {fr_day(s.deadline)}" for s in extended], 5, "autre")
    exempt = sum(1 for s in states if s.exempt)
    if exempt:
        lines.append(f"exemptées : {exempt}")
    if late:
        lines.append("Détail des retards : /retards")
    return fit("\n".join(lines))


def late_text(session: Session, settings: Settings, campaign: Campaign, now: datetime) -> str:
    states = sorted((s for s in campaign_states(session, settings, campaign, now) if s.late),
                    key=lambda s: (-s.days_late, fold(s.name)))
    if not states:
        return f"Aucune région en retard (bilan {campaign.year}). {deadline_line(campaign, now)}."
    dossiers = dossiers_by_region(session, campaign.id)
    lines = [f"<b>{plural(len(states), 'région')} en retard</b> – bilan {campaign.year}"]
    items = []
    for s in states:
        dossier = dossiers.get(s.code)
        reminder = latest_event(session, dossier.id, ("reminder",)) if dossier else None
        contact = f"dernier envoi {fr_moment(s.last_received)}" if s.last_received else "aucun envoi"
        if reminder is not None:
            contact += f", relancée le {fr_moment(reminder.at)}"
        items.append(f"• <b>{esc(s.name)}</b> ({esc(s.code)}) : {plural(s.days_late, 'jour')}, "
                     f"{esc(STATUS_WORDS.get(s.dossier, s.dossier))} – {contact}")
    return fit("\n".join(lines + cut(items)))


# ---------------------------------------------------------------------- /region


def region_text(session: Session, settings: Settings, campaign: Campaign, code: str, now: datetime) -> str:
    state = state_of(session, settings, campaign, code, now)
    dossier = dossiers_by_region(session, campaign.id).get(code)
    status = f"{STATUS_ICONS.get(state.dossier, '')} {esc(STATUS_WORDS.get(state.dossier, state.dossier))}"
    deadline = f"date limite {fr_day(state.deadline)}" + (" (prolongée)" if state.extended else "")
    lines = [f"<b>{esc(state.name)}</b> ({esc(code)}) – bilan {campaign.year}",
             f"Dossier : {status} · {deadline}"]
    if state.exempt:
        lines.append("Région exemptée pour cette campagne.")
    if state.late:
        lines.append(f"⏰ En retard de {plural(state.days_late, 'jour')}.")
    if dossier is None:
        lines.append("Aucun envoi reçu.")
        return fit("\n".join(lines))
    subs = dossier_submissions(session, dossier.id)
    lines += _part_lines("Tableau de bord", [s for s in subs if s.kind == "workbook"])
    lines += _part_lines("Analyse qualitative", [s for s in subs if s.kind == "narrative"])
    events = [e for e in dossier_events(session, dossier.id) if e.kind != "return_received"]
    if events:
        lines.append("<b>Historique</b>")
        recent = [_event_line(e, campaign) for e in reversed(events)]
        lines += cut(recent, 8, "événement")
    return fit("\n".join(lines))


def _part_lines(title: str, subs: list[Submission]) -> list[str]:
    if not subs:
        return [f"<b>{title}</b> : rien reçu"]
    latest = max(subs, key=lambda s: s.version)
    versions = ", ".join(f"v{s.version} {s.received_at.astimezone(PARIS):%d/%m} {part_verdict(s.kind, s.verdict)}"
                         + (" (en retard)" if s.late else "") for s in sorted(subs, key=lambda s: s.version))
    lines = [f"<b>{title}</b> : « {esc(latest.filename)} », version {latest.version} du "
             f"{fr_moment(latest.received_at)} – {part_verdict(latest.kind, latest.verdict)}",
             f"Versions : {esc(versions)}"]
    errors = [i for i in latest.issues if i.get("severity") == "error"]
    if errors:
        lines.append(f"{plural(len(errors), 'erreur')} à corriger :")
        lines += cut([f"  • {_issue_text(i)}" for i in errors], 6, "autre")
    if latest.kind == "narrative":
        titles = {p.id: p.title for p in catalogue.NARRATIVE_POINTS}
        missing = [titles.get(str(p), str(p)) for p in latest.details.get("points_missing", [])]
        if missing:
            lines.append("Points de la notice non traités :")
            lines += cut([f"  • {esc(t)}" for t in missing], 6, "autre")
    return lines


def _issue_text(issue: dict[str, Any]) -> str:
    where = issue_location(issue, compact=True)
    message = str(issue.get("message") or issue.get("code") or "")
    if len(message) > 200:
        message = message[:199] + "…"
    return (f"<code>{esc(where)}</code> " if where else "") + esc(message)


def _event_line(event: DossierEvent, campaign: Campaign) -> str:
    detail = event.detail or {}
    text = {
        "reminder": "relance envoyée" + (" (manuelle)" if "manual" in str(detail.get("step", "")) else ""),
        "quarantine_released": f"message n° {detail.get('message')} sorti de quarantaine",
        "exempt": "région exemptée",
        "exempt_lifted": "exemption levée",
        "bounce": "un courriel du service n'a pas été remis",
    }.get(event.kind, event.kind)
    if event.kind == "extension":
        until = detail.get("until")
        text = f"délai prolongé au {_day_text(str(until))}" if until else "délai ramené à celui de la campagne"
    by = f" – par {event.actor}" if event.actor and event.actor != "system" else ""
    return f"• {fr_moment(event.at)} {esc(text + by)}"


def _day_text(iso: str) -> str:
    try:
        return fr_day(date.fromisoformat(iso))
    except ValueError:
        return iso


# ---------------------------------------------------------------------- /quarantaine, /synthese


def quarantine_text(items: list[Quarantined], total: int | None = None) -> str:
    if not items:
        return "Aucun message en quarantaine."
    lines = [f"<b>{plural(total or len(items), 'message')} en quarantaine</b>"]
    rows = [f"• n° {m.id} – {fr_moment(m.received_at)} – {esc(m.from_addr or 'expéditeur inconnu')}"
            f"\n  « {esc(m.subject[:120])} »" + (f" – {esc(m.reason[:120])}" if m.reason else "") for m in items]
    lines += cut(rows, 10, "autre")
    lines.append("Pour en attribuer un : /liberer &lt;n°&gt; &lt;région&gt;")
    return fit("\n".join(lines))


def digest_text(digest: Digest) -> str:
    if not digest.campaigns:
        return "Aucune campagne en cours."
    lines = [f"<b>Point d'étape au {fr_moment(digest.now)}</b>"]
    for c in digest.campaigns:
        counts = c.counts
        lines.append(f"\n<b>Bilan {c.campaign.year}</b> – {counts['complete']} complet"
                     f"{'s' if counts['complete'] > 1 else ''} sur {counts['regions']}, "
                     f"{counts['incomplete']} incomplet{'s' if counts['incomplete'] > 1 else ''}, "
                     f"{counts['rejected']} à corriger, {counts['missing']} sans envoi, {counts['late']} en retard")
        if c.late:
            lines.append("En retard :")
            lines += cut([f"  • {esc(s.name)} ({plural(s.days_late, 'jour')})" for s in c.late], 8, "autre")
        if c.rejected:
            lines.append("À corriger :")
            lines += cut([f"  • {esc(r.name)} : « {esc(r.filename)} » v{r.version}, {plural(r.errors, 'erreur')}"
                          for r in c.rejected], 8, "autre")
    lines.append("\nLe tableau consolidé suit en pièce jointe.")
    return fit("\n".join(lines))
