"""Classify: is this mail automated, already seen, or from a stranger? Decides; records nothing."""

from __future__ import annotations

from intake.journey import Journey, Services
from parsers.automated import automated_reason
from parsers.messages import make_issue
from parsers.mime import parse_message
from store import queries


def classify(journey: Journey, services: Services) -> None:
    settings = services.settings
    mail = parse_message(journey.inbound.raw)
    journey.mail = mail
    own = {settings.mailbox_address} | ({settings.smtp.sender} if settings.smtp else set())
    reason = automated_reason(mail, own_addresses=own)
    if reason:
        journey.outcome, journey.reason = "ignored", f"automated: {reason}"
        return
    original = queries.claim_identity(journey.session, journey.inbound)
    if original is not None:
        journey.outcome, journey.reason = "duplicate", f"already received as message #{original}"
        return
    region = settings.region_for_sender(mail.from_addr)
    journey.campaign = settings.campaign_for(journey.inbound.received_at)
    if region is None:
        journey.outcome, journey.reason = "quarantined", "unknown sender"
        journey.message_issues.append(make_issue("unknown_sender", value=mail.from_addr or "(aucune)"))
        return
    journey.region = region
