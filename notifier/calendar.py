"""The campaign calendar: each region's state at a given moment, and which reminder step is due.

One source of truth for ``status``, reminders, digests and the national export, so that they
always agree. Decisions depend only on the store and on ``now`` (reproducible with ``--now``).

- A region's deadline is the campaign's, or its own when an admin extended it.
- A region is **late** when, after the end of its deadline day (Paris time), it has no complete
  dossier and is not exempt. A part received after the deadline is **received late** for good.
- Reminder steps: ``before-N`` (N days before the deadline, to regions without a complete dossier)
  and ``after-N`` (N days after it, to late regions); from ``escalate_after`` days late the
  coordinators are copied. Only the latest step due is ever sent: a service that was down for a
  week sends one reminder, not a burst of stale ones.
- A region's **reminder window** runs from the campaign's opening day to the last day a step can
  fall due for its own deadline (``last_reminder_day``); no reminder is due outside it. A campaign
  is **running** while some region of it is in its window: until the last reminder day of the
  latest deadline, the campaign's or an extended one. An extension only moves that region's window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from intake.config.clock import local_date
from intake.config.settings import Campaign, Settings
from store.models import Dossier, Submission
from store.queries.dossiers import (
    dossiers_by_region,
    last_received_by_dossier,
    latest_extension,
    open_errors_by_dossier,
)


@dataclass(frozen=True)
class RegionState:
    code: str
    name: str
    dossier: str  # "complete" | "incomplete" | "rejected" | "missing"
    exempt: bool
    deadline: date  # the region's own: the campaign's, or the extended one
    extended: bool
    late: bool
    days_late: int
    received_late: bool
    last_received: datetime | None
    open_errors: int

    def as_dict(self) -> dict[str, object]:
        return {
            "code": self.code, "name": self.name, "dossier": self.dossier, "exempt": self.exempt,
            "deadline": self.deadline.isoformat(), "extended": self.extended, "late": self.late,
            "days_late": self.days_late, "received_late": self.received_late,
            "last_received": self.last_received.isoformat() if self.last_received else None,
            "open_errors": self.open_errors,
        }


@dataclass(frozen=True)
class ReminderStep:
    name: str  # "before-7", "after-8"
    due: date  # the day it becomes due (Paris time)
    after_deadline: bool
    escalate: bool  # coordinators copied


def days_late(deadline: date, now: datetime) -> int:
    """Whole days since the end of the deadline day; 0 on or before it."""
    return max(0, (local_date(now) - deadline).days)


def reminder_steps(campaign: Campaign, deadline: date) -> list[ReminderStep]:
    """Every step of a region's calendar, in date order."""
    steps = [ReminderStep(f"before-{n}", deadline - timedelta(days=n), False, False)
             for n in campaign.reminders_before]
    steps += [ReminderStep(f"after-{n}", deadline + timedelta(days=n), True, n >= campaign.escalate_after)
              for n in campaign.reminders_after]
    return sorted(steps, key=lambda s: s.due)


def last_reminder_day(campaign: Campaign, deadline: date) -> date:
    """The last day a reminder step can fall due for a region whose deadline is ``deadline``."""
    return deadline + timedelta(days=max(campaign.reminders_after, default=0))


def in_reminder_window(campaign: Campaign, deadline: date, today: date) -> bool:
    """Whether a region whose deadline is ``deadline`` may still be reminded on ``today``."""
    return campaign.opens <= today <= last_reminder_day(campaign, deadline)


def campaign_running(campaign: Campaign, latest_deadline: date | None, today: date) -> bool:
    """Whether some region of the campaign is still in its reminder window: ``latest_deadline`` is the
    latest extended deadline of any region (None: no extension)."""
    deadline = max(campaign.deadline, latest_deadline) if latest_deadline else campaign.deadline
    return in_reminder_window(campaign, deadline, today)


def running_campaigns(session: Session, settings: Settings, now: datetime) -> list[Campaign]:
    """The campaigns whose calendar runs at ``now`` (extensions included)."""
    today = local_date(now)
    return [c for c in settings.campaigns if campaign_running(c, latest_extension(session, c.id), today)]


def due_step(campaign: Campaign, deadline: date, now: datetime) -> ReminderStep | None:
    """The latest step whose day has come, within the region's reminder window (None before the
    first one, before the campaign opens, or after the last reminder day of ``deadline``)."""
    today = local_date(now)
    if not in_reminder_window(campaign, deadline, today):
        return None
    due = [s for s in reminder_steps(campaign, deadline) if s.due <= today and s.due >= campaign.opens]
    return due[-1] if due else None


def region_deadline(campaign: Campaign, dossier: Dossier | None) -> tuple[date, bool]:
    if dossier is not None and dossier.deadline_override is not None:
        return dossier.deadline_override, True
    return campaign.deadline, False


def campaign_states(session: Session, settings: Settings, campaign: Campaign, now: datetime) -> list[RegionState]:
    """Every region of the campaign's geography, as it stands at ``now``."""
    dossiers = dossiers_by_region(session, campaign.id)
    late_parts = set(session.scalars(
        select(Dossier.region_code).join(Submission, Submission.dossier_id == Dossier.id)
        .where(Dossier.campaign_id == campaign.id, Submission.late.is_(True), Submission.received_at <= now)))
    received, errors = last_received_by_dossier(session, campaign.id), open_errors_by_dossier(session, campaign.id)
    states: list[RegionState] = []
    for region in settings.campaign_regions(campaign):
        dossier = dossiers.get(region.code)
        status = dossier.status if dossier else "missing"
        exempt = bool(dossier and dossier.exempt)
        deadline, extended = region_deadline(campaign, dossier)
        lateness = days_late(deadline, now)
        late = lateness > 0 and status != "complete" and not exempt
        states.append(RegionState(
            code=region.code,
            name=region.name,
            dossier=status,
            exempt=exempt,
            deadline=deadline,
            extended=extended,
            late=late,
            days_late=lateness if late else 0,
            received_late=region.code in late_parts,
            last_received=received.get(dossier.id) if dossier else None,
            open_errors=errors.get(dossier.id, 0) if dossier else 0,
        ))
    return states


def region_notes(state: RegionState, *, with_errors: bool = True) -> str:
    """What else there is to know about a region besides its dossier status, in French."""
    notes = [text for text, on in (
        ("exemptée", state.exempt),
        (f"en retard de {state.days_late} j", state.late),
        (f"délai prolongé au {state.deadline:%d/%m/%Y}", state.extended),
        ("reçu en retard", state.received_late),
        (f"{state.open_errors} erreur{'s' if state.open_errors > 1 else ''}", with_errors and state.open_errors > 0),
    ) if on]
    return ", ".join(notes)


def extension_refusal(campaign: Campaign, until: date, today: date | None = None) -> str | None:
    """Why a region's deadline cannot be extended to ``until`` (French), or None when it can: never
    before the campaign's own deadline, nor (given ``today``) to a day already past."""
    if until < campaign.deadline:
        return (f"le {until:%d/%m/%Y} est avant la date limite de la campagne ({campaign.deadline:%d/%m/%Y}) : "
                "une prolongation ne peut que la reporter")
    if today is not None and until < today:
        return f"le {until:%d/%m/%Y} est déjà passé"
    return None
