"""Reply: render the French answer and queue it in the outbox, threaded to the region's message.

The drafting (:mod:`notifier.replies`) gets the message's facts as plain data. Automatic replies to
one address are capped per hour (``[limits] replies_per_sender_per_hour``): a robot that slipped
through every rule still cannot start a mail storm.

A reply about a return whose workbook has issues (errors or warnings) attaches, for each such
workbook, ``corrections-<region>.xlsx`` (:mod:`notifier.corrections`): our template holding what
was read, each faulty cell coloured and commented, for the clerk to correct and send back.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from intake.config.clock import utcnow
from intake.pipeline.journey import Journey
from intake.pipeline.services import Services
from intake.pipeline.steps.annotate import build_annotations
from intake.pipeline.steps.converse import conversation_facts
from notifier.outbox import queue_reply
from notifier.replies import XLSX, DossierFacts, ReplyDraft, ReplyFacts, draft_reply
from store.queries.outbox import replies_since


def reply(journey: Journey, services: Services) -> None:
    assert journey.mail is not None
    draft = draft_reply(reply_facts(journey, services), services.settings)
    if draft is None:
        return
    cap = services.settings.limits.replies_per_sender_per_hour
    since = utcnow() - timedelta(hours=1)
    if cap and replies_since(journey.session, draft.to[0], since) >= cap:
        journey.reason = (journey.reason + "; " if journey.reason else "") + (
            f"réponse retenue : déjà {cap} réponses automatiques à {draft.to[0]} dans l'heure")
        services.log.warning("reply to %s withheld: more than %d automatic replies within the hour",
                             draft.to[0], cap)
        return
    draft = with_corrections(journey, services, draft)
    if queue_reply(journey.session, settings=services.settings, inbound=journey.inbound, mail=journey.mail,
                   draft=draft) is None:  # processed again on request: its reply already went out
        journey.reason = (journey.reason + "; " if journey.reason else "") + "réponse déjà envoyée"
        return
    journey.reply = draft


def with_corrections(journey: Journey, services: Services, draft: ReplyDraft) -> ReplyDraft:
    """``draft`` with one annotated workbook per workbook of the return that has issues (built
    before the lock by ``annotate`` when the workbook has not changed since)."""
    if journey.outcome not in ("accepted", "rejected"):
        return draft
    files = tuple((a.name, a.data, XLSX) for a in build_annotations(journey, services, journey.workbooks))
    return replace(draft, attachments=draft.attachments + files) if files else draft


def reply_facts(journey: Journey, services: Services) -> ReplyFacts:
    """What the reply needs to know about the message and the dossier, as plain data."""
    assert journey.mail is not None
    mail, dossier = journey.mail, journey.dossier
    facts = None
    if dossier is not None:
        files = journey.dossier_files(dossier)
        workbook, narrative = files.get("workbook"), files.get("narrative")
        facts = DossierFacts(status=dossier.status, workbook_verdict=workbook.verdict if workbook else None,
                             narrative_received=narrative is not None)
    return ReplyFacts(
        outcome=journey.outcome or "failed",
        received_at=journey.inbound.received_at,
        subject=mail.subject,
        from_addr=mail.from_addr,
        reply_to=tuple(mail.reply_to),
        message_issues=tuple(journey.message_issues),
        region=journey.region,
        campaign=journey.campaign,
        late=journey.late,
        workbooks=tuple(journey.workbooks),
        narratives=tuple(journey.narratives),
        versions={(s.kind, s.filename, s.sha256): s.version for s in journey.submissions},
        identical=frozenset((i.kind, i.filename) for i in journey.identical),
        dossier=facts,
        conversation=conversation_facts(journey, services),
    )
