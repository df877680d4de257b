"""Converse: what a message without a return asks, and who answers it.

The region's own words (:func:`parsers.documents.narrative.own_text`: no quoted thread, no
signature) are read by :func:`parsers.mail.intents.read_message`. Then:

* a message that carries a return (a file, a narrative body), or announces one (« ci-joint »), goes
  on to ``validate`` as today; the questions it also asks are answered in the same reply, and a
  request for more time is recorded;
* otherwise the journey ends here: ``answered`` when every question found an intent answered from
  the dossier or the campaign; ``forwarded`` when something must be read by a person (a question
  no rule recognises, a request for more time, an answer to one of our messages about a request).

Every decision is a dossier event: ``answered``, ``forwarded`` (status ``open``) or
``extension_request`` (status ``pending``, the day asked for). A message whose In-Reply-To or
References names one of our outbox mails about a request is recorded on that request (``replies``).
The tables are in ``docs/conversation.md``.
"""

from __future__ import annotations

from collections.abc import Mapping

from intake.config.clock import local_date, utcnow
from intake.pipeline.journey import Journey
from intake.pipeline.services import Services
from notifier.calendar import region_deadline
from notifier.conversation import ConversationFacts, VersionFact
from notifier.last_year import last_year
from notifier.reminders import blank_template, prefill_values
from notifier.template_workbook import build_template
from parsers.documents.narrative import own_text
from parsers.mail.intents import read_message
from parsers.text import one_line
from store.models import Dossier, DossierEvent
from store.queries.dossiers import (
    dossier_versions,
    events_about_messages,
    get_or_create_dossier,
    record_event,
    update_event,
)
from store.queries.outbox import outbox_by_message_ids

EXCERPT_CHARS = 600
# A MIME structure too deep to read: its "body" is raw MIME, never a question (judged as before).
UNREADABLE_STRUCTURE = frozenset(("recursion", "too_deep"))


def converse(journey: Journey, services: Services) -> None:
    assert journey.mail is not None and journey.campaign is not None and journey.region is not None
    mail, session, inbound = journey.mail, journey.session, journey.inbound
    text = own_text(mail.body_text)
    reading = read_message(text, local_date(inbound.received_at))
    journey.reading = reading
    dossier = get_or_create_dossier(session, journey.campaign.id, journey.region.code)
    journey.dossier = dossier  # record files a return on it
    threaded = _answered_requests(journey, dossier.id)
    carries_return = bool(journey.workbooks or journey.narratives or journey.message_issues
                          or any(not a.content_type.startswith("image/") for a in mail.attachments)
                          or UNREADABLE_STRUCTURE.intersection(mail.defects))
    excerpt = one_line(text, EXCERPT_CHARS)
    base = {"message": inbound.id, "message_id": mail.message_id, "subject": one_line(mail.subject, 200),
            "excerpt": excerpt}
    if carries_return or reading.announces_attachment or (not reading.has_content and not threaded):
        if "extension" in reading.intents:
            _extension_request(journey, dossier, base)
        return
    forwarded = not reading.confident or bool(threaded)
    journey.forwarded = forwarded
    for event in threaded:
        update_event(event, replies=[*(event.detail or {}).get("replies", []),
                                     {"message": inbound.id, "at": utcnow().isoformat(), "excerpt": excerpt}])
    if "extension" in reading.intents:
        _extension_request(journey, dossier, base)
    answered = [i for i in reading.intents if i != "extension"]
    if forwarded:
        record_event(session, dossier, "forwarded", {
            **base, "status": "open", "intents": list(reading.intents), "unmatched": list(reading.unmatched),
            "answers_to": [e.id for e in threaded]})
    if answered:
        record_event(session, dossier, "answered", {"message": inbound.id, "intents": answered})
    handed = forwarded or "extension" in reading.intents
    journey.outcome = "forwarded" if handed else "answered"
    journey.reason = "; ".join(x for x in (
        f"answered: {', '.join(answered)}" if answered else "",
        f"extension requested{_asked(journey)}" if "extension" in reading.intents else "",
        f"reply to request #{', #'.join(str(e.id) for e in threaded)}" if threaded else "",
        "forwarded to a person" if forwarded else "") if x)


def _asked(journey: Journey) -> str:
    r = journey.reading
    if r is None:
        return ""
    if r.date_asked:
        return f" until {r.date_asked.isoformat()}"
    return f" for {r.days_asked} days" if r.days_asked else ""


def _extension_request(journey: Journey, dossier: Dossier, base: Mapping[str, object]) -> None:
    assert journey.reading is not None and journey.campaign is not None
    deadline, _ = region_deadline(journey.campaign, dossier)
    journey.request = record_event(journey.session, dossier, "extension_request", {
        **base, "status": "pending", "deadline": deadline.isoformat(),
        "date_asked": journey.reading.date_asked.isoformat() if journey.reading.date_asked else None,
        "days_asked": journey.reading.days_asked})


def _answered_requests(journey: Journey, dossier_id: int) -> list[DossierEvent]:
    """The requests and forwards this message answers: it replies to one of our mails about them."""
    assert journey.mail is not None
    ids = [m for m in (journey.mail.in_reply_to, *journey.mail.references) if m]
    if not ids:
        return []
    pks = [item.message_pk for item in outbox_by_message_ids(journey.session, ids) if item.message_pk]
    return events_about_messages(journey.session, dossier_id, pks) if pks else []


def conversation_facts(journey: Journey, services: Services) -> ConversationFacts | None:
    """What the reply needs to answer the message's questions (None when it asked nothing)."""
    reading = journey.reading
    if reading is None or journey.campaign is None or journey.region is None:
        return None
    if not reading.intents and not journey.forwarded:
        return None
    session, campaign, region = journey.session, journey.campaign, journey.region
    dossier = journey.dossier or get_or_create_dossier(session, campaign.id, region.code)
    deadline, extended = region_deadline(campaign, dossier)
    versions = dossier_versions(session, dossier.id)
    files = journey.dossier_files(dossier)
    workbook, narrative = files.get("workbook"), files.get("narrative")
    template: bytes | None = None
    name = None
    observations_of: int | None = None
    if "template" in reading.intents:
        name = f"tableau-de-bord-{campaign.year}-region-{region.code}.xlsx"
        previous = last_year(session, services.settings, campaign, region.code) if workbook is None else None
        carried = previous.observations() if previous is not None else {}
        if previous is not None and carried:  # last year's observations as a starting point, figures blank
            observations_of = previous.campaign.year
            template = build_template(region_code=region.code, region_name=region.name, campaign_id=campaign.id,
                                      year=campaign.year, observations=carried)
        elif workbook is None:
            template = blank_template(region.code, region.name, campaign.id, campaign.year)
        else:
            observations = workbook.observations if isinstance(workbook.observations, dict) else None
            template = build_template(region_code=region.code, region_name=region.name, campaign_id=campaign.id,
                                      year=campaign.year, values=prefill_values(workbook), observations=observations)
    current = {s.id for s in (workbook, narrative) if s is not None}
    return ConversationFacts(
        intents=reading.intents,
        forwarded=journey.forwarded,
        deadline=deadline,
        extended=extended,
        campaign_deadline=campaign.deadline,
        status=dossier.status,
        versions=tuple(VersionFact(s.kind, s.filename, s.version, s.received_at, s.verdict, s.late, s.id in current)
                       for s in versions),
        workbook_verdict=workbook.verdict if workbook else None,
        narrative_received=narrative is not None,
        date_asked=reading.date_asked,
        days_asked=reading.days_asked,
        coordinators=tuple((c.name, c.email) for c in services.settings.coordinators),
        template_name=name,
        template=template,
        prefilled=workbook is not None,
        observations_of=observations_of,
        thread_reply=False,
    )
