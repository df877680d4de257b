"""The coordinators' digest: where every region stands, what changed, what is missing.

Everything is read from the store as it stands at ``now`` and built on
:func:`notifier.calendar.campaign_states` (the same states as ``status``) and
:func:`notifier.export.consolidate` (the same figures as ``export``), so the three always agree.

- Campaigns covered: every campaign whose calendar is running at ``now`` (opened, and not past
  its last reminder after the deadline), plus always the latest opened one; or the one asked for.
- "What changed" lists the files received (reception time) in ``(since, now]``, the dossiers whose
  status differs from their status at ``since`` (rebuilt from the files received by then), and the
  dossier events (exemption, extension, bounce, reminder...) recorded in ``(since, now]``. Events are
  timestamped when they are recorded, so a replay with ``--now`` in the past only sees those of the
  past.
- Scheduling (``send_due_digest``): daily at ``[digest].hour`` (Paris time), or weekly on
  ``[digest].weekday`` at that hour, or never ("off"). Each period is queued once under the outbox
  key ``digest:<period start date>`` (unique in the database: two instances cannot both queue it);
  a service that was down at the hour queues it as soon as it runs again within the period.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy.orm import Session

from intake.config.clock import PARIS, local_date
from intake.config.settings import Campaign, DigestConfig, Settings
from notifier.calendar import RegionState, region_notes, running_campaigns
from notifier.export import Consolidation, consolidate, to_xlsx, value_text
from notifier.outbox import build_mail
from notifier.rendering import PART_WORDS, STATUS_WORDS, environment, fr_date, fr_datetime, part_verdict
from parsers.reference import catalogue
from parsers.text import fold
from store.models import OutboxItem, Submission
from store.queries.dossiers import (
    campaign_events,
    campaign_submissions,
    dossier_status,
    dossiers_by_region,
    latest_submission,
    request_events,
)
from store.queries.outbox import enqueue_outbox, last_outbox_created, outbox_key_exists

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
STATUSES = ("complete", "incomplete", "rejected", "missing")
MAX_ISSUES = 3


@dataclass(frozen=True)
class RejectedRegion:
    code: str
    name: str
    filename: str
    version: int
    received_at: datetime
    errors: int
    issues: tuple[dict[str, Any], ...]  # the first MAX_ISSUES errors: sheet, cell, indicator, message, value

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "name": self.name, "file": self.filename, "version": self.version,
                "received_at": self.received_at.isoformat(), "errors": self.errors, "issues": list(self.issues)}


@dataclass(frozen=True)
class Change:
    at: datetime
    region_code: str
    region_name: str
    kind: str  # "version" | "status" | "exempt" | "exempt_lifted" | "extension" | "bounce" | an event kind
    text: str  # French

    def as_dict(self) -> dict[str, object]:
        return {"at": self.at.isoformat(), "region": self.region_code, "name": self.region_name,
                "kind": self.kind, "text": self.text}


@dataclass(frozen=True)
class IndicatorCompleteness:
    """For one local indicator, what each region's latest accepted workbook gives."""

    indicator: str
    label: str
    cells: tuple[tuple[str, str, str], ...]  # (region code, "value" | "nc" | "empty", title text)

    def count(self, state: str) -> int:
        return sum(1 for _, s, _ in self.cells if s == state)

    def as_dict(self) -> dict[str, object]:
        return {"indicator": self.indicator, "value": self.count("value"), "nc": self.count("nc"),
                "empty": self.count("empty"), "regions": {code: state for code, state, _ in self.cells}}


@dataclass(frozen=True)
class CampaignDigest:
    campaign: Campaign
    states: tuple[RegionState, ...]
    counts: dict[str, int]
    late: tuple[RegionState, ...]
    rejected: tuple[RejectedRegion, ...]
    changes: tuple[Change, ...]
    completeness: tuple[IndicatorCompleteness, ...]
    consolidation: Consolidation
    requests: tuple[Change, ...] = ()  # regions' requests still waiting for a coordinator, oldest first

    def as_dict(self, now: datetime, since: datetime | None) -> dict[str, object]:
        return {
            "campaign": self.campaign.id, "now": now.isoformat(), "since": since.isoformat() if since else None,
            "counts": dict(self.counts),
            "late": [{"code": s.code, "name": s.name, "days_late": s.days_late, "deadline": s.deadline.isoformat(),
                      "dossier": s.dossier} for s in self.late],
            "rejected": [r.as_dict() for r in self.rejected],
            "changes": [c.as_dict() for c in self.changes],
            "completeness": [c.as_dict() for c in self.completeness],
            "requests": [r.as_dict() for r in self.requests],
        }


@dataclass(frozen=True)
class Digest:
    now: datetime
    since: datetime | None
    campaigns: tuple[CampaignDigest, ...] = field(default_factory=tuple)


# ---------------------------------------------------------------------- building


def digest_campaigns(session: Session, settings: Settings, now: datetime) -> list[Campaign]:
    """The campaigns whose calendar runs at ``now`` (``calendar.running_campaigns``), and always the
    latest opened one: coordinators keep seeing the last collection once its reminders are over."""
    today = local_date(now)
    opened = [c for c in settings.campaigns if c.opens <= today]
    if not opened:
        return []
    latest = max(opened, key=lambda c: c.opens)
    running = running_campaigns(session, settings, now)
    return sorted((c for c in opened if c is latest or c in running), key=lambda c: c.opens)


def build_digest(session: Session, settings: Settings, now: datetime, since: datetime | None,
                 campaign: Campaign | None = None) -> Digest:
    campaigns = [campaign] if campaign is not None else digest_campaigns(session, settings, now)
    return Digest(now=now, since=since,
                  campaigns=tuple(_campaign_digest(session, settings, c, now, since) for c in campaigns))


def _campaign_digest(session: Session, settings: Settings, campaign: Campaign, now: datetime,
                     since: datetime | None) -> CampaignDigest:
    consolidation = consolidate(session, settings, campaign, now)
    states = tuple(r.state for r in consolidation.regions)
    counts = {status: sum(1 for s in states if s.dossier == status) for status in STATUSES}
    counts.update({
        "regions": len(states),
        "exempt": sum(1 for s in states if s.exempt),
        "extended": sum(1 for s in states if s.extended),
        "late": sum(1 for s in states if s.late),
        "received_late": sum(1 for s in states if s.received_late),
    })
    late = tuple(sorted((s for s in states if s.late), key=lambda s: (-s.days_late, fold(s.name))))
    dossiers = dossiers_by_region(session, campaign.id)
    rejected: list[RejectedRegion] = []
    for state in states:
        dossier = dossiers.get(state.code)
        if state.dossier != "rejected" or dossier is None:
            continue
        workbook = latest_submission(session, dossier.id, "workbook")
        if workbook is None:
            continue
        errors = [i for i in workbook.issues if i.get("severity") == "error"]
        rejected.append(RejectedRegion(
            state.code, state.name, workbook.filename, workbook.version, workbook.received_at, len(errors),
            tuple({k: i.get(k) for k in ("sheet", "cell", "indicator", "code", "value", "message")}
                  for i in errors[:MAX_ISSUES])))
    return CampaignDigest(
        campaign=campaign, states=states, counts=counts, late=late, rejected=tuple(rejected),
        changes=tuple(_changes(session, campaign, states, now, since)),
        completeness=_completeness(consolidation), consolidation=consolidation,
        requests=_open_requests(session, campaign, states, now))


def _open_requests(session: Session, campaign: Campaign, states: tuple[RegionState, ...],
                   now: datetime) -> tuple[Change, ...]:
    """Requests for more time still pending and forwarded messages still open (requests list)."""
    names = {s.code: s.name for s in states}
    return tuple(
        Change(e.at, d.region_code, names.get(d.region_code, d.region_code), e.kind,
               f"n° {e.id} – " + _event_text(e.kind, e.detail or {}, e.actor))
        for d, e in request_events(session, campaign.id) if e.at <= now)


def _status_at(submissions: list[Submission]) -> str:
    """A dossier's status from the files it had received by some moment."""
    latest: dict[str, Submission] = {}
    for sub in submissions:
        if sub.kind not in latest or sub.version > latest[sub.kind].version:
            latest[sub.kind] = sub
    return dossier_status(latest.get("workbook"), latest.get("narrative"))


def _changes(session: Session, campaign: Campaign, states: tuple[RegionState, ...], now: datetime,
             since: datetime | None) -> list[Change]:
    names = {s.code: s.name for s in states}
    changes: list[Change] = []
    received: dict[str, list[Submission]] = {}
    for code, sub in campaign_submissions(session, campaign.id, now):
        received.setdefault(code, []).append(sub)
        if since is not None and sub.received_at <= since:
            continue
        part, verdict = PART_WORDS[sub.kind], part_verdict(sub.kind, sub.verdict)
        text = (f"{part} version {sub.version} « {sub.filename} » reçu{'e' if sub.kind == 'narrative' else ''}"
                f" : {verdict}" + (" (après la date limite)" if sub.late else ""))
        changes.append(Change(sub.received_at, code, names.get(code, code), "version", text))
    if since is not None:
        for state in states:
            subs = received.get(state.code, [])
            before = _status_at([s for s in subs if s.received_at <= since])
            if before != state.dossier:
                at = max((s.received_at for s in subs if s.received_at > since), default=now)
                changes.append(Change(at, state.code, state.name, "status",
                                      f"dossier passé de « {STATUS_WORDS[before]} » à "
                                      f"« {STATUS_WORDS.get(state.dossier, state.dossier)} »"))
    for code, event in campaign_events(session, campaign.id, since, now):
        if event.kind == "return_received":
            continue  # the files themselves are listed above
        changes.append(Change(event.at, code, names.get(code, code), event.kind, _event_text(event.kind,
                                                                                             event.detail,
                                                                                             event.actor)))
    order = {"version": 0, "status": 1}
    return sorted(changes, key=lambda c: (c.at, fold(c.region_name), order.get(c.kind, 2)))


def _event_text(kind: str, detail: dict[str, Any], actor: str) -> str:
    by = f" (par {actor})" if actor and actor != "system" else ""
    if kind == "exempt":
        return "région exemptée pour cette campagne" + by
    if kind == "exempt_lifted":
        return "exemption levée" + by
    if kind == "extension":
        until = detail.get("until")
        if not until:
            return "date limite ramenée à celle de la campagne" + by
        try:
            return f"date limite prolongée au {fr_date(datetime.fromisoformat(str(until)).date())}" + by
        except ValueError:
            return f"date limite prolongée au {until}" + by
    if kind == "bounce":
        addresses = ", ".join(str(a) for a in detail.get("addresses") or []) or "un destinataire"
        return f"un message du service n'a pas pu être remis à {addresses}"
    if kind == "extension_request":
        asked = detail.get("date_asked")
        state = {"pending": "en attente de décision", "granted": "accordée", "refused": "refusée"}.get(
            str(detail.get("status")), str(detail.get("status")))
        return (f"délai demandé{' jusqu’au ' + _day(str(asked)) if asked else ''} par la région"
                f" : {state}")
    if kind == "forwarded":
        excerpt = str(detail.get("excerpt") or "")[:200]
        state = "traité" if detail.get("status") == "closed" else "à traiter"
        return f"message transmis à la coordination ({state}) : « {excerpt} »"
    if kind == "answered":
        return "question de la région répondue automatiquement"
    if kind.startswith("reminder"):
        step = detail.get("step")
        return "relance envoyée" + (f" (étape {step})" if step else "")
    return f"événement « {kind} »" + by


def _day(iso: str) -> str:
    try:
        return fr_date(datetime.fromisoformat(iso).date())
    except ValueError:
        return iso


def _completeness(consolidation: Consolidation) -> tuple[IndicatorCompleteness, ...]:
    rows: list[IndicatorCompleteness] = []
    for ind in catalogue.local_indicators():
        cells: list[tuple[str, str, str]] = []
        for region in consolidation.regions:
            value = region.values.get(ind.id)
            observation = region.observations.get(ind.id, "")
            if value is not None and value != "":
                cells.append((region.code, "value", f"{region.name} : {value_text(ind, value)}"))
            elif observation:
                cells.append((region.code, "nc", f"{region.name} : {observation}"))
            else:
                cells.append((region.code, "empty", region.name))
        rows.append(IndicatorCompleteness(ind.id, ind.label, tuple(cells)))
    return tuple(rows)


# ---------------------------------------------------------------------- rendering


def render_digest(digest: Digest) -> tuple[str, str, str]:
    """Subject, plain text and HTML of the digest, in French."""
    day = fr_date(local_date(digest.now))
    parts = [f"bilan {c.campaign.year} : {c.counts['complete']} complet{'s' if c.counts['complete'] > 1 else ''}"
             f" sur {c.counts['regions']}, {c.counts['late']} en retard" for c in digest.campaigns]
    subject = f"Point d'étape au {day} – " + ("; ".join(parts) if parts else "aucune campagne en cours")
    context = {
        "subject_line": subject,
        "day": day,
        "now": fr_datetime(digest.now),
        "since": fr_datetime(digest.since) if digest.since else None,
        "campaigns": digest.campaigns,
        "status_words": STATUS_WORDS,
        "deadline_of": lambda s: f"{s.deadline:%d/%m/%Y}",
        "last_of": lambda s: fr_datetime(s.last_received) if s.last_received else "–",
        "fr_datetime": fr_datetime,
        "national_of": lambda c, ind: c.consolidation.national[ind].describe(),
        "notes_of": region_notes,
    }
    env = environment()
    return (subject, env.get_template("digest.txt.j2").render(context),
            env.get_template("digest.html.j2").render(context))


# ---------------------------------------------------------------------- queuing


def previous_digest_at(session: Session, now: datetime) -> datetime | None:
    return last_outbox_created(session, "digest", now)


def queue_digest(session: Session, settings: Settings, now: datetime, *, key: str,
                 campaign: Campaign | None = None) -> OutboxItem | None:
    """Queue the digest to the coordinators under ``key`` (None: key already used, no coordinator,
    or no campaign). "Since" is the moment the previous digest was queued."""
    recipients = [c.email for c in settings.coordinators]
    if not recipients or outbox_key_exists(session, key):
        return None
    digest = build_digest(session, settings, now, previous_digest_at(session, now), campaign)
    if not digest.campaigns:
        return None
    subject, text, html = render_digest(digest)
    stamp = local_date(now).isoformat()
    attachments = [(f"consolidation-{c.campaign.id}-{stamp}.xlsx", to_xlsx(c.consolidation), XLSX_TYPE)
                   for c in digest.campaigns]
    msg = build_mail(settings, to=recipients, subject=subject, text=text, html=html, attachments=attachments,
                     auto_submitted="auto-generated")
    item_id = enqueue_outbox(session, key=key, kind="digest", message_pk=None, recipients=recipients, cc=[],
                             subject=subject, raw=msg.raw, mail_message_id=msg.message_id)
    item = session.get(OutboxItem, item_id) if item_id is not None else None
    if item is not None and item.created_at > now:
        item.created_at = now  # a replay with --now: the next digest's "since" is this moment
        session.flush()
    return item


def digest_period_start(config: DigestConfig, now: datetime) -> datetime | None:
    """The start of the digest period ``now`` falls in (None when digests are off)."""
    if config.frequency not in ("daily", "weekly"):
        return None
    local = now.astimezone(PARIS)
    start = datetime.combine(local.date(), time(config.hour), tzinfo=PARIS)
    if config.frequency == "weekly":
        start = datetime.combine(local.date() - timedelta(days=(local.isoweekday() - config.weekday) % 7),
                                 time(config.hour), tzinfo=PARIS)
    if start > local:
        start = datetime.combine(start.date() - timedelta(days=1 if config.frequency == "daily" else 7),
                                 time(config.hour), tzinfo=PARIS)
    return start


def send_due_digest(session: Session, settings: Settings, now: datetime) -> OutboxItem | None:
    """Queue the digest of the current period if it is not queued yet (the scheduler calls this)."""
    start = digest_period_start(settings.digest, now)
    if start is None:
        return None
    return queue_digest(session, settings, now, key=f"digest:{start.date().isoformat()}")
