"""What a coordinator does with the requests of regions: list them, grant or refuse a request for
more time, close a message handed to a person. Shared by the command line (``requests``,
``extend``) and the chat bot.

A decision is recorded on the request's dossier event (status ``granted`` / ``refused`` /
``closed``, by whom, when), an extension sets the region's deadline (``set_extension``), and the
answer is queued to the region in the thread of its message (In-Reply-To / References), under
the outbox key ``decision:<event id>``: a decision is mailed once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from sqlalchemy.orm import Session

from intake.config.clock import local_date
from intake.config.settings import Settings
from intake.pipeline.services import Services
from notifier.calendar import extension_refusal, region_deadline
from notifier.outbox import build_mail
from notifier.requests import DecisionFacts, draft_decision
from parsers.mail.mime import parse_message
from parsers.reference import catalogue
from store.models import Dossier, DossierEvent, InboundMessage
from store.queries.dossiers import request_events, set_extension, update_event
from store.queries.outbox import enqueue_outbox

Verdict = Literal["grant", "refuse", "close"]


@dataclass(frozen=True)
class RequestView:
    id: int  # the dossier event's
    kind: str  # "extension_request" | "forwarded"
    campaign: str
    region: str
    region_name: str
    at: datetime
    status: str
    message: int | None  # the region's inbound message
    subject: str
    excerpt: str
    date_asked: date | None
    days_asked: int | None
    replies: int  # the region's later answers in the thread

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "kind": self.kind, "campaign": self.campaign, "region": self.region,
                "region_name": self.region_name, "at": self.at.isoformat(), "status": self.status,
                "message": self.message, "subject": self.subject, "excerpt": self.excerpt,
                "date_asked": self.date_asked.isoformat() if self.date_asked else None,
                "days_asked": self.days_asked, "replies": self.replies}


@dataclass(frozen=True)
class Decision:
    ok: bool
    text: str  # French, plain
    outbox_id: int | None = None


def view(settings: Settings, dossier: Dossier, event: DossierEvent) -> RequestView:
    d = event.detail or {}
    try:
        geography = settings.campaign(dossier.campaign_id).geography
    except KeyError:
        geography = None
    asked = d.get("date_asked")
    return RequestView(
        id=event.id, kind=event.kind, campaign=dossier.campaign_id, region=dossier.region_code,
        region_name=catalogue.region_name(dossier.region_code, geography) or dossier.region_code, at=event.at,
        status=str(d.get("status") or ""), message=d.get("message"), subject=str(d.get("subject") or ""),
        excerpt=str(d.get("excerpt") or ""), date_asked=date.fromisoformat(asked) if asked else None,
        days_asked=d.get("days_asked"), replies=len(d.get("replies") or []))


def list_requests(services: Services, *, open_only: bool = True, campaign: str | None = None) -> list[RequestView]:
    with services.sessions() as session:
        return [view(services.settings, d, e) for d, e in request_events(session, campaign, open_only=open_only)]


def decide(services: Services, event_id: int, verdict: Verdict, *, actor: str, now: datetime,
           until: date | None = None, note: str = "") -> Decision:
    """Grant or refuse a pending request for more time, or close a forwarded message."""
    with services.sessions.begin() as session:
        event = session.get(DossierEvent, event_id)
        if event is None or event.kind not in ("extension_request", "forwarded"):
            return Decision(False, f"aucune demande n° {event_id}")
        dossier = session.get(Dossier, event.dossier_id)
        assert dossier is not None
        status = (event.detail or {}).get("status")
        if status not in ("pending", "open"):
            return Decision(False, f"la demande n° {event_id} est déjà traitée ({status})")
        if verdict == "close":
            update_event(event, status="closed", decided_by=actor[:255], decided_at=now.isoformat())
            return Decision(True, f"message n° {event_id} marqué traité")
        if event.kind != "extension_request":
            return Decision(False, f"la demande n° {event_id} n'est pas une demande de délai : fermez-la (close)")
        item_id = _decide_extension(session, services.settings, dossier, event, verdict == "grant", actor=actor,
                                    now=now, until=until, note=note)
        if isinstance(item_id, str):
            return Decision(False, item_id)
        name = view(services.settings, dossier, event).region_name
    _after_commit(services)
    if verdict == "grant":
        return Decision(True, f"{name} : délai accordé jusqu'au {dossier.deadline_override:%d/%m/%Y}, réponse "
                              "en file d'envoi", item_id)
    return Decision(True, f"{name} : délai refusé, réponse en file d'envoi", item_id)


def grant_pending(session: Session, settings: Settings, dossier: Dossier, until: date, *, actor: str,
                  now: datetime) -> list[int]:
    """After an extension set by other means (``extend``, /prolonger): the region's pending requests
    are granted and answered; returns the outbox ids queued."""
    queued: list[int] = []
    for _, event in request_events(session, dossier.campaign_id, region_code=dossier.region_code):
        if event.kind == "extension_request":
            item = _decide_extension(session, settings, dossier, event, True, actor=actor, now=now, until=until,
                                     already_set=True)
            if isinstance(item, int):
                queued.append(item)
    return queued


def _decide_extension(session: Session, settings: Settings, dossier: Dossier, event: DossierEvent, grant: bool, *,
                      actor: str, now: datetime, until: date | None, note: str = "",
                      already_set: bool = False) -> int | str | None:
    """Record the decision, set the deadline, queue the answer; a French refusal reason as a str."""
    campaign = settings.campaign(dossier.campaign_id)
    d = event.detail or {}
    if grant:
        if until is None and d.get("date_asked"):
            until = date.fromisoformat(d["date_asked"])
        if until is None and d.get("days_asked"):
            until = region_deadline(campaign, dossier)[0] + timedelta(days=int(d["days_asked"]))
        if until is None:
            return "la région n'a pas indiqué de date : précisez-la (--until)"
        if not already_set:  # else the caller set (and checked) the extension
            refusal = extension_refusal(campaign, until, local_date(now))
            if refusal is not None:
                return refusal
            set_extension(session, campaign.id, dossier.region_code, until, actor=actor)
    update_event(event, status="granted" if grant else "refused", decided_by=actor[:255],
                 decided_at=now.isoformat(), until=until.isoformat() if grant and until else None)
    inbound = session.get(InboundMessage, d.get("message")) if d.get("message") else None
    if inbound is None:
        return None
    mail = parse_message(inbound.raw)
    region = settings.region(dossier.region_code)
    to = tuple(mail.reply_to) or ((mail.from_addr,) if mail.from_addr else ())
    if not to:
        return None
    cc = tuple(c for c in (region.contacts if region else ()) if c not in to)
    draft = draft_decision(DecisionFacts(
        region=region.name if region else dossier.region_code, year=campaign.year, granted=grant, until=until,
        deadline=region_deadline(campaign, dossier)[0], asked_at=inbound.received_at, subject=mail.subject,
        to=to, cc=cc, mailbox=settings.mailbox_address, note=note))
    msg = build_mail(settings, to=draft.to, cc=draft.cc, subject=draft.subject, text=draft.text, html=draft.html,
                     in_reply_to=mail.message_id, references=mail.references, auto_submitted="no")
    return enqueue_outbox(session, key=f"decision:{event.id}", kind="reply", message_pk=inbound.id,
                          recipients=list(draft.to), cc=list(draft.cc), subject=draft.subject, raw=msg.raw,
                          mail_message_id=msg.message_id)


def _after_commit(services: Services) -> None:
    if services.after_commit is not None:
        try:  # wakes the outbox sender (or writes the folder); the decision is committed either way
            services.after_commit()
        except Exception:
            services.log.exception("decision queued; after_commit failed")
