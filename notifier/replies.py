"""The French answer to a region's message: what was received, what is wrong, what is missing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache

import jinja2

from intake.config import PARIS, Settings
from intake.journey import Journey, ReplyDraft
from parsers import catalogue
from parsers.model import Issue
from store import queries
from templates import TEMPLATE_DIR

MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
          "novembre", "décembre")
STATUS_WORDS = {
    "complete": "complet",
    "incomplete": "incomplet",
    "rejected": "à corriger",
    "missing": "aucun envoi reçu",
}


def fr_date(value: date) -> str:
    day = "1er" if value.day == 1 else str(value.day)
    return f"{day} {MONTHS[value.month - 1]} {value.year}"


def fr_datetime(value: datetime) -> str:
    local = value.astimezone(PARIS)
    return f"{fr_date(local.date())} à {local:%H:%M}"


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The template environment (immutable once built): HTML templates are autoescaped."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=lambda name: bool(name and name.endswith(".html.j2")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["fr_date"] = fr_date
    env.filters["fr_datetime"] = fr_datetime
    return env


@dataclass
class PartView:
    kind: str  # "workbook" | "narrative"
    name: str
    verdict: str
    version: int | None
    identical: bool
    summary: str
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)


def draft_reply(journey: Journey, settings: Settings) -> ReplyDraft | None:
    mail = journey.mail
    if mail is None:
        return None
    to = tuple(a for a in (mail.reply_to or ((mail.from_addr,) if mail.from_addr else ())) if a)
    if not to:
        return None
    context: dict[str, object] = {
        "outcome": journey.outcome,
        "received": fr_datetime(journey.inbound.received_at),
        "subject": mail.subject,
        "mailbox": settings.mailbox_address,
        "sender": mail.from_addr or "",
        "message_issues": journey.message_issues,
    }
    if any(i.code == "unauthenticated_sender" for i in journey.message_issues):
        return None  # From may be forged: answering would write to whoever was impersonated
    if journey.outcome == "quarantined" or journey.region is None or journey.campaign is None:
        subject = "Message non rattaché à une région – conventions d'objectifs"
        return _render("quarantined", context, to, (), subject)

    campaign, region = journey.campaign, journey.region
    parts = _parts(journey)
    status, missing = _dossier_state(journey)
    n_errors = sum(len(p.errors) for p in parts) + sum(1 for i in journey.message_issues if i.severity == "error")
    context.update({
        "region": region.name,
        "campaign": campaign,
        "year": campaign.year,
        "deadline": fr_date(campaign.deadline),
        "late": journey.late,
        "parts": parts,
        "n_errors": n_errors,
        "general_errors": [i for i in journey.message_issues if i.severity == "error"],
        "general_warnings": [i for i in journey.message_issues if i.severity == "warning"],
        "status": status,
        "status_word": STATUS_WORDS.get(status, status),
        "missing": missing,
    })
    verdict = "à corriger" if journey.outcome == "rejected" else "accusé de réception"
    subject = f"Bilan {campaign.year} – {region.name} : {verdict}"
    cc = tuple(c for c in region.contacts if c not in to)
    return _render("reply", context, to, cc, subject)


def _render(name: str, context: dict[str, object], to: tuple[str, ...], cc: tuple[str, ...],
            subject: str) -> ReplyDraft:
    env = environment()
    context = {**context, "subject_line": subject}
    text = env.get_template(f"{name}.txt.j2").render(context)
    html = env.get_template(f"{name}.html.j2").render(context)
    return ReplyDraft(to=to, cc=cc, subject=subject, text=text, html=html)


def _parts(journey: Journey) -> list[PartView]:
    versions = {(s.kind, s.filename, s.sha256): s.version for s in journey.submissions}
    identical = {(i.kind, i.filename) for i in journey.identical}
    local_total = len(catalogue.local_indicators())
    views: list[PartView] = []
    for wb in journey.workbooks:
        filled = sum(1 for ind in catalogue.local_indicators()
                     if (e := wb.entries.get(ind.id)) is not None and (e.value is not None or e.observation))
        views.append(PartView(
            "workbook", wb.file, wb.verdict, versions.get(("workbook", wb.file, wb.sha256)),
            ("workbook", wb.file) in identical,
            f"{filled} indicateur(s) local(aux) renseigné(s) sur {local_total}",
            [i for i in wb.issues if i.severity == "error"], [i for i in wb.issues if i.severity == "warning"]))
    for nar in journey.narratives:
        covered = len(nar.points_covered)
        views.append(PartView(
            "narrative", nar.source, "accepted", versions.get(("narrative", nar.source, nar.sha256)),
            ("narrative", nar.source) in identical,
            f"{covered} point(s) de la notice traité(s) sur {len(catalogue.NARRATIVE_POINTS)}",
            [i for i in nar.issues if i.severity == "error"], [i for i in nar.issues if i.severity == "warning"]))
    return views


def _dossier_state(journey: Journey) -> tuple[str, list[str]]:
    """The dossier's status after this message, and what it still lacks, in words."""
    dossier = journey.dossier
    if dossier is None:
        return "missing", ["le tableau de bord (annexe 2)", "l'analyse qualitative"]
    workbook = queries.latest_submission(journey.session, dossier.id, "workbook")
    narrative = queries.latest_submission(journey.session, dossier.id, "narrative")
    missing: list[str] = []
    if workbook is None:
        missing.append("le tableau de bord (annexe 2, fichier Excel)")
    elif workbook.verdict != "accepted":
        missing.append("un tableau de bord corrigé")
    if narrative is None:
        missing.append("l'analyse qualitative")
    return dossier.status, missing
