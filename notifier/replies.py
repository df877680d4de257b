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
from notifier.corrections import annotated
from notifier.export import value_text
from notifier.rendering import REPLY_STATUS_WORDS, environment, fr_date, fr_datetime, part_verdict, plural
from parsers.issues import row_of
from parsers.model import Issue, NarrativeReport, WorkbookReturn
from parsers.reference import catalogue
from parsers.text import one_line

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


@dataclass(frozen=True)
class ValueLine:
    """One indicator as we read it, for the clerk to compare with their sheet."""

    row: str  # the line on the sheet, "" when unknown
    label: str  # shortened
    indicator: str
    value: str  # with its unit: « 25 % », « 12 / 5 », « NC »; "" when blank
    observation: str  # shortened


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
    values: list[ValueLine] = field(default_factory=list)
    value_lines: list[str] = field(default_factory=list)  # the same, as aligned lines of text


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
        "status_word": REPLY_STATUS_WORDS.get(status, status),
        "missing": missing,
        # the annotated copies the reply step attaches (same rule: notifier.corrections.annotated)
        "corrections": [name for _, name in annotated(facts.workbooks, region.name)]
        if facts.outcome in ("accepted", "rejected") else [],
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
    views: list[PartView] = []
    for wb in facts.workbooks:
        values = _values(wb)
        views.append(PartView(
            "workbook", wb.file, wb.verdict, facts.versions.get(("workbook", wb.file, wb.sha256)),
            ("workbook", wb.file) in facts.identical, _workbook_summary(wb),
            [i for i in wb.issues if i.severity == "error"], [i for i in wb.issues if i.severity == "warning"],
            values, _aligned(values)))
    for nar in facts.narratives:
        covered = len(nar.points_covered)
        total = len(catalogue.NARRATIVE_POINTS)
        views.append(PartView(
            "narrative", nar.source, "accepted", facts.versions.get(("narrative", nar.source, nar.sha256)),
            ("narrative", nar.source) in facts.identical,
            f"{covered} point{'s' if covered > 1 else ''} de la notice "
            f"traité{'s' if covered > 1 else ''} sur {total}",
            [i for i in nar.issues if i.severity == "error"], [i for i in nar.issues if i.severity == "warning"]))
    return views


def _workbook_summary(wb: WorkbookReturn) -> str:
    """« accepté, 16 indicateurs renseignés sur 16 »; a rejected table is never summarised as
    complete: « à corriger, 3 erreurs ; 12 valeurs lues sur les 16 indicateurs à renseigner »."""
    local = catalogue.local_indicators()
    filled = sum(1 for ind in local if (e := wb.entries.get(ind.id)) is not None
                 and (e.value is not None or _written(e.raw) or bool(e.observation)))
    verdict = part_verdict("workbook", wb.verdict)
    if wb.verdict == "accepted":
        return f"{verdict}, {plural(filled, 'indicateur')} renseigné{'s' if filled > 1 else ''} sur {len(local)}"
    errors = len(wb.errors)
    read = sum(1 for ind in local if (e := wb.entries.get(ind.id)) is not None and e.value is not None)
    counted = f"{plural(read, 'valeur')} lue{'s' if read > 1 else ''}" if read else "aucune valeur lue"
    reading = f"{counted} sur les {len(local)} indicateurs à renseigner" if wb.entries else "aucune valeur lue"
    return f"{verdict}, {plural(errors, 'erreur')} ; {reading}"


_LABEL_WIDTH = 48  # characters, in the text part's aligned lines
_OBSERVATION_WIDTH = 60
_LABEL_IN_HTML = 110  # the HTML table wraps: more of each
_OBSERVATION_IN_HTML = 200


def _values(wb: WorkbookReturn) -> list[ValueLine]:
    """What we read for each indicator the region fills (and any national one it filled), in the
    order of its sheet; nothing when not one value or observation was read."""
    lines: list[tuple[int, ValueLine]] = []
    for ind in catalogue.indicators():
        entry = wb.entries.get(ind.id)
        if entry is None or (not ind.is_local and entry.value is None):
            continue
        row = row_of(entry.value_cell or entry.label_cell)
        if entry.value is not None:
            shown = value_text(ind, entry.value)
        else:
            shown = f"« {one_line(_raw_text(entry.raw), 30)} »" if _written(entry.raw) else ""
        lines.append((row or 10**6, ValueLine(
            str(row or ""), one_line(ind.label, _LABEL_IN_HTML), ind.id, shown,
            one_line(entry.observation or "", _OBSERVATION_IN_HTML))))
    if not any(v.value or v.observation for _, v in lines):
        return []
    return [v for _, v in sorted(lines, key=lambda pair: pair[0])]


def _aligned(values: list[ValueLine]) -> list[str]:
    """The values as lines of text, in columns: line, indicator, value, observation."""
    if not values:
        return []
    labels = [one_line(v.label, _LABEL_WIDTH) for v in values]
    label_w = max(len(label) for label in labels)
    value_w = max(len("valeur lue"), *(len(v.value or "(vide)") for v in values))
    rows = [("ligne", "indicateur", "valeur lue", "observation")] + [
        (v.row, label, v.value or "(vide)", one_line(v.observation, _OBSERVATION_WIDTH))
        for v, label in zip(values, labels, strict=True)]
    return [f"{r:>5}  {lab:<{label_w}}  {val:>{value_w}}  {obs}".rstrip() for r, lab, val, obs in rows]


def _raw_text(raw: object) -> str:
    """A cell as typed, numbers written the French way (« 4,5 », « 125 »)."""
    if isinstance(raw, float) and not isinstance(raw, bool):
        return str(int(raw)) if raw.is_integer() else f"{raw:.10g}".replace(".", ",")
    return str(raw)


def _written(raw: object) -> bool:
    return raw is not None and str(raw).strip() != ""


def _dossier_state(dossier: DossierFacts | None) -> tuple[str, list[str]]:
    """The dossier's status after this message, and what it still lacks, in words."""
    if dossier is None:
        return "missing", ["le tableau de bord (annexe 2)", "l'analyse qualitative"]
    missing = missing_parts(dossier.status, dossier.workbook_verdict, dossier.narrative_received)
    return dossier.status, missing
