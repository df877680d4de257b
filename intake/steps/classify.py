"""Classify: is this mail automated, already seen, or from a stranger? Decides; records nothing
but a bounce of our own mail, which is noted on the outbox item and the dossier it concerned."""

from __future__ import annotations

from intake.config import RegionConfig
from intake.journey import Journey, Services
from parsers import catalogue
from parsers.automated import automated_reason
from parsers.bounces import read_bounce
from parsers.messages import make_issue
from parsers.mime import parse_message
from store import queries
from store.models import InboundMessage

_BOUNCE_REASONS = ("delivery_report", "null_return_path", "system_sender")


def classify(journey: Journey, services: Services) -> None:
    settings = services.settings
    mail = parse_message(journey.inbound.raw)
    journey.mail = mail
    own = {settings.mailbox_address} | ({settings.smtp.sender} if settings.smtp else set())
    reason = automated_reason(mail, own_addresses=own)
    if reason:
        journey.outcome, journey.reason = "ignored", f"automated: {reason}"
        _record_bounce(journey, services, reason)
        return
    original = queries.claim_identity(journey.session, journey.inbound)
    if original is not None:
        journey.outcome, journey.reason = "duplicate", f"already received as message #{original}"
        return
    region = settings.region_for_sender(mail.from_addr)
    if journey.inbound.region_override:  # an admin assigned this quarantined message to a region
        region = settings.region(journey.inbound.region_override) or RegionConfig(
            journey.inbound.region_override, catalogue.region_name(journey.inbound.region_override) or "?")
    journey.campaign = settings.campaign_for(journey.inbound.received_at)
    if region is None:
        journey.outcome, journey.reason = "quarantined", "unknown sender"
        journey.message_issues.append(make_issue("unknown_sender", value=mail.from_addr or "(aucune)"))
        return
    journey.region = region


def _record_bounce(journey: Journey, services: Services, reason: str) -> None:
    """A delivery report about one of our mails: mark it bounced, note it on the region's dossier.

    An out-of-office answer also quotes our Message-ID; only a real report (DSN fields, or a
    mailer-daemon / null sender) counts as a bounce.
    """
    session = journey.session
    bounce = read_bounce(journey.inbound.raw)
    is_report = bounce.status is not None or bool(bounce.recipients) or reason.startswith(_BOUNCE_REASONS)
    if not is_report:
        return
    items = queries.outbox_by_message_ids(session, bounce.message_ids)
    for item in items:
        addresses = list(bounce.recipients) or list(item.recipients)
        why = " ".join(x for x in (bounce.status, bounce.diagnostic) if x) or "rapport de non-remise"
        item.status = "bounced" if bounce.permanent else item.status
        item.last_error = f"non remis à {', '.join(addresses)} : {why}"[:2000]
        journey.reason += f"; bounce of outbox #{item.id} ({item.kind}) for {', '.join(addresses)}"
        services.log.warning("our mail #%d to %s bounced: %s", item.id, ", ".join(addresses), why)
        replied = session.get(InboundMessage, item.message_pk) if item.message_pk else None
        if replied is not None and replied.campaign_id and replied.region_code:
            dossier = queries.dossiers_by_region(session, replied.campaign_id).get(replied.region_code)
            if dossier is not None:
                queries.record_event(session, dossier, "bounce", {
                    "addresses": addresses, "status": bounce.status, "diagnostic": bounce.diagnostic,
                    "outbox": item.id, "permanent": bounce.permanent})
