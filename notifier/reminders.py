"""Reminders: what each region must still do, written for the person who must do it.

The calendar (which step is due, who is late) is :mod:`notifier.calendar`'s; this module only
decides who gets the step due today and drafts the mail. Rules:

- a region gets the **latest** step due for its own deadline (``calendar.due_step``);
- never when exempt; a ``before-N`` step only while its deadline has not passed and its dossier is
  not complete; an ``after-N`` step only when it is late (``RegionState.late``);
- never without contacts in the configuration (such regions are listed in one log line);
- at most once per region and step: the outbox key ``reminder:<campaign>:<region>:<step>`` is
  unique in the database, so a restart or a second instance cannot send it again. When an admin
  extended the region's deadline the key also names that deadline
  (``reminder:<campaign>:<region>:<step>:<YYYY-MM-DD>``): the new calendar's steps are new steps;
- coordinators are copied on the steps ``calendar.reminder_steps`` marks ``escalate``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy.orm import Session

from intake.config.clock import local_date
from intake.config.settings import Campaign, Settings
from notifier.calendar import RegionState, campaign_states, due_step
from notifier.last_year import last_year
from notifier.outbox import build_mail
from notifier.rendering import environment, fr_date, fr_datetime, issue_location
from notifier.template_workbook import build_template
from parsers.reference import catalogue
from store.models import Dossier, DossierEvent, OutboxItem, Submission
from store.queries.dossiers import (
    dossiers_by_region,
    get_or_create_dossier,
    latest_event,
    latest_submission,
    record_event,
)
from store.queries.outbox import enqueue_outbox, outbox_keys

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_LISTED = 10  # open errors listed one by one in a reminder; the rest are counted


@dataclass(frozen=True)
class ReminderDraft:
    region: str  # region code
    step: str  # "before-7", "after-8"
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    text: str
    html: str
    attachment: tuple[str, bytes, str]  # file name, content, content type
    campaign: str = ""
    key: str = ""  # the outbox key: at most one reminder per key, ever
    at: datetime | None = None  # the moment the decision was made (``now``)
    region_name: str = ""
    deadline: date | None = None
    escalate: bool = False

    def as_dict(self) -> dict[str, object]:
        """The ``remind --json`` object."""
        return {"campaign": self.campaign, "region": self.region, "step": self.step, "to": list(self.to),
                "cc": list(self.cc), "subject": self.subject, "text": self.text}


@dataclass(frozen=True)
class ReminderPlan:
    drafts: list[ReminderDraft] = field(default_factory=list)
    no_contacts: list[str] = field(default_factory=list)  # region codes due a reminder but with nobody to write to


def reminder_key(campaign_id: str, region: str, step: str, extended_deadline: date | None = None) -> str:
    key = f"reminder:{campaign_id}:{region}:{step}"
    return f"{key}:{extended_deadline.isoformat()}" if extended_deadline else key


def plan_reminders(session: Session, settings: Settings, campaign: Campaign, now: datetime) -> ReminderPlan:
    """The reminders due at ``now`` and not yet queued, and the regions left out for lack of contacts."""
    today = local_date(now)
    queued = outbox_keys(session, f"reminder:{campaign.id}:")
    dossiers = dossiers_by_region(session, campaign.id)
    plan = ReminderPlan()
    for state in campaign_states(session, settings, campaign, now):
        if state.exempt:
            continue
        step = due_step(campaign, state.deadline, now)
        if step is None:
            continue
        if step.after_deadline and not state.late:
            continue
        if not step.after_deadline and (state.dossier == "complete" or today > state.deadline):
            continue
        key = reminder_key(campaign.id, state.code, step.name, state.deadline if state.extended else None)
        if key in queued:
            continue
        region = settings.region(state.code)
        contacts = region.contacts if region else ()
        if not contacts:
            plan.no_contacts.append(state.code)
            continue
        cc = tuple(c.email for c in settings.coordinators if c.email not in contacts) if step.escalate else ()
        dossier = dossiers.get(state.code)
        plan.drafts.append(draft_reminder(session, settings, campaign, state, dossier, step.name, step.escalate,
                                  key, contacts, cc, now))
    return plan


def due_reminders(
    session: Session, settings: Settings, campaign: Campaign, now: datetime, log: logging.Logger | None = None
) -> list[ReminderDraft]:
    """Every reminder due at ``now`` for the campaign and not queued yet (nothing is written)."""
    plan = plan_reminders(session, settings, campaign, now)
    if plan.no_contacts:
        (log or logging.getLogger("conventions_intake.reminders")).warning(
            "reminders not sent for lack of contacts in the configuration: campaign=%s regions=%s",
            campaign.id, ",".join(plan.no_contacts))
    return plan.drafts


def send_reminders(session: Session, settings: Settings, drafts: list[ReminderDraft]) -> list[OutboxItem]:
    """Queue the drafts (one outbox item each, under its unique key) and note them on the dossiers.

    A draft whose key another process queued in the meantime is dropped silently.
    """
    items: list[OutboxItem] = []
    for draft in drafts:
        msg = build_mail(settings, to=draft.to, cc=draft.cc, subject=draft.subject, text=draft.text,
                         html=draft.html, attachments=[draft.attachment], auto_submitted="auto-generated",
                         now=draft.at, reply_to=settings.mailbox_address)
        item_id = enqueue_outbox(session, key=draft.key, kind="reminder", message_pk=None,
                                 recipients=list(draft.to), cc=list(draft.cc), subject=draft.subject,
                                 raw=msg.raw, mail_message_id=msg.message_id)
        if item_id is None:
            continue
        session.flush()
        dossier = get_or_create_dossier(session, draft.campaign, draft.region)
        record_event(session, dossier, "reminder", {
            "campaign": draft.campaign, "step": draft.step, "key": draft.key, "outbox": item_id,
            "to": list(draft.to), "cc": list(draft.cc), "at": draft.at.isoformat() if draft.at else None},
            at=draft.at)
        items.append(session.get_one(OutboxItem, item_id))
    return items


def queue_manual_reminder(session: Session, settings: Settings, campaign: Campaign, state: RegionState,
                          key: str, actor: str, now: datetime) -> OutboxItem | None:
    """A region's reminder sent now because an admin asked (the bot, the web), under ``key``: the late
    wording when the region is late; the dossier's history says who asked. None when that key was
    queued already (the same request made twice). The caller has checked that the region has contacts."""
    region = settings.region(state.code)
    assert region is not None and region.contacts
    dossier = dossiers_by_region(session, campaign.id).get(state.code)
    step = "after-manual" if state.late else "manual"
    draft = draft_reminder(session, settings, campaign, state, dossier, step, False, key, region.contacts, (), now)
    items = send_reminders(session, settings, [draft])
    if not items:
        return None
    event = latest_event(session, get_or_create_dossier(session, campaign.id, state.code).id, ("reminder",))
    if isinstance(event, DossierEvent):
        event.actor = actor[:255]
    return items[0]


# ---------------------------------------------------------------------- drafting


def draft_reminder(session: Session, settings: Settings, campaign: Campaign, state: RegionState,
                   dossier: Dossier | None, step: str, escalate: bool, key: str, to: tuple[str, ...],
                   cc: tuple[str, ...], now: datetime) -> ReminderDraft:
    """One region's reminder text and attachment (also used by the chat bot's manual reminder)."""
    workbook = latest_submission(session, dossier.id, "workbook") if dossier else None
    narrative = latest_submission(session, dossier.id, "narrative") if dossier else None
    previous = last_year(session, settings, campaign, state.code) if workbook is None else None
    carried = previous.observations() if previous is not None else {}  # the template's starting point
    after = step.startswith("after-")
    days_left = (state.deadline - local_date(now)).days
    context: dict[str, Any] = {
        "region": state.name,
        "year": campaign.year,
        "deadline": fr_date(state.deadline),
        "extended": state.extended,
        "after": after,
        "days_left": days_left,
        "days_late": state.days_late,
        "escalate": escalate,
        "coordinators": [c.name for c in settings.coordinators],
        "workbook": _workbook_view(workbook),
        "narrative": _narrative_view(narrative),
        "mailbox": settings.mailbox_address,
        "prefilled": workbook is not None,
        "observations_of": previous.campaign.year if previous is not None and carried else None,
    }
    if after:
        subject = (f"Bilan {campaign.year} – {state.name} : relance, dossier en retard de "
                   f"{state.days_late} jour{'s' if state.days_late > 1 else ''}")
    else:
        subject = f"Bilan {campaign.year} – {state.name} : rappel, date limite le {fr_date(state.deadline)}"
    filename = f"tableau-de-bord-{campaign.year}-region-{state.code}.xlsx"
    context.update({"subject_line": subject, "attachment": filename})
    env = environment()
    text = env.get_template("reminder.txt.j2").render(context)
    html = env.get_template("reminder.html.j2").render(context)
    if workbook is None and carried:
        data = build_template(region_code=state.code, region_name=state.name, campaign_id=campaign.id,
                              year=campaign.year, observations=carried)
    elif workbook is None:
        data = blank_template(state.code, state.name, campaign.id, campaign.year)
    else:
        observations = workbook.observations if isinstance(workbook.observations, dict) else None
        data = build_template(region_code=state.code, region_name=state.name, campaign_id=campaign.id,
                              year=campaign.year, values=prefill_values(workbook), observations=observations)
    return ReminderDraft(region=state.code, step=step, to=to, cc=cc, subject=subject, text=text, html=html,
                         attachment=(filename, data, XLSX), campaign=campaign.id, key=key, at=now,
                         region_name=state.name, deadline=state.deadline, escalate=escalate)


@lru_cache(maxsize=64)
def blank_template(region_code: str, region_name: str, campaign_id: str, year: int) -> bytes:
    """A region's blank template (immutable bytes, built once per process: the same for every reminder)."""
    return build_template(region_code=region_code, region_name=region_name, campaign_id=campaign_id, year=year)


def prefill_values(workbook: Submission) -> dict[str, Any]:
    """The workbook's values as the region typed them: a figure that was refused (stored as None)
    comes back as the text of the cell the error names, so the region sees what to correct and the
    same file sent back unchanged is refused again for the same reasons."""
    values = dict(workbook.values)
    for issue in workbook.issues:
        ind, raw = issue.get("indicator"), issue.get("value")
        if issue.get("severity") == "error" and ind and raw is not None and values.get(ind) is None:
            values[ind] = str(raw)
    return values


def _workbook_view(sub: Submission | None) -> dict[str, Any]:
    if sub is None:
        return {"state": "missing"}
    errors = [i for i in sub.issues if i.get("severity") == "error"]
    return {
        "state": sub.verdict,  # "accepted" | "rejected"
        "file": sub.filename,
        "version": sub.version,
        "received": fr_datetime(sub.received_at),
        "errors": [_issue_view(i) for i in errors[:MAX_LISTED]],
        "more": max(0, len(errors) - MAX_LISTED),
    }


def _narrative_view(sub: Submission | None) -> dict[str, Any]:
    if sub is None:
        return {"state": "missing", "points": [p.title for p in catalogue.NARRATIVE_POINTS]}
    missing = [str(p) for p in sub.details.get("points_missing", [])]
    titles = {p.id: p.title for p in catalogue.NARRATIVE_POINTS}
    errors = [i for i in sub.issues if i.get("severity") == "error"]
    return {
        "state": sub.verdict,
        "file": sub.filename,
        "version": sub.version,
        "received": fr_datetime(sub.received_at),
        "errors": [_issue_view(i) for i in errors[:MAX_LISTED]],
        "more": max(0, len(errors) - MAX_LISTED),
        "points": [titles.get(p, p) for p in missing],
    }


def _issue_view(issue: dict[str, Any]) -> dict[str, str]:
    where = issue_location(issue)
    return {"where": where, "cell": str(issue.get("cell") or ""), "message": str(issue.get("message") or "")}
