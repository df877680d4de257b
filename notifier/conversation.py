"""Answers to a region's questions, drafted from plain facts (no session, no pipeline).

Each intent of :data:`parsers.mail.intents.INTENTS` that is answered automatically has one template
pair ``templates/answers/<intent>.txt.j2`` / ``.html.j2``; ``forwarded`` and ``extension`` say the
message was handed to a person. :func:`answer_blocks` renders them in the order of the intents
table, for the reply to a message without a return (``conversation.*.j2``) and for the reply to a
return that also asked something (``reply.*.j2``). The tables are documented in
``docs/conversation.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from notifier.rendering import STATUS_WORDS, environment, fr_date, fr_datetime, part_verdict
from parsers.reference import catalogue

# Intents answered from the dossier or the campaign, in the order of the answers.
ANSWERED = ("receipt", "deadline", "format", "contact", "template")
WORKBOOK_FORMATS = "Excel (.xlsx, .xlsm, .xls) ou LibreOffice (.ods)"
NARRATIVE_FORMATS = "Word (.docx), LibreOffice (.odt), PDF, RTF, texte, ou directement dans le corps du message"


@dataclass(frozen=True)
class VersionFact:
    kind: str  # "workbook" | "narrative"
    filename: str
    version: int
    received_at: datetime
    verdict: str
    late: bool
    current: bool


@dataclass(frozen=True)
class ConversationFacts:
    """What the answers to one message need, as plain data."""

    intents: tuple[str, ...]  # recognised (parsers.mail.intents), in the table's order
    forwarded: bool  # some of the message goes to a person
    deadline: date  # the region's own (extension included)
    extended: bool
    campaign_deadline: date
    status: str  # the dossier's (store.queries.dossiers.dossier_status)
    versions: tuple[VersionFact, ...] = ()  # every version received, oldest first
    workbook_verdict: str | None = None
    narrative_received: bool = False
    date_asked: date | None = None  # an extension request's
    days_asked: int | None = None
    coordinators: tuple[tuple[str, str], ...] = ()  # (name, address)
    template_name: str | None = None  # the workbook attached to the answer
    template: bytes | None = field(default=None, repr=False)
    prefilled: bool = False
    observations_of: int | None = None  # the template starts from the observations of this year's return
    thread_reply: bool = False  # an answer to one of our messages about a request

    @property
    def answered(self) -> tuple[str, ...]:
        return tuple(i for i in ANSWERED if i in self.intents)


def missing_parts(status: str, workbook_verdict: str | None, narrative_received: bool) -> list[str]:
    """What a dossier still lacks, in words."""
    missing: list[str] = []
    if workbook_verdict is None:
        missing.append("le tableau de bord (annexe 2, fichier Excel)")
    elif workbook_verdict != "accepted":
        missing.append("un tableau de bord corrigé")
    if not narrative_received:
        missing.append("l'analyse qualitative")
    return missing


def answer_context(facts: ConversationFacts, mailbox: str) -> dict[str, Any]:
    return {
        "answered": list(facts.answered),
        "forwarded": facts.forwarded,
        "extension": "extension" in facts.intents,
        "thread_reply": facts.thread_reply,
        "date_asked": fr_date(facts.date_asked) if facts.date_asked else None,
        "days_asked": facts.days_asked,
        "region_deadline": fr_date(facts.deadline),
        "extended": facts.extended,
        "campaign_deadline": fr_date(facts.campaign_deadline),
        "dossier_word": STATUS_WORDS.get(facts.status, facts.status),
        "dossier_status": facts.status,
        "missing": missing_parts(facts.status, facts.workbook_verdict, facts.narrative_received),
        "versions": [{
            "part": "Tableau de bord" if v.kind == "workbook" else "Analyse qualitative",
            "name": v.filename, "version": v.version, "received": fr_datetime(v.received_at),
            "verdict": part_verdict(v.kind, v.verdict), "late": v.late, "current": v.current,
        } for v in facts.versions],
        "coordinators": [{"name": n or a, "email": a} for n, a in facts.coordinators],
        "workbook_formats": WORKBOOK_FORMATS,
        "narrative_formats": NARRATIVE_FORMATS,
        "points": [p.title for p in catalogue.NARRATIVE_POINTS],
        "template_name": facts.template_name,
        "prefilled": facts.prefilled,
        "observations_of": facts.observations_of,
        "mailbox": mailbox,
    }


def answer_blocks(facts: ConversationFacts, mailbox: str, suffix: str) -> list[str]:
    """The answers, each rendered from ``answers/<intent><suffix>`` (".txt.j2" or ".html.j2")."""
    env = environment()
    context = answer_context(facts, mailbox)
    names = list(facts.answered)
    if "extension" in facts.intents:
        names.append("extension")
    if facts.forwarded:
        names.append("forwarded")
    return [env.get_template(f"answers/{name}{suffix}").render(context).strip() for name in names]
