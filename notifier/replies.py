"""The French answer to a region's message: what was received, what is wrong, what is missing.

The pipeline hands over the facts of the message (:class:`ReplyFacts`: plain data, no session,
no journey); :func:`draft_reply` turns them into a :class:`ReplyDraft` (recipients, subject, text
and HTML), or None when the message must not be answered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from intake.config.settings import Campaign, RegionConfig, Settings
from notifier.conversation import ConversationFacts, answer_blocks, missing_parts
from notifier.rendering import STATUS_WORDS, environment, fr_date, fr_datetime
from parsers.model import Issue, NarrativeReport, WorkbookReturn
from parsers.reference import catalogue

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class ReplyDraft:
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    text: str
    html: str
    attachments: tuple[tuple[str, bytes, str], ...] = ()  # (file name, data, content type)


@dataclass(frozen=True)
class DossierFacts:
    """The region's dossier once the message is recorded."""

    status: str  # store.queries.dossiers.dossier_status
    workbook_verdict: str | None  # of the latest table received; None: none received
    narrative_received: bool


@dataclass(frozen=True)
class ReplyFacts:
    """What the reply to one message needs to know, as plain data."""

    outcome: str
    received_at: datetime
    subject: str
    from_addr: str | None
    reply_to: tuple[str, ...] = ()
    message_issues: tuple[Issue, ...] = ()
    region: RegionConfig | None = None
    campaign: Campaign | None = None
    late: bool = False
    workbooks: tuple[WorkbookReturn, ...] = ()
    narratives: tuple[NarrativeReport, ...] = ()
    versions: Mapping[tuple[str, str, str], int] = field(default_factory=dict)  # (kind, file, sha256) -> version
    identical: frozenset[tuple[str, str]] = frozenset()  # (kind, file) identical to the latest version
    dossier: DossierFacts | None = None
    conversation: ConversationFacts | None = None  # what the message asked (notifier.conversation)


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


def draft_reply(facts: ReplyFacts, settings: Settings) -> ReplyDraft | None:
    to = facts.reply_to or ((facts.from_addr,) if facts.from_addr else ())
    to = tuple(a for a in to if a)
    if not to:
        return None
    context: dict[str, object] = {
        "outcome": facts.outcome,
        "received": fr_datetime(facts.received_at),
        "subject": facts.subject,
        "mailbox": settings.mailbox_address,
        "sender": facts.from_addr or "",
        "message_issues": list(facts.message_issues),
        "answers": [],
    }
    if any(i.code == "unauthenticated_sender" for i in facts.message_issues):
        return None  # From may be forged: answering would write to whoever was impersonated
    if facts.outcome == "quarantined" or facts.region is None or facts.campaign is None:
        subject = "Message non rattaché à une région – conventions d'objectifs"
        return _render("quarantined", context, to, (), subject)

    campaign, region = facts.campaign, facts.region
    talk = facts.conversation
    attachments: tuple[tuple[str, bytes, str], ...] = ()
    if talk is not None:
        context["answers"] = answer_blocks(talk, settings.mailbox_address, ".txt.j2")
        context["answers_html"] = answer_blocks(talk, settings.mailbox_address, ".html.j2")
        if "template" in talk.answered and talk.template is not None and talk.template_name:
            attachments = ((talk.template_name, talk.template, XLSX),)
    cc = tuple(c for c in region.contacts if c not in to)
    if talk is not None and facts.outcome in ("answered", "forwarded"):
        context.update({"region": region.name, "year": campaign.year, "answered": list(talk.answered),
                        "extension": "extension" in talk.intents})
        handed = talk.forwarded or "extension" in talk.intents
        subject = f"Bilan {campaign.year} – {region.name} : " + (
            "votre message est transmis à la coordination" if handed and not talk.answered else
            "réponse à votre message")
        return _render("conversation", context, to, cc, subject, attachments)
    parts = _parts(facts)
    status, missing = _dossier_state(facts.dossier)
    general_errors = [i for i in facts.message_issues if i.severity == "error"]
    n_errors = sum(len(p.errors) for p in parts) + len(general_errors)
    context.update({
        "region": region.name,
        "campaign": campaign,
        "year": campaign.year,
        "deadline": fr_date(campaign.deadline),
        "late": facts.late,
        "parts": parts,
        "n_errors": n_errors,
        "general_errors": general_errors,
        "general_warnings": [i for i in facts.message_issues if i.severity == "warning"],
        "status": status,
        "status_word": STATUS_WORDS.get(status, status),
        "missing": missing,
    })
    verdict = "à corriger" if facts.outcome == "rejected" else "accusé de réception"
    subject = f"Bilan {campaign.year} – {region.name} : {verdict}"
    return _render("reply", context, to, cc, subject, attachments)


def _render(name: str, context: dict[str, object], to: tuple[str, ...], cc: tuple[str, ...],
            subject: str, attachments: tuple[tuple[str, bytes, str], ...] = ()) -> ReplyDraft:
    env = environment()
    context = {**context, "subject_line": subject}
    text = env.get_template(f"{name}.txt.j2").render(context)
    html = env.get_template(f"{name}.html.j2").render({**context, "answers": context.get("answers_html", [])})
    return ReplyDraft(to=to, cc=cc, subject=subject, text=text, html=html, attachments=attachments)


def _parts(facts: ReplyFacts) -> list[PartView]:
    local_total = len(catalogue.local_indicators())
    views: list[PartView] = []
    for wb in facts.workbooks:
        filled = sum(1 for ind in catalogue.local_indicators()
                     if (e := wb.entries.get(ind.id)) is not None and (e.value is not None or e.observation))
        views.append(PartView(
            "workbook", wb.file, wb.verdict, facts.versions.get(("workbook", wb.file, wb.sha256)),
            ("workbook", wb.file) in facts.identical,
            f"{filled} indicateur(s) local(aux) renseigné(s) sur {local_total}",
            [i for i in wb.issues if i.severity == "error"], [i for i in wb.issues if i.severity == "warning"]))
    for nar in facts.narratives:
        covered = len(nar.points_covered)
        views.append(PartView(
            "narrative", nar.source, "accepted", facts.versions.get(("narrative", nar.source, nar.sha256)),
            ("narrative", nar.source) in facts.identical,
            f"{covered} point(s) de la notice traité(s) sur {len(catalogue.NARRATIVE_POINTS)}",
            [i for i in nar.issues if i.severity == "error"], [i for i in nar.issues if i.severity == "warning"]))
    return views


def _dossier_state(dossier: DossierFacts | None) -> tuple[str, list[str]]:
    """The dossier's status after this message, and what it still lacks, in words."""
    if dossier is None:
        return "missing", ["le tableau de bord (annexe 2)", "l'analyse qualitative"]
    missing = missing_parts(dossier.status, dossier.workbook_verdict, dossier.narrative_received)
    return dossier.status, missing
